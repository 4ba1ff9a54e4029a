#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/secret.h"

namespace vouch::crypto {

// Cryptographically secure random bytes (RAND_bytes). Aborts the process if the CSPRNG fails,
// since continuing without randomness is never safe.
std::vector<uint8_t> RandomBytes(size_t n);
SecretBytes RandomSecret(size_t n);
// A URL-safe random token with `bytes` bytes of entropy (base64url, no padding).
std::string RandomToken(size_t bytes = 32);

}  // namespace vouch::crypto
