#pragma once

#include "crypto/ossl.h"

namespace vouch::attest {

// True when `cert`'s signature verifies under `issuer`'s public key (the signature only: names,
// validity and extensions are the caller's checks). False for a null argument. Leaves no error
// on the OpenSSL queue.
bool SignedBy(X509* cert, X509* issuer);

// True when `crl`'s signature verifies under `issuer`'s public key and the CRL's issuer name is
// `issuer`'s subject. False for a null argument. Leaves no error on the OpenSSL queue.
bool CrlSignedBy(X509_CRL* crl, X509* issuer);

}  // namespace vouch::attest
