#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::crypto {

Result<X509Ptr> CertFromPem(std::string_view pem);
Result<X509Ptr> CertFromDer(std::span<const uint8_t> der);
// Every certificate in a PEM bundle, in order (trailing NULs and text between blocks ignored).
// Fails if there is none or any block is malformed.
Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem);
Result<std::string> CertToPem(X509* cert);
Result<std::vector<uint8_t>> CertToDer(X509* cert);

Result<X509CrlPtr> CrlFromDerOrPem(std::span<const uint8_t> data);
Result<std::string> CrlToPem(X509_CRL* crl);
Result<std::vector<uint8_t>> CrlToDer(X509_CRL* crl);

// "CN=..,O=.." one-line RFC 2253 form.
std::string NameToString(const X509_NAME* name);
// The first CN of the subject, or "".
std::string SubjectCommonName(X509* cert);
// Serial as lower-case hex without leading zeros ("0" for zero).
std::string SerialHex(X509* cert);
// True when `cert`'s signature verifies with its own public key (a self-signed root). Says
// nothing about trust: a caller compares the root with the ones it pins.
bool IsSelfSigned(X509* cert);

TimePoint Asn1TimeToTimePoint(const ASN1_TIME* t);
TimePoint NotBefore(X509* cert);
TimePoint NotAfter(X509* cert);

}  // namespace vouch::crypto
