#pragma once

// Keys and CSRs for tests. The CSRs are made with OpenSSL's own X509_REQ API (not with the code
// under test), so that parsers and issuers are tested against real input.
#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/ossl.h"

namespace vouch::test {

// A fresh key; aborts if OpenSSL cannot make one.
crypto::EvpPkeyPtr Key(crypto::KeyType type = crypto::KeyType::kEcP256);

struct CsrSpec {
  std::string common_name = "api.example.com";  // "" for none
  std::vector<std::string> dns_names = {"api.example.com"};
  std::vector<std::string> uris;
  std::vector<std::string> extra_ou;  // organizationalUnitName entries (for huge subjects)
  const EVP_MD* md = EVP_sha256();    // nullptr for Ed25519
};

// nullptr if OpenSSL refuses (e.g. a digest the key type cannot sign with).
crypto::X509ReqPtr MakeCsr(EVP_PKEY* key, const CsrSpec& spec = {});
std::string CsrPem(X509_REQ* req);
std::vector<uint8_t> CsrDer(X509_REQ* req);
// The PEM CSR of `key` with CN `common_name` and `dns_names` as DNS SANs (none if empty).
std::string CsrPemFor(EVP_PKEY* key, const std::vector<std::string>& dns_names,
                      const std::string& common_name = "workload");

}  // namespace vouch::test
