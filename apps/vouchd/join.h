#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "cluster/join_client.h"

namespace vouchd {

struct JoinArgs {
  std::string data_dir;
  std::vector<std::string> peers;  // members' https:// URLs, tried in order
  std::string ca_file;             // the cluster's service CA (DIR/service-ca.pem of a member)
  std::string store_url;           // the cluster's postgres:// URL
  std::string listen = "127.0.0.1:8443";
  std::string tee = "sim";
  std::string sim_dir;
};

vouch::Status RunJoin(const JoinArgs& args);

// The join protocol (libs/cluster/join_client.h) over HTTPS against `peers`, tried in order, each
// on its own connection (the nonce and the join go to the same member). `accept` decides whether
// a member's key is the one wanted (a refusal goes on to the next peer); the first accepted
// result is returned with the peer that gave it, else the last refusal. `vouchd join` and the
// serving member's pickup of a rotated key (pickup.h) both come here.
struct JoinedThrough {
  vouch::cluster::JoinResult result;
  std::string peer;
};
vouch::Result<JoinedThrough> JoinThroughPeers(
    const std::vector<std::string>& peers, const std::string& ca_file, const vouch::cluster::EvidenceSource& source,
    const std::function<vouch::Status(const vouch::cluster::JoinResult&)>& accept = nullptr);

// config.json "cluster" keys written by `vouchd join` and read by `vouchd serve` for the pickup
// (docs/cluster.md): the peers joined through and this member's evidence source.
inline constexpr const char* kConfigPeers = "peers";
inline constexpr const char* kConfigTee = "tee";
inline constexpr const char* kConfigSim = "sim";

}  // namespace vouchd
