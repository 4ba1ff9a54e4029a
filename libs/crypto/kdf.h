#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::crypto {

struct ScryptParams {
  uint64_t n = 1 << 15;  // 32 MiB of memory with r = 8
  uint32_t r = 8;
  uint32_t p = 1;
};

// HKDF-SHA256 (RFC 5869), extract then expand: `length` bytes (1 .. 255 * 32) of key material
// from the input keying material `key`, with `salt` (may be empty) and context `info`.
Result<SecretBytes> HkdfSha256(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                               std::span<const uint8_t> info, size_t length);

// Hashes a password with scrypt (memory-hard) and a random 16-byte salt. The result is
// self-describing: "scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>".
Result<std::string> HashPassword(std::string_view password, const ScryptParams& params = {});
// Constant-time check of `password` against an encoded hash. False on any malformed encoding.
bool VerifyPassword(std::string_view password, std::string_view encoded);

}  // namespace vouch::crypto
