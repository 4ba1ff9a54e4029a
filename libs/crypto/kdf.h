#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch::crypto {

struct ScryptParams {
  uint64_t n = 1 << 15;  // 32 MiB of memory with r = 8
  uint32_t r = 8;
  uint32_t p = 1;
};

// Hashes a password with scrypt (memory-hard) and a random 16-byte salt. The result is
// self-describing: "scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>".
Result<std::string> HashPassword(std::string_view password, const ScryptParams& params = {});
// Constant-time check of `password` against an encoded hash. False on any malformed encoding.
bool VerifyPassword(std::string_view password, std::string_view encoded);

}  // namespace vouch::crypto
