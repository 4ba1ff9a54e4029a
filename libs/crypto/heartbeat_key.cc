#include "crypto/heartbeat_key.h"

#include <string>

#include "crypto/kdf.h"
#include "crypto/keys.h"

namespace vouch::crypto {

bool IsP256Key(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) return false;
  const std::string_view g(group, len);
  return g == "prime256v1" || g == "P-256";
}

Result<SecretBytes> DeriveHeartbeatKey(EVP_PKEY* own_private, EVP_PKEY* peer_public, std::string_view serial) {
  if (serial.empty() || serial.size() > 64) {
    return InvalidArgument("a heartbeat key needs the certificate serial (1..64 hex digits)", "invalid_serial");
  }
  for (char c : serial) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return InvalidArgument("the certificate serial must be lower-case hex digits", "invalid_serial");
    }
  }
  if (!IsP256Key(own_private) || !IsP256Key(peer_public)) {
    return InvalidArgument("heartbeat keys are derived only between EC P-256 keys", "invalid_key_type");
  }
  VOUCH_ASSIGN_OR_RETURN(SecretBytes shared, EcdhSharedSecret(own_private, peer_public));
  std::string info(kHeartbeatKeyLabel);
  info += '\n';
  info += serial;
  return HkdfSha256(shared.span(),
                    std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kHeartbeatKeyLabel.data()),
                                             kHeartbeatKeyLabel.size()),
                    std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(info.data()), info.size()),
                    kHeartbeatKeySize);
}

}  // namespace vouch::crypto
