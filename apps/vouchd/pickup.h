#pragma once

// A serving member picks up a master key another member rotated to (docs/cluster.md, "Picking up
// a rotated master key"): a watcher thread asks the Manager every few seconds (and at once when
// poked) whether the store is still under this process's key; when it is not, it runs the
// attested join protocol (join.h, libs/cluster/join_client.h) against the configured peers with
// this member's own evidence, and adopts the key it receives (Manager::AdoptMasterKey checks that
// it opens the store, rewrites DATA/master.key and the sealed TLS key, swaps it in memory and
// audits master_key.adopt). No restart, no request lost: until then the member serves what needs
// no unsealing and refuses the rest with 503 master_key_rotated.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/manager.h"
#include "base/result.h"
#include "http/metrics.h"
#include "http/router.h"

namespace vouchd {

struct PickupOptions {
  std::vector<std::string> peers;  // members' https:// URLs, tried in order
  std::string ca_file;             // the cluster's service CA (DATA/service-ca.pem)
  std::string tee = "sim";
  std::string sim_dir;             // the sim platform producing this member's evidence
  std::chrono::milliseconds check_interval{2000};
  std::chrono::milliseconds min_backoff{1000};   // after a failed pickup; doubles
  std::chrono::milliseconds max_backoff{30000};
  // Why the pickup cannot run at all (no peer, no evidence source): logged with the re-join line.
  std::string unavailable;
};

// The options from DATA/config.json "cluster" {"peers": [URL...], "tee": "sim", "sim": DIR}
// (written by `vouchd join`) and DATA/service-ca.pem ("ca_file" overrides it), with vouchd serve's
// --peer and --sim given precedence. A malformed config.json section is an error (vouchd refuses
// to start); missing pieces only make the pickup unavailable (options.unavailable says why).
vouch::Result<PickupOptions> LoadPickupOptions(const std::string& data_dir, const std::vector<std::string>& flag_peers,
                                               const std::string& flag_sim);

// One pickup now: the join protocol against options.peers in order, the first key that opens the
// store adopted (Manager::AdoptMasterKey). Ok with the peer that gave it in *peer. vouchd serve
// calls it once at start when it was stopped during a rotation; the watcher calls it when stale.
vouch::Status PickUpMasterKey(vouch::api::Manager& manager, const PickupOptions& options, std::string* peer);

class KeyPickup {
 public:
  // Starts the watcher; it checks at once, then every check_interval. The gauge
  // vouch_master_key_current (1: the store is under this member's key, 0: not) and the counter
  // vouch_master_key_pickups_total{result} are kept on `metrics`.
  static std::unique_ptr<KeyPickup> Start(vouch::api::Manager& manager, vouch::http::Metrics* metrics,
                                          PickupOptions options);
  ~KeyPickup();  // stops the watcher (an attempt in flight ends within its HTTP timeouts)
  KeyPickup(const KeyPickup&) = delete;
  KeyPickup& operator=(const KeyPickup&) = delete;

  // Check now (an operation was refused with master_key_rotated). Never blocks; checks come at
  // most every 250 ms however often it is poked.
  void Poke();

 private:
  KeyPickup(vouch::api::Manager& manager, vouch::http::Metrics* metrics, PickupOptions options);
  void Run();

  vouch::api::Manager& manager_;
  vouch::http::Metrics* metrics_;
  PickupOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool poked_ = false;
  std::thread thread_;
};

// Lets request handlers wake the watcher, which is made after the router: pokes go nowhere until
// Attach and after Attach(nullptr).
class PickupSignal {
 public:
  void Attach(KeyPickup* pickup);
  void Poke();

 private:
  std::mutex mu_;
  KeyPickup* pickup_ = nullptr;
};

// `inner` behind one catch-all route ("/{path...}") per method it serves: every answer 503
// master_key_rotated pokes `signal`, so the watcher checks at once instead of at its next tick.
// The answer is inner's, unchanged, and so is the route label (inner's dispatch sets req.route).
vouch::http::Router PokeOnRotatedKey(vouch::http::Router inner, std::shared_ptr<PickupSignal> signal);

}  // namespace vouchd
