#pragma once

// Heartbeats authenticated by a MAC (docs/agent.md "Heartbeats", docs/formats/heartbeat-key.md):
// the workload side. The issuance answer names the zone's heartbeat public key
// (`"heartbeat_key":{"version":1,"public_key_pem":...}`); with the instance's private key and the
// certificate serial the workload derives K, then sends "mac" = base64(HMAC-SHA256(K,
// HeartbeatMacMessage(...))) instead of an ECDSA "signature".

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"

namespace vouch::workload {

// K for one instance: `instance_key` (its certificate's private key, EC P-256), the zone's
// heartbeat public key as PEM (SubjectPublicKeyInfo, from the issuance answer) and the serial as
// answered (lower-case hex). InvalidArgument "invalid_key_type" for a key that is not P-256,
// "invalid_key" for a PEM that does not parse, "invalid_serial".
Result<crypto::SecretBytes> DeriveHeartbeatKey(EVP_PKEY* instance_key, std::string_view zone_heartbeat_public_pem,
                                               std::string_view serial);

// HMAC-SHA256 under `key` (K, 32 bytes) over HeartbeatMacMessage(instance_id, seq, timestamp, status).
std::array<uint8_t, 32> HeartbeatMac(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                                     int64_t timestamp, std::string_view status);

// HMAC-SHA256(key, data) (RFC 2104, the same bytes as crypto::HmacSha256) for vouchd's per-heartbeat
// check: SHA-256 fetched from the provider once per process and one digest context per thread,
// where HMAC() fetches the algorithm and builds a MAC context on every call (BENCHMARKS.md,
// "Scale (issue 16)": most of a heartbeat's MAC cost). The padded key blocks and the inner hash
// are wiped before returning. `key` at most 64 bytes (K is 32); a longer one falls back to
// crypto::HmacSha256.
std::array<uint8_t, 32> HmacSha256Fast(std::span<const uint8_t> key, std::span<const uint8_t> data);
// SHA-256(data), the same way (one fetch per process, one context per thread).
std::array<uint8_t, 32> Sha256Fast(std::span<const uint8_t> data);

// The same, base64 (standard alphabet, padded): the heartbeat's "mac" field.
std::string HeartbeatMacBase64(std::span<const uint8_t> key, std::string_view instance_id, int64_t seq,
                               int64_t timestamp, std::string_view status);

}  // namespace vouch::workload
