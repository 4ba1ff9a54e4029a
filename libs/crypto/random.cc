#include "crypto/random.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "base/encoding.h"

namespace vouch::crypto {

static void Fill(uint8_t* p, size_t n) {
  if (n == 0) return;
  if (RAND_bytes(p, static_cast<int>(n)) != 1) std::abort();
}

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  Fill(out.data(), n);
  return out;
}

SecretBytes RandomSecret(size_t n) {
  SecretBytes out(n);
  Fill(out.data(), n);
  return out;
}

std::string RandomToken(size_t bytes) {
  SecretBytes b = RandomSecret(bytes);
  return Base64UrlEncode(b.span());
}

}  // namespace vouch::crypto
