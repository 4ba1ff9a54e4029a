#pragma once

// Shared by bench_agent (the load generator) and bench_hbfloor (the floor it is compared with):
// the names of the seeded instances, their serials, how their heartbeats are authenticated, and
// one batch body as an agent posts it to POST /api/v1/heartbeats (BENCHMARKS.md, "Scale (issue 16)").
//
// The benchmark scripts seed N instances whose certificates are copies of one real workload
// certificate (so all carry that workload's key) under distinct serials: instance i is
// "<prefix>i" with serial Serial(i). Each instance's heartbeat MAC key is derived from its own
// serial, so vouchd derives N distinct keys; the generator's ECDH is the same for all of them
// (one key pair), so it computes it once and only the per-serial derivation N times.

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "base/encoding.h"
#include "base/result.h"
#include "crypto/heartbeat_key.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace vouch::bench {

inline std::string InstanceId(std::string_view prefix, size_t i) { return std::string(prefix) + std::to_string(i); }

// 16 hex digits, as the seeding SQL writes them ('bb' || printf('%014x', i)).
inline std::string Serial(size_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "bb%014zx", i);
  return b;
}

using MacKey = std::array<uint8_t, 32>;

// The instance's heartbeat key K from the ECDH secret of its key and the zone's heartbeat key:
// crypto::DeriveHeartbeatKey (docs/formats/heartbeat-key.md) without its ECDH, which the
// generator does once for all its instances (they share one key pair): HKDF-SHA256(IKM = shared,
// salt = label, info = label "\n" serial). bench_agent checks it against DeriveHeartbeatKey.
inline Result<MacKey> DeriveMacKey(std::span<const uint8_t> shared, std::string_view serial) {
  std::string info = std::string(crypto::kHeartbeatKeyLabel) + "\n" + std::string(serial);
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes k,
                         crypto::HkdfSha256(shared, AsBytes(crypto::kHeartbeatKeyLabel), AsBytes(info), 32));
  MacKey out{};
  std::copy(k.data(), k.data() + 32, out.begin());
  return out;
}

// The heartbeat's "mac", as vouch-rte computes it.
inline std::string MacB64(const MacKey& key, std::string_view instance_id, int64_t seq, int64_t ts,
                          std::string_view status) {
  return workload::HeartbeatMacBase64(key, instance_id, seq, ts, status);
}

// {"node":{"version":"bench"},"heartbeats":[{"instance_id":..,"seq":..,"timestamp":..,
// "status":"running","<field>":"<auth>"}, ...]} for instances first .. first+count-1 (mod n),
// where auth(i, id) gives the base64 MAC or signature of instance i with id `id`; field is "mac"
// or "signature".
inline std::string BatchBody(std::string_view prefix, size_t first, size_t count, size_t n, int64_t seq, int64_t ts,
                             std::string_view field, const std::function<std::string(size_t, const std::string&)>& auth) {
  std::string b = R"({"heartbeats":[)";
  b.reserve(count * 160 + 64);
  for (size_t m = 0; m < count; ++m) {
    size_t i = (first + m) % n;
    std::string id = InstanceId(prefix, i);
    if (m) b += ',';
    b += R"({"instance_id":")";
    b += id;
    b += R"(",")";
    b += field;
    b += R"(":")";
    b += auth(i, id);
    b += R"(","seq":)";
    b += std::to_string(seq);
    b += R"(,"status":"running","timestamp":)";
    b += std::to_string(ts);
    b += '}';
  }
  b += R"(],"node":{"version":"bench"}})";
  return b;
}

}  // namespace vouch::bench
