#include "crypto/cleanse.h"

#include <openssl/crypto.h>

namespace vouch::crypto {

void Cleanse(void* data, size_t size) {
  if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

}  // namespace vouch::crypto
