#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::crypto {

// AES-256-GCM. Seal output: 12-byte random nonce || ciphertext || 16-byte tag.
// `aad` binds the ciphertext to its context (e.g. "zone-ca-key:<zone id>"), so a sealed blob
// cannot be moved to another record.
Result<std::vector<uint8_t>> Aes256GcmSeal(std::span<const uint8_t> key, std::span<const uint8_t> plaintext,
                                           std::span<const uint8_t> aad);
// Fails with reason "decrypt_failed" on a wrong key, wrong aad or any tampering.
Result<SecretBytes> Aes256GcmOpen(std::span<const uint8_t> key, std::span<const uint8_t> sealed,
                                  std::span<const uint8_t> aad);

}  // namespace vouch::crypto
