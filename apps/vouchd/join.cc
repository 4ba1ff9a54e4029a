// `vouchd join`: become a member of an existing cluster by attesting to one of its members
// (docs/cluster.md). Wiring only: the protocol is libs/cluster (join_client.h), the data dir
// libs/api/bootstrap.
#include "join.h"

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "api/bootstrap.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "client/api_client.h"
#include "cluster/join.h"
#include "store/reasons.h"

namespace vouchd {

using namespace vouch;

namespace {
// Reason codes of `vouchd join` (the joining side; the peer's own are cluster/reasons.h).
constexpr std::string_view kInvalidTee = "invalid_tee";  // InvalidArgument

// Records in DATA/config.json what a later pickup of a rotated master key needs (docs/cluster.md,
// "Picking up a rotated master key"): the peers and the evidence source. Written after the data
// dir is complete; a failure here leaves a working member that must be given --peer and --sim.
Status RecordJoin(const JoinArgs& a) {
  const std::string path = a.data_dir + "/config.json";
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, 1 << 20));
  auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object() || !config["cluster"].is_object()) return DataLoss(path + " is not what vouchd join wrote");
  std::error_code ec;
  const std::string sim = std::filesystem::absolute(a.sim_dir, ec).lexically_normal().string();
  config["cluster"][kConfigPeers] = a.peers;
  config["cluster"][kConfigTee] = a.tee;
  config["cluster"][kConfigSim] = ec ? a.sim_dir : sim;
  return WriteFileAtomic(path, config.dump(2) + "\n", 0600);
}
}  // namespace

Result<JoinedThrough> JoinThroughPeers(const std::vector<std::string>& peers, const std::string& ca_file,
                                       const cluster::EvidenceSource& source,
                                       const std::function<Status(const cluster::JoinResult&)>& accept) {
  if (peers.empty()) return InvalidArgument("no peer to join through");
  Status last = Status::Ok();
  for (const std::string& peer : peers) {
    client::ClientOptions o;
    o.base_urls = {peer};
    o.ca_file = ca_file;
    // Bounded, so that a serving member's pickup (pickup.h) never holds up its shutdown for long.
    o.connect_timeout = std::chrono::seconds(3);
    o.request_timeout = std::chrono::seconds(15);
    auto api = client::ApiClient::Create(o);
    if (!api.ok()) {
      last = api.status().WithContext(peer);
      continue;
    }
    cluster::JoinTransport post = [&](const std::string& path, const nlohmann::json& body) {
      return (*api)->Post(path, body);
    };
    auto joined = cluster::RunJoinClient(post, source);
    if (!joined.ok()) {
      last = joined.status().WithContext(peer);
      continue;
    }
    if (accept) {
      if (Status st = accept(*joined); !st.ok()) {
        last = st.WithContext(peer);
        continue;
      }
    }
    return JoinedThrough{std::move(*joined), peer};
  }
  return last;
}

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
  cluster::EvidenceSource source;
  source.sim = sim.get();
  VOUCH_ASSIGN_OR_RETURN(source.measurement, cluster::SelfMeasurement());
  auto joined = JoinThroughPeers(a.peers, a.ca_file, source);
  if (!joined.ok()) return joined.status();

  api::JoinedDataDir j;
  j.master_key = std::move(joined->result.master_key);
  j.tls_key_sealed = std::move(joined->result.tls_key_sealed);
  j.tls_chain_pem = std::move(joined->result.tls_chain_pem);
  j.service_ca_pem = std::move(joined->result.service_ca_pem);
  j.data_dir = a.data_dir;
  j.store_url = a.store_url;
  j.listen = a.listen;
  j.allow_sim = joined->result.insecure_sim;
  j.collateral_dir = a.sim_dir;
  VOUCH_RETURN_IF_ERROR(api::WriteJoinedDataDir(j));
  if (Status st = RecordJoin(a); !st.ok()) {
    std::fprintf(stderr, "vouchd: warning: the peers were not recorded in config.json (%s): give vouchd serve "
                 "--peer and --sim to pick up a rotated master key\n", st.message().c_str());
  }
  std::printf("joined the cluster through %s\n  data dir:    %s\n  measurement: %s%s\n  store:       %s\n",
              joined->peer.c_str(), a.data_dir.c_str(), HexEncode(source.measurement).c_str(),
              j.allow_sim ? " (INSECURE sim evidence)" : "", a.store_url.c_str());
  return Status::Ok();
}

}  // namespace vouchd
