#include "crypto/secret.h"

#include <openssl/crypto.h>

namespace vouch::crypto {

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    Wipe();
    data_ = std::move(o.data_);
    o.data_.clear();
  }
  return *this;
}

void SecretBytes::Wipe() {
  if (!data_.empty()) OPENSSL_cleanse(data_.data(), data_.size());
  data_.clear();
}

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return ConstantTimeEquals(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(a.data()), a.size()),
                            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
}

}  // namespace vouch::crypto
