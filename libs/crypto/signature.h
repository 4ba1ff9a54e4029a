#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::crypto {

enum class DigestAlg { kSha256, kSha384 };

// Signs with ECDSA (DER signature) or RSA PKCS#1 v1.5, hashing `data` with `alg`.
Result<std::vector<uint8_t>> Sign(EVP_PKEY* key, std::span<const uint8_t> data, DigestAlg alg = DigestAlg::kSha256);
// Verifies a DER ECDSA / PKCS#1 v1.5 signature. Returns false for a wrong signature;
// never throws, never leaves errors on the queue.
bool Verify(EVP_PKEY* key, std::span<const uint8_t> data, std::span<const uint8_t> signature,
            DigestAlg alg = DigestAlg::kSha256);

// Raw fixed-width ECDSA r||s <-> DER. `big_endian` false for AMD's little-endian fields.
Result<std::vector<uint8_t>> EcdsaRawToDer(std::span<const uint8_t> r, std::span<const uint8_t> s,
                                           bool big_endian = true);
// DER -> r||s, each left-padded to `component_len` bytes, big-endian.
Result<std::vector<uint8_t>> EcdsaDerToRaw(std::span<const uint8_t> der, size_t component_len);

// Verifies a raw big-endian r||s signature (Intel quotes, JSON collateral).
bool VerifyEcdsaRaw(EVP_PKEY* key, std::span<const uint8_t> data, std::span<const uint8_t> rs,
                    DigestAlg alg = DigestAlg::kSha256);

}  // namespace vouch::crypto
