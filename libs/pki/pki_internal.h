#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "pki/pem.h"

// Helpers shared by the pki sources; not part of the public API.
namespace vouch::pki {

// A provider-native EC public key from an uncompressed point; `group` is "P-256" or "P-384".
// Fails with reason invalid_csr_key for a point that is not on the curve.
Result<crypto::EvpPkeyPtr> EcKeyFromPoint(const char* group, std::span<const uint8_t> point);

// The public key BIT STRING contents (without the unused-bits octet) of a DER
// SubjectPublicKeyInfo, or an empty span if it is malformed.
std::span<const uint8_t> SpkiKeyBits(std::span<const uint8_t> spki_der);

// SHA-1 of the key bits: the RFC 5280 §4.2.1.2 method (1) key identifier.
Result<std::vector<uint8_t>> KeyIdentifier(std::span<const uint8_t> spki_der);

}  // namespace vouch::pki
