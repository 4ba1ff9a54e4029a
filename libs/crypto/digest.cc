#include "crypto/digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <utility>

namespace vouch::crypto {

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest out;
  SHA256(data.data(), data.size(), out.data());
  return out;
}

Sha256Digest Sha256(std::string_view data) {
  return Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Sha384Digest Sha384(std::span<const uint8_t> data) {
  Sha384Digest out;
  SHA384(data.data(), data.size(), out.data());
  return out;
}

Sha256Digest HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Sha256Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(), &len);
  return out;
}

struct Sha256Hasher::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256Hasher::Sha256Hasher() : impl_(new Impl) {}
Sha256Hasher::~Sha256Hasher() { delete impl_; }
Sha256Hasher::Sha256Hasher(Sha256Hasher&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
Sha256Hasher& Sha256Hasher::operator=(Sha256Hasher&& o) noexcept {
  std::swap(impl_, o.impl_);
  return *this;
}
void Sha256Hasher::Update(std::span<const uint8_t> data) { EVP_DigestUpdate(impl_->ctx, data.data(), data.size()); }
void Sha256Hasher::Update(std::string_view data) { EVP_DigestUpdate(impl_->ctx, data.data(), data.size()); }
Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest out;
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  return out;
}

}  // namespace vouch::crypto
