#include "workload/heartbeat_mac.h"

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/keys.h"
#include "workload/wire.h"

namespace vouch::workload {

Result<crypto::SecretBytes> DeriveHeartbeatKey(EVP_PKEY* instance_key, std::string_view zone_heartbeat_public_pem,
                                               std::string_view serial) {
  auto zone = crypto::PublicKeyFromPem(zone_heartbeat_public_pem);
  if (!zone.ok()) return InvalidArgument("the zone heartbeat key is not a public key PEM", "invalid_key");
  return crypto::DeriveHeartbeatKey(instance_key, zone->get(), serial);
}

std::array<uint8_t, 32> HeartbeatMac(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                                     int64_t timestamp, std::string_view status) {
  const std::string msg = HeartbeatMacMessage(instance_id, seq, timestamp, status);
  return crypto::HmacSha256(key, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
}

std::string HeartbeatMacBase64(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                               int64_t timestamp, std::string_view status) {
  const auto mac = HeartbeatMac(key, instance_id, seq, timestamp, status);
  return Base64Encode(mac);
}

}  // namespace vouch::workload
