// The member side of the cluster join protocol (docs/cluster.md).
#include "api/manager.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "store/audit.h"

namespace vouch::api {

namespace {
constexpr std::string_view kTlsKeyAad = "vouch:service-tls-key";  // as bootstrap.cc seals it
}  // namespace

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
  // Made (and checked at the join) with the key the store is under, which is the one a grant
  // hands out: a member whose key was rotated away answers 503 master_key_rotated instead.
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, ClusterKey());
  return json{{"nonce", cluster::MakeNonce(key, clock_->Now())}, {"expires_in", 300}};
}

Result<json> Manager::ClusterJoin(const json& body, const std::string& remote) {
  if (!cluster_)
    return NotFound("this instance does not accept cluster joins",
                    std::string(kClusterJoinDisabled));
  VOUCH_ASSIGN_OR_RETURN(cluster::JoinRequest req, cluster::JoinRequest::FromJson(body));
  // The key the store's sealed values are under (never a key rotated away: a joiner, or a member
  // picking up a rotation, must receive the key that opens the store), and the service TLS key
  // sealed under that same key.
  VOUCH_ASSIGN_OR_RETURN(const crypto::SecretBytes master_key, ClusterKey());
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> tls_key_sealed, ClusterTlsKeySealed(master_key));
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
              {"tls_key_sealed", Base64Encode(tls_key_sealed)},
              {"service_ca_pem", c.service_ca_pem},
              {"measurement", detail["measurement"]},
              {"insecure_sim", detail["insecure_sim"]}};
}

Result<crypto::SecretBytes> Manager::ClusterKey() const {
  std::optional<crypto::SecretBytes> key;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes k, StoreKey(tx));  // 503 master_key_rotated
    key.emplace(std::move(k));
    return Status::Ok();
  }));
  return std::move(*key);
}

Result<std::vector<uint8_t>> Manager::ClusterTlsKeySealed(const crypto::SecretBytes& key) const {
  auto opens = [&](const std::vector<uint8_t>& sealed) {
    return crypto::Aes256GcmOpen(key.span(), sealed, AsBytes(kTlsKeyAad)).ok();
  };
  std::vector<std::vector<uint8_t>> candidates;
  // The data directory's file as it is now (rewritten by a rotation or an adoption), then the
  // file a rotation in flight writes beside it, then what was read at start.
  if (!options_.data_dir.empty()) {
    if (auto files = MasterKeyFilesOf(options_.data_dir); files.ok()) {
      for (const std::string& path : {files->tls_key, files->tls_key_next}) {
        if (auto text = ReadWholeFile(path, 1 << 20); text.ok()) candidates.emplace_back(text->begin(), text->end());
      }
    }
  }
  candidates.push_back(cluster_->config.tls_key_sealed);
  for (auto& c : candidates) {
    if (opens(c)) return std::move(c);
  }
  return Unavailable("this member's service TLS key is not yet sealed under the cluster's current master key (a "
                     "rotation is finishing): retry",
                     std::string(kMasterKeyRotated));
}

}  // namespace vouch::api

