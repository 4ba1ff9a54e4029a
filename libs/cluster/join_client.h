#pragma once

// The joiner's side of the cluster join protocol as one call (docs/cluster.md, "Cluster key
// sharing"): ask a member for a nonce, make an ephemeral key and evidence of this binary bound to
// it and the nonce, send the join request, unwrap the master key from the grant. Used by
// `vouchd join` (a new member) and by a serving member picking up a rotated key (docs/cluster.md,
// "Picking up a rotated master key"). No HTTP here: the caller passes the transport (one member,
// so the nonce and the join reach the same key holder). Thread-safe, never throws.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/sim_vendor.h"
#include "base/result.h"
#include "cluster/join.h"
#include "crypto/secret.h"

namespace vouch::cluster {

// POSTs `body` to `path` ("/api/v1/cluster/nonce", "/api/v1/cluster/join") on one member and
// returns its 2xx JSON answer, or the member's refusal as a Status (its reason code kept).
using JoinTransport = std::function<Result<nlohmann::json>(const std::string& path, const nlohmann::json& body)>;

// Where the joiner's evidence comes from: the platform of this machine. Only the (INSECURE) sim
// platform exists on this machine; hardware backends add their own field here.
struct EvidenceSource {
  const attest::SimVendor* sim = nullptr;  // required today
  Measurement measurement{};              // what the evidence measures (SelfMeasurement())
};

// What a member granted: the master key and the member's public TLS identity material.
struct JoinResult {
  crypto::SecretBytes master_key;
  std::vector<uint8_t> tls_key_sealed;  // the service TLS key, sealed under master_key
  std::string tls_chain_pem;
  std::string service_ca_pem;
  bool insecure_sim = false;            // the member accepted sim evidence
};

// Runs the protocol once against the member behind `post`. A refusal is the member's Status
// (e.g. 403 measurement_not_allowed, 404 cluster_join_disabled) with context; an answer without
// the expected fields is Internal kBadPeerResponse; a key that does not open is kUnwrapFailed.
// The caller decides whether the key is the one it needs (a new member: the TLS key unseals; a
// member picking up a rotation: the key opens the store).
Result<JoinResult> RunJoinClient(const JoinTransport& post, const EvidenceSource& source);

}  // namespace vouch::cluster
