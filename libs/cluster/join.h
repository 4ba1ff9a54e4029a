#pragma once

// The cluster join protocol (docs/cluster.md). A joiner proves with TEE evidence that it runs an
// approved vouchd build; only then does a member wrap the cluster master key to the joiner's
// ephemeral key. All functions are thread-safe (no shared state) and never throw.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/dcap_verifier.h"
#include "attest/sim_vendor.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"

namespace vouch::cluster {

using Measurement = std::array<uint8_t, 32>;

// SHA-256 of the running executable (/proc/self/exe): the sim's stand-in for MRENCLAVE. On SGX
// hardware the CPU measures the enclave instead.
Result<Measurement> SelfMeasurement();
// SHA-256 of a file (for `vouchd cluster measurement FILE`).
Result<Measurement> FileMeasurement(const std::string& path);

// What a member accepts from a joiner.
struct JoinPolicy {
  std::vector<Measurement> measurements;  // approved vouchd builds (MRENCLAVE)
  bool allow_sim = false;                 // accept the INSECURE sim vendor's evidence
  // Collateral folder for the DCAP verifier (tcbInfo.json, ... ; a sim vendor folder for sim).
  std::string collateral_dir;
};

// The verifier for a policy: DCAP with the policy's collateral folder. Without allow_sim a sim
// root found in the folder is passed as an explicit root, so sim evidence is refused with
// "sim_not_allowed" rather than an anonymous untrusted chain.
Result<std::unique_ptr<attest::DcapVerifier>> MakeJoinVerifier(const JoinPolicy& policy);

// A fresh, stateless nonce: hex of crypto::MakeTimedNonce(master key, "vouch-cluster-nonce-v1", now)
// (issue time ‖ random ‖ truncated HMAC). Any member holding the master key can check a nonce
// another member issued.
std::string MakeNonce(const crypto::SecretBytes& master_key, TimePoint now);
// Ok when `nonce` was made with `master_key` at most `max_age` ago (and not in the future).
Status CheckNonce(const crypto::SecretBytes& master_key, const std::string& nonce, TimePoint now,
                  std::chrono::seconds max_age = std::chrono::seconds(300));

// SHA-256("vouch-cluster-join-v1" ‖ u16 len ‖ joiner public key ‖ u16 len ‖ nonce) ‖ 32 zero bytes:
// the report data of the joiner's evidence. Binds the evidence to the key and the nonce.
std::array<uint8_t, 64> JoinReportData(std::span<const uint8_t> joiner_public_key, const std::string& nonce);

struct JoinRequest {
  std::vector<uint8_t> evidence;    // SGX quote v3
  std::vector<uint8_t> public_key;  // joiner's ephemeral P-256 key, SEC1 uncompressed (65 bytes)
  std::string nonce;
  nlohmann::json ToJson() const;
  static Result<JoinRequest> FromJson(const nlohmann::json& j);  // bounds-checked; InvalidArgument
};

// The joiner's half: an ephemeral key, and the request carrying sim evidence of `measurement`.
class Joiner {
 public:
  static Result<std::unique_ptr<Joiner>> Create();
  // Evidence from the (INSECURE) sim platform: an SGX quote whose MRENCLAVE is `measurement`.
  Result<JoinRequest> SimRequest(const attest::SimVendor& sim, const Measurement& measurement,
                                 const std::string& nonce) const;
  // Unwraps the payload of a grant made for `request`.
  Result<crypto::SecretBytes> Open(const JoinRequest& request, std::span<const uint8_t> peer_public_key,
                                   std::span<const uint8_t> wrapped) const;
  const std::vector<uint8_t>& public_key() const { return public_key_; }

 private:
  Joiner() = default;
  crypto::EvpPkeyPtr key_;
  std::vector<uint8_t> public_key_;
};

struct JoinGrant {
  std::vector<uint8_t> peer_public_key;  // the member's ephemeral P-256 key (SEC1)
  std::vector<uint8_t> wrapped;          // AES-256-GCM(nonce ‖ ciphertext ‖ tag) of the payload
  nlohmann::json verdict;                // what was checked (for the audit log)
};

// The member's half. Verifies `request` under `policy` with `verifier` (built with the policy's
// collateral and allow_sim) at `now`, then wraps `payload` (the master key) to the joiner.
// Acceptability is decided by libs/policy (docs/policy.md). Refusals are PermissionDenied with a
// stable reason: invalid_nonce, then policy's codes: evidence_not_genuine, sim_not_allowed,
// tcb_too_old / tcb_revoked / tcb_not_supported / tcb_unknown, report_data_mismatch,
// debug_not_allowed, measurement_not_allowed.
Result<JoinGrant> GrantJoin(const JoinRequest& request, const JoinPolicy& policy, const attest::DcapVerifier& verifier,
                            const crypto::SecretBytes& master_key, std::span<const uint8_t> payload, TimePoint now);

}  // namespace vouch::cluster
