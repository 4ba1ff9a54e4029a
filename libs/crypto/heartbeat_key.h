#pragma once

// The per-instance heartbeat MAC key (docs/formats/heartbeat-key.md): an ECDH agreement between
// an instance's certificate key (EC P-256) and its zone's heartbeat key, through HKDF-SHA256 with
// the certificate serial and a version label. The workload (instance private key, zone public
// key) and vouchd (zone private key, instance public key from the certificate) compute the same
// 32 bytes; the node agent, which holds neither private key, cannot.

#include <cstddef>
#include <string_view>

#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"

namespace vouch::crypto {

inline constexpr std::string_view kHeartbeatKeyLabel = "vouch-heartbeat-key-v1";
inline constexpr int kHeartbeatKeyVersion = 1;
inline constexpr size_t kHeartbeatKeySize = 32;

// K = HKDF-SHA256(IKM = the ECDH shared secret (X coordinate, 32 bytes) of `own_private` and
//                       `peer_public`,
//                 salt = "vouch-heartbeat-key-v1",
//                 info = "vouch-heartbeat-key-v1\n" serial,
//                 L = 32)
// `serial` is the certificate's serial as the API writes it: lower-case hexadecimal digits
// (1..64 of them); anything else is InvalidArgument "invalid_serial". Both keys must be EC
// P-256, else InvalidArgument "invalid_key_type" (an RSA or P-384 instance signs its heartbeats
// with ECDSA instead). Symmetric: (instance private, zone public) and (zone private, instance
// public) give the same K.
Result<SecretBytes> DeriveHeartbeatKey(EVP_PKEY* own_private, EVP_PKEY* peer_public, std::string_view serial);

// Whether `key` is an EC P-256 key (the only kind that can have a heartbeat MAC key).
bool IsP256Key(EVP_PKEY* key);

}  // namespace vouch::crypto
