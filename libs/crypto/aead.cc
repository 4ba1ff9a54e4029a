#include "crypto/aead.h"

#include "crypto/ossl.h"
#include "crypto/random.h"

namespace vouch::crypto {

namespace {
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
}  // namespace

Result<std::vector<uint8_t>> Aes256GcmSeal(std::span<const uint8_t> key, std::span<const uint8_t> plaintext,
                                           std::span<const uint8_t> aad) {
  if (key.size() != 32) return InvalidArgument("AES-256-GCM key must be 32 bytes");
  std::vector<uint8_t> out = RandomBytes(kNonce);
  out.resize(kNonce + plaintext.size() + kTag);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), out.data()) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonce, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, out.data() + kNonce + plaintext.size()) != 1) {
    return OpensslError("AES-256-GCM seal");
  }
  return out;
}

Result<SecretBytes> Aes256GcmOpen(std::span<const uint8_t> key, std::span<const uint8_t> sealed,
                                  std::span<const uint8_t> aad) {
  if (key.size() != 32) return InvalidArgument("AES-256-GCM key must be 32 bytes");
  if (sealed.size() < kNonce + kTag) return InvalidArgument("sealed blob too short", "decrypt_failed");
  size_t ct_len = sealed.size() - kNonce - kTag;
  SecretBytes out(ct_len);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  uint8_t tag[kTag];
  std::copy(sealed.end() - kTag, sealed.end(), tag);
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), sealed.data()) == 1 &&
            (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
            EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + kNonce, static_cast<int>(ct_len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) == 1;
  if (!ok) {
    DrainOpensslErrors();
    return Status(StatusCode::kDataLoss, "AES-256-GCM authentication failed", "decrypt_failed");
  }
  return out;
}

}  // namespace vouch::crypto
