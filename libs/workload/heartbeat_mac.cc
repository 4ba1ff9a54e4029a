#include "workload/heartbeat_mac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/keys.h"
#include "workload/wire.h"

namespace vouch::workload {
namespace {

// SHA-256 fetched once (the implicit fetch of SHA256()/HMAC() costs a provider lookup per call).
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// One digest context per thread, freed when the thread ends.
EVP_MD_CTX* ThreadCtx() {
  struct Holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Holder h;
  return h.ctx;
}

// SHA-256 over two parts; false when OpenSSL fails (no algorithm, no memory).
bool Sha256Of(EVP_MD_CTX* ctx, const EVP_MD* md, const uint8_t* a, size_t an, const uint8_t* b, size_t bn,
              uint8_t out[32]) {
  unsigned int len = 0;
  return EVP_DigestInit_ex2(ctx, md, nullptr) == 1 && EVP_DigestUpdate(ctx, a, an) == 1 &&
         (bn == 0 || EVP_DigestUpdate(ctx, b, bn) == 1) && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
}

}  // namespace

std::array<uint8_t, 32> HmacSha256Fast(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  constexpr size_t kBlock = 64;
  const EVP_MD* md = Sha256Md();
  EVP_MD_CTX* ctx = ThreadCtx();
  if (key.size() > kBlock || md == nullptr || ctx == nullptr) return crypto::HmacSha256(key, data);
  uint8_t pad[kBlock];
  std::array<uint8_t, 32> inner{}, out{};
  for (size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<uint8_t>((i < key.size() ? key[i] : 0) ^ 0x36);
  bool ok = Sha256Of(ctx, md, pad, kBlock, data.data(), data.size(), inner.data());
  for (size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<uint8_t>((i < key.size() ? key[i] : 0) ^ 0x5c);
  ok = ok && Sha256Of(ctx, md, pad, kBlock, inner.data(), inner.size(), out.data());
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner.data(), inner.size());
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return crypto::HmacSha256(key, data);
  }
  return out;
}

std::array<uint8_t, 32> Sha256Fast(std::span<const uint8_t> data) {
  const EVP_MD* md = Sha256Md();
  EVP_MD_CTX* ctx = ThreadCtx();
  std::array<uint8_t, 32> out{};
  if (md == nullptr || ctx == nullptr || !Sha256Of(ctx, md, data.data(), data.size(), nullptr, 0, out.data())) {
    return crypto::Sha256(data);
  }
  return out;
}

Result<crypto::SecretBytes> DeriveHeartbeatKey(EVP_PKEY* instance_key, std::string_view zone_heartbeat_public_pem,
                                               std::string_view serial) {
  auto zone = crypto::PublicKeyFromPem(zone_heartbeat_public_pem);
  if (!zone.ok()) return InvalidArgument("the zone heartbeat key is not a public key PEM", "invalid_key");
  return crypto::DeriveHeartbeatKey(instance_key, zone->get(), serial);
}

std::array<uint8_t, 32> HeartbeatMac(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                                     int64_t timestamp, std::string_view status) {
  const std::string msg = HeartbeatMacMessage(instance_id, seq, timestamp, status);
  return HmacSha256Fast(key, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
}

std::string HeartbeatMacBase64(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                               int64_t timestamp, std::string_view status) {
  const auto mac = HeartbeatMac(key, instance_id, seq, timestamp, status);
  return Base64Encode(mac);
}

}  // namespace vouch::workload
