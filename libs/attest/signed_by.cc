#include "attest/signed_by.h"

#include <openssl/x509.h>

namespace vouch::attest {

bool SignedBy(X509* cert, X509* issuer) {
  if (cert == nullptr || issuer == nullptr) return false;
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  bool ok = key != nullptr && X509_verify(cert, key) == 1;
  crypto::DrainOpensslErrors();
  return ok;
}

bool CrlSignedBy(X509_CRL* crl, X509* issuer) {
  if (crl == nullptr || issuer == nullptr) return false;
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  bool ok = key != nullptr && X509_CRL_verify(crl, key) == 1 &&
            X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0;
  crypto::DrainOpensslErrors();
  return ok;
}

}  // namespace vouch::attest
