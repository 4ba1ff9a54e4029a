#include "testing/csr.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace vouch::test {

crypto::EvpPkeyPtr Key(crypto::KeyType type) {
  auto key = crypto::GenerateKey(type);
  if (!key.ok()) {
    std::fprintf(stderr, "test key generation failed: %s\n", key.status().ToString().c_str());
    std::abort();
  }
  return std::move(*key);
}

crypto::X509ReqPtr MakeCsr(EVP_PKEY* key, const CsrSpec& spec) {
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

std::string CsrPem(X509_REQ* req) {
  if (req == nullptr) return "";
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::vector<uint8_t> CsrDer(X509_REQ* req) {
  unsigned char* der = nullptr;
  int len = req == nullptr ? -1 : i2d_X509_REQ(req, &der);
  if (len <= 0) return {};
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string CsrPemFor(EVP_PKEY* key, const std::vector<std::string>& dns_names, const std::string& common_name) {
  CsrSpec spec;
  spec.common_name = common_name;
  spec.dns_names = dns_names;
  return CsrPem(MakeCsr(key, spec).get());
}

}  // namespace vouch::test
