// `vouchd join`: become a member of an existing cluster by attesting to one of its members
// (docs/cluster.md). Wiring only: the protocol is libs/cluster, the data dir libs/api/bootstrap.
#include "join.h"

#include <cstdio>

#include "api/bootstrap.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "client/api_client.h"
#include "cluster/join.h"
#include "store/reasons.h"

namespace vouchd {

using namespace vouch;

namespace {
// Reason codes of `vouchd join` (the joining side; the peer's own are cluster/reasons.h).
constexpr std::string_view kInvalidTee = "invalid_tee";             // InvalidArgument
constexpr std::string_view kBadPeerResponse = "bad_peer_response";  // Internal
}  // namespace

Status RunJoin(const JoinArgs& a) {
  if (a.tee != "sim")
    return InvalidArgument("--tee must be sim (the only TEE backend on this machine)",
                           std::string(kInvalidTee));
  if (a.sim_dir.empty()) return InvalidArgument("--tee sim needs --sim DIR (the sim vendor)");
  if (a.store_url.rfind("postgres", 0) != 0) {
    return InvalidArgument("--store must be the cluster's postgres:// URL",
                           std::string(store::kInvalidStoreUrl));
  }
  VOUCH_ASSIGN_OR_RETURN(auto sim, attest::SimVendor::Load(a.sim_dir));
  client::ClientOptions o;
  o.base_urls = a.peers;
  o.ca_file = a.ca_file;
  VOUCH_ASSIGN_OR_RETURN(auto api, client::ApiClient::Create(o));

  VOUCH_ASSIGN_OR_RETURN(client::json nonce, api->Post("/api/v1/cluster/nonce"));
  if (!nonce.contains("nonce") || !nonce["nonce"].is_string()) {
    return Internal("the peer answered without a nonce", std::string(kBadPeerResponse));
  }
  VOUCH_ASSIGN_OR_RETURN(cluster::Measurement self, cluster::SelfMeasurement());
  VOUCH_ASSIGN_OR_RETURN(auto joiner, cluster::Joiner::Create());
  VOUCH_ASSIGN_OR_RETURN(cluster::JoinRequest req, joiner->SimRequest(*sim, self, nonce["nonce"].get<std::string>()));
  auto grant = api->Post("/api/v1/cluster/join", req.ToJson());
  if (!grant.ok()) return grant.status().WithContext("the peer refused the join");

  auto field = [&](const char* name) -> Result<std::vector<uint8_t>> {
    if (!grant->contains(name) || !(*grant)[name].is_string()) {
      return Internal(std::string("the peer's answer lacks ") + name,
                      std::string(kBadPeerResponse));
    }
    return Base64Decode((*grant)[name].get<std::string>());
  };
  VOUCH_ASSIGN_OR_RETURN(auto peer_key, field("peer_public_key"));
  VOUCH_ASSIGN_OR_RETURN(auto wrapped, field("wrapped_master_key"));
  api::JoinedDataDir j;
  VOUCH_ASSIGN_OR_RETURN(j.master_key, joiner->Open(req, peer_key, wrapped));
  VOUCH_ASSIGN_OR_RETURN(j.tls_key_sealed, field("tls_key_sealed"));
  j.tls_chain_pem = grant->value("tls_chain_pem", "");
  j.service_ca_pem = grant->value("service_ca_pem", "");
  j.data_dir = a.data_dir;
  j.store_url = a.store_url;
  j.listen = a.listen;
  j.allow_sim = grant->value("insecure_sim", false);
  j.collateral_dir = a.sim_dir;
  VOUCH_RETURN_IF_ERROR(api::WriteJoinedDataDir(j));
  std::printf("joined the cluster through %s\n  data dir:    %s\n  measurement: %s%s\n  store:       %s\n",
              a.peers.front().c_str(), a.data_dir.c_str(), HexEncode(self).c_str(),
              j.allow_sim ? " (INSECURE sim evidence)" : "", a.store_url.c_str());
  return Status::Ok();
}

}  // namespace vouchd
