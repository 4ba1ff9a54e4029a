#pragma once

// The byte strings that workloads, the agent and vouchd must agree on (docs/agent.md). Header
// only, no dependencies, so that every side includes the one definition.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vouch::workload {

// The canonical heartbeat fields under a label: label "\n" instance_id "\n" seq "\n" timestamp "\n" status.
inline std::string LabelledHeartbeatFields(std::string_view label, std::string_view instance_id, int64_t seq,
                                           int64_t timestamp, std::string_view status) {
  std::string m(label);
  m += '\n';
  m += instance_id;
  m += '\n';
  m += std::to_string(seq);
  m += '\n';
  m += std::to_string(timestamp);
  m += '\n';
  m += status;
  return m;
}

// What a workload signs for one heartbeat (ECDSA with SHA-256, DER signature, by the key of
// its current certificate):
//   "vouch-heartbeat-v1\n" instance_id "\n" seq "\n" timestamp "\n" status
// seq and timestamp in decimal ASCII. Instance ids and statuses never contain '\n' (both are
// validated as [A-Za-z0-9_-]+), so the encoding is unambiguous.
inline std::string HeartbeatMessage(std::string_view instance_id, int64_t seq, int64_t timestamp,
                                    std::string_view status) {
  return LabelledHeartbeatFields("vouch-heartbeat-v1", instance_id, seq, timestamp, status);
}

// What a workload MACs for one heartbeat (HMAC-SHA256 under its heartbeat key K,
// docs/formats/heartbeat-key.md; the 32-byte MAC travels base64 in "mac"):
//   "vouch-heartbeat-mac-v1\n" instance_id "\n" seq "\n" timestamp "\n" status
// The same fields as the signed form under its own label, so a MAC and a signature are never
// over the same bytes. K is bound to the certificate serial, so the serial need not be repeated.
inline std::string HeartbeatMacMessage(std::string_view instance_id, int64_t seq, int64_t timestamp,
                                       std::string_view status) {
  return LabelledHeartbeatFields("vouch-heartbeat-mac-v1", instance_id, seq, timestamp, status);
}

// The size of a heartbeat MAC (HMAC-SHA256) on the wire, before base64.
inline constexpr size_t kHeartbeatMacSize = 32;

inline bool IsValidWireId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Report data binding: a workload's SGX report carries SHA-256(CSR SubjectPublicKeyInfo DER) in
// report_data[0..32) (zeros after); a node's quote carries SHA-256(node SPKI DER ‖ nonce).

}  // namespace vouch::workload
