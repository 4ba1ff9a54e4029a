#pragma once

// Wiping secrets that do not live in SecretBytes (fixed-size arrays, slots of a cache).

#include <cstddef>

namespace vouch::crypto {

// Overwrites `size` bytes at `data` with zeros in a way the compiler does not remove
// (OPENSSL_cleanse).
void Cleanse(void* data, size_t size);

}  // namespace vouch::crypto
