// The member side of the cluster join protocol (docs/cluster.md).
#include "api/manager.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "store/audit.h"

namespace vouch::api {

struct Manager::ClusterJoinState {
  ClusterJoinConfig config;
  std::unique_ptr<attest::DcapVerifier> verifier;
};

Status Manager::EnableClusterJoin(ClusterJoinConfig config) {
  auto state = std::make_shared<ClusterJoinState>();
  VOUCH_ASSIGN_OR_RETURN(state->verifier, cluster::MakeJoinVerifier(config.policy));
  state->config = std::move(config);
  cluster_ = std::move(state);
  return Status::Ok();
}

Result<json> Manager::ClusterNonce() {
  if (!cluster_)
    return NotFound("this instance does not accept cluster joins",
                    std::string(kClusterJoinDisabled));
  return json{{"nonce", cluster::MakeNonce(HeldMasterKey(), clock_->Now())}, {"expires_in", 300}};
}

Result<json> Manager::ClusterJoin(const json& body, const std::string& remote) {
  if (!cluster_)
    return NotFound("this instance does not accept cluster joins",
                    std::string(kClusterJoinDisabled));
  VOUCH_ASSIGN_OR_RETURN(cluster::JoinRequest req, cluster::JoinRequest::FromJson(body));
  const crypto::SecretBytes master_key = HeldMasterKey();
  auto grant = cluster::GrantJoin(req, cluster_->config.policy, *cluster_->verifier, master_key, master_key.span(),
                                  clock_->Now());
  json detail = {{"remote", remote}};
  if (grant.ok()) {
    detail["measurement"] = grant->verdict["measurements"].value("mrenclave", "");
    detail["insecure_sim"] = grant->verdict.value("insecure_sim", false);
    detail["tcb_status"] = grant->verdict.value("tcb_status", json(nullptr));
  } else {
    detail["reason"] = grant.status().reason();
    detail["message"] = grant.status().message();
  }
  // The attempt is recorded whatever its outcome; a refusal is returned even if auditing fails.
  Status audited = db_->Write([&](store::Transaction& tx) {
    return store::AppendAudit(tx, clock_->Now(), "cluster-joiner:" + remote, "cluster.join", "cluster",
                              grant.ok() ? "ok" : "denied", detail);
  });
  if (!grant.ok()) return grant.status();
  // Never hand out the key if the grant could not be recorded.
  VOUCH_RETURN_IF_ERROR(audited);
  const ClusterJoinConfig& c = cluster_->config;
  return json{{"peer_public_key", Base64Encode(grant->peer_public_key)},
              {"wrapped_master_key", Base64Encode(grant->wrapped)},
              {"tls_chain_pem", c.tls_chain_pem},
              {"tls_key_sealed", Base64Encode(c.tls_key_sealed)},
              {"service_ca_pem", c.service_ca_pem},
              {"measurement", detail["measurement"]},
              {"insecure_sim", detail["insecure_sim"]}};
}

}  // namespace vouch::api
