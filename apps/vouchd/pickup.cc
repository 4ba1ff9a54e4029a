// The pickup of a rotated master key by a serving member (pickup.h, docs/cluster.md).
#include "pickup.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "api/master_key.h"
#include "api/reasons.h"
#include "attest/sim_vendor.h"
#include "base/file.h"
#include "cluster/join.h"
#include "join.h"

namespace vouchd {

using namespace vouch;

namespace {

Status BadConfig(const std::string& what) {
  return DataLoss("config.json: " + what, std::string(api::kInvalidConfig));
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<PickupOptions> LoadPickupOptions(const std::string& data_dir, const std::vector<std::string>& flag_peers,
                                        const std::string& flag_sim) {
  PickupOptions o;
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(data_dir + "/config.json", 1 << 20));
  auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object()) return BadConfig("not a JSON object");
  nlohmann::json c = config.contains("cluster") ? config["cluster"] : nlohmann::json::object();
  if (!c.is_object()) return BadConfig("\"cluster\" must be an object");
  if (c.contains(kConfigPeers)) {
    const auto& peers = c[kConfigPeers];
    if (!peers.is_array() || peers.size() > 64) return BadConfig("cluster.peers must be an array of https:// URLs");
    for (const auto& p : peers) {
      if (!p.is_string() || p.get<std::string>().rfind("https://", 0) != 0)
        return BadConfig("cluster.peers must be an array of https:// URLs");
      o.peers.push_back(p.get<std::string>());
    }
  }
  for (const char* key : {kConfigTee, kConfigSim, "ca_file"}) {
    if (c.contains(key) && !c[key].is_string()) return BadConfig(std::string("cluster.") + key + " must be a string");
  }
  if (c.contains(kConfigTee)) o.tee = c[kConfigTee].get<std::string>();
  if (c.contains(kConfigSim)) o.sim_dir = c[kConfigSim].get<std::string>();
  o.ca_file = c.contains("ca_file") ? c["ca_file"].get<std::string>() : data_dir + "/service-ca.pem";
  if (!flag_peers.empty()) o.peers = flag_peers;
  if (!flag_sim.empty()) o.sim_dir = flag_sim;
  for (const auto& p : o.peers) {
    if (p.rfind("https://", 0) != 0) return InvalidArgument("--peer " + p + " is not an https:// URL");
  }
  if (o.peers.empty()) {
    o.unavailable = "no peer is configured (vouchd serve --peer URL, or config.json cluster.peers)";
  } else if (o.tee != "sim") {
    o.unavailable = "cluster.tee \"" + o.tee + "\" is not a TEE backend of this build (sim)";
  } else if (o.sim_dir.empty()) {
    o.unavailable = "no evidence source is configured (vouchd serve --sim DIR, or config.json cluster.sim)";
  } else if (!FileExists(o.ca_file)) {
    o.unavailable = "the cluster's service CA " + o.ca_file + " does not exist (config.json cluster.ca_file)";
  }
  return o;
}

KeyPickup::KeyPickup(api::Manager& manager, http::Metrics* metrics, PickupOptions options)
    : manager_(manager), metrics_(metrics), options_(std::move(options)) {}

std::unique_ptr<KeyPickup> KeyPickup::Start(api::Manager& manager, http::Metrics* metrics, PickupOptions options) {
  if (metrics != nullptr) {
    metrics->DeclareGauge("vouch_master_key_current",
                          "1 when the store's sealed values are under this member's master key; 0 when another "
                          "member rotated it and this member has not picked up the new key yet");
    metrics->DeclareCounter("vouch_master_key_pickups_total",
                            "Attempts to obtain a rotated master key through the attested join path, by result");
  }
  if (options.unavailable.empty()) {
    spdlog::info("master key: a rotation by another member is picked up through the attested join path from {}",
                 Join(options.peers));
  } else {
    spdlog::info("master key: a rotation by another member cannot be picked up here: {}", options.unavailable);
  }
  auto p = std::unique_ptr<KeyPickup>(new KeyPickup(manager, metrics, std::move(options)));
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

KeyPickup::~KeyPickup() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KeyPickup::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

Status PickUpMasterKey(api::Manager& manager, const PickupOptions& options, std::string* peer) {
  if (!options.unavailable.empty()) return FailedPrecondition(options.unavailable);
  VOUCH_ASSIGN_OR_RETURN(auto sim, attest::SimVendor::Load(options.sim_dir));
  cluster::EvidenceSource source;
  source.sim = sim.get();
  // The running binary's measurement, as `vouchd join` gives it (/proc/self/exe stays the image
  // this process runs even if the file is replaced).
  VOUCH_ASSIGN_OR_RETURN(source.measurement, cluster::SelfMeasurement());
  // A peer's key is taken only if it opens the store (AdoptMasterKey refuses it otherwise, e.g.
  // from a peer that holds the old key too): then the next peer is asked.
  auto joined = JoinThroughPeers(options.peers, options.ca_file, source,
                                 [&](const cluster::JoinResult& r) { return manager.AdoptMasterKey(r.master_key); });
  if (!joined.ok()) return joined.status();
  *peer = joined->peer;
  return Status::Ok();
}

void KeyPickup::Run() {
  using Clock = std::chrono::steady_clock;
  auto backoff = options_.min_backoff;
  Clock::time_point next_attempt = Clock::time_point::min();
  bool stale = false;                  // the last check found the key rotated away
  std::string logged_failure;          // the failure last logged in this stale streak
  std::optional<std::string> check_error;
  auto gauge = [&](double v) {
    if (metrics_ != nullptr) metrics_->SetGauge("vouch_master_key_current", {}, v);
  };
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const auto checked_at = Clock::now();
    auto current = manager_.MasterKeyCurrent();
    if (!current.ok()) {
      // The store is unreachable: nothing to decide; the gauge keeps its last value.
      if (check_error != current.status().message()) {
        spdlog::warn("master key: cannot read the store's key check ({}); checking again", current.status().message());
        check_error = current.status().message();
      }
    } else {
      check_error.reset();
      gauge(*current ? 1 : 0);
      if (*current) {
        if (stale) spdlog::info("master key: the store is under this member's key {} again", manager_.MasterKeyId());
        stale = false;
        backoff = options_.min_backoff;
        next_attempt = Clock::time_point::min();
        logged_failure.clear();
      } else {
        if (!stale) {
          spdlog::warn("master key: the store's sealed values are no longer under this member's key {} (another "
                       "member rotated it): sealing operations answer 503 master_key_rotated until the new key is "
                       "obtained",
                       manager_.MasterKeyId());
          stale = true;
        }
        if (Clock::now() >= next_attempt) {
          const std::string old_id = manager_.MasterKeyId();
          std::string peer;
          Status st = PickUpMasterKey(manager_, options_, &peer);
          if (st.ok()) {
            if (metrics_ != nullptr) metrics_->Increment("vouch_master_key_pickups_total", {{"result", "ok"}});
            gauge(1);
            spdlog::info("master key: picked up the rotated key {} from {} through the attested join path (was {}); "
                         "sealing operations resume",
                         manager_.MasterKeyId(), peer, old_id);
            stale = false;
            backoff = options_.min_backoff;
            next_attempt = Clock::time_point::min();
            logged_failure.clear();
          } else {
            if (metrics_ != nullptr) metrics_->Increment("vouch_master_key_pickups_total", {{"result", "failed"}});
            if (st.message() != logged_failure) {
              spdlog::error("master key: this member holds a rotated-out key and could not obtain the new one ({}); "
                            "it serves issuance and heartbeats but refuses sealing operations (503 "
                            "master_key_rotated) and is not ready. Enable joining on a member (vouchd serve "
                            "--allow-cluster-join) so that it picks the key up, or re-join this member (vouchd join); "
                            "retrying with back-off up to {} s",
                            st.message(), options_.max_backoff.count() / 1000);
              logged_failure = st.message();
            } else {
              spdlog::debug("master key: pickup failed again: {}", st.message());
            }
            next_attempt = Clock::now() + backoff;
            backoff = std::min(backoff * 2, options_.max_backoff);
          }
        }
      }
    }
    lock.lock();
    cv_.wait_for(lock, options_.check_interval, [&] { return stopping_ || poked_; });
    // Poked (a request answered master_key_rotated): check now, but not more than every 250 ms.
    if (poked_) cv_.wait_until(lock, checked_at + std::chrono::milliseconds(250), [&] { return stopping_; });
    poked_ = false;
  }
}

void PickupSignal::Attach(KeyPickup* pickup) {
  std::lock_guard<std::mutex> lock(mu_);
  pickup_ = pickup;
}

void PickupSignal::Poke() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pickup_ != nullptr) pickup_->Poke();
}

http::Router PokeOnRotatedKey(http::Router inner, std::shared_ptr<PickupSignal> signal) {
  std::set<std::string> methods;
  for (const auto& r : inner.Routes()) methods.insert(r.method);
  auto shared = std::make_shared<const http::Router>(std::move(inner));
  http::Router outer;
  for (const std::string& method : methods) {
    outer.Add(method, "/{path...}", [shared, signal](http::Request& req) {
      http::Response res = shared->Dispatch(req);
      if (res.status == 503 && res.body.find(api::kMasterKeyRotated) != std::string::npos) signal->Poke();
      return res;
    });
  }
  return outer;
}

}  // namespace vouchd
