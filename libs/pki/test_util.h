#pragma once

// Helpers for the pki tests: CSRs made with OpenSSL's own X509_REQ API, temporary files and
// running the real `openssl` command-line tool.
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/ossl.h"

namespace vouch::pki::testing {

struct CsrSpec {
  std::string common_name = "api.example.com";
  std::vector<std::string> dns_names = {"api.example.com"};
  std::vector<std::string> uris;
  std::vector<std::string> extra_ou;  // organizationalUnitName entries (for huge subjects)
  const EVP_MD* md = EVP_sha256();    // nullptr for Ed25519
};

inline crypto::X509ReqPtr MakeCsr(EVP_PKEY* key, const CsrSpec& spec = {}) {
  crypto::X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1) return nullptr;
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const std::string& ou : spec.extra_ou) {
    X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(ou.data()), static_cast<int>(ou.size()), -1, 0);
  }
  if (!spec.common_name.empty()) {
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(spec.common_name.data()),
                               static_cast<int>(spec.common_name.size()), -1, 0);
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1) return nullptr;
  if (!spec.dns_names.empty() || !spec.uris.empty()) {
    crypto::GeneralNamesPtr names(GENERAL_NAMES_new());
    auto add = [&](int type, const std::string& value) {
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
      GENERAL_NAME* gn = GENERAL_NAME_new();
      GENERAL_NAME_set0_value(gn, type, s);
      sk_GENERAL_NAME_push(names.get(), gn);
    };
    for (const auto& d : spec.dns_names) add(GEN_DNS, d);
    for (const auto& u : spec.uris) add(GEN_URI, u);
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509V3_add1_i2d(&exts, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  if (X509_REQ_sign(req.get(), key, spec.md) <= 0) return nullptr;
  return req;
}

inline std::string CsrPem(X509_REQ* req) {
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

inline std::vector<uint8_t> CsrDer(X509_REQ* req) {
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req, &der);
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

inline std::string AsString(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vouch-pki-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& contents) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline CommandResult Run(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace vouch::pki::testing
