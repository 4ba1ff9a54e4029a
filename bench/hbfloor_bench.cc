// The floor for MAC heartbeat ingest (BENCHMARKS.md, "Scale (issue 16)"): the work no
// implementation of POST /api/v1/heartbeats can skip, and nothing else. Per batch: the body read
// and checked as vouchd's route does it (api::ParseHeartbeatBatch: the field checks, base64 of
// the MAC), and per heartbeat: the instance's cached key found by instance id in a hash map, the
// canonical message built (workload::HeartbeatMacMessage), HMAC-SHA256 computed as vouchd does
// (workload::HmacSha256Fast) and compared in constant time. No TLS, no HTTP, no store, no key
// derivation.
//
//   bench_hbfloor [--instances N] [--batch B] [--threads T] [--seconds S]
//
// The same batch bodies as bench_agent's (bench/hb_common.h), N instances in batches of B, on T
// threads (default: as many as cores) for S seconds. Prints one JSON line: {"per_second", ...}.
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/heartbeat_batch.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "hb_common.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_hbfloor: %s\n", what.c_str());
  std::exit(2);
}

void ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) fn(i);
    });
  }
  for (auto& t : ts) t.join();
}

// What the route does with one body (api::ParseHeartbeatBatch: its checks and answers), then the
// MAC check per heartbeat as IngestHeartbeats makes it. Returns the number of heartbeats whose
// MAC matched, or -1 on a body the route would refuse.
long Ingest(const std::string& body, const std::unordered_map<std::string, vouch::bench::MacKey>& keys) {
  auto batch = vouch::api::ParseHeartbeatBatch(body);
  if (!batch.ok()) return -1;
  long good = 0;
  for (const vouch::api::Heartbeat& h : batch->heartbeats) {
    auto key = keys.find(h.instance_id);
    if (key == keys.end() || h.mac.size() != 32) continue;
    // As vouchd's IngestHeartbeats does it.
    const std::string msg = vouch::workload::HeartbeatMacMessage(h.instance_id, h.seq, h.timestamp, h.status);
    auto want = vouch::workload::HmacSha256Fast(key->second, vouch::AsBytes(msg));
    if (CRYPTO_memcmp(want.data(), h.mac.data(), 32) == 0) ++good;
  }
  return good;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 1; i + 1 < argc; i += 2) f[argv[i]] = argv[i + 1];
  auto get = [&](const std::string& k, const std::string& def) { return f.count(k) ? f[k] : def; };
  size_t n = std::stoul(get("--instances", "1000000")), batch = std::stoul(get("--batch", "100"));
  size_t threads = std::stoul(get("--threads", std::to_string(std::max(1u, std::thread::hardware_concurrency()))));
  double seconds = std::stod(get("--seconds", "3"));
  std::string prefix = get("--prefix", "inst_b");
  if (n == 0 || batch == 0 || threads == 0) Die("--instances, --batch and --threads must be positive");

  // Keys as vouchd caches them (derived from an ECDH secret per serial); any secret costs the same.
  std::vector<uint8_t> shared(32, 0x5a);
  std::vector<vouch::bench::MacKey> macs(n);
  ParallelFor(n, threads, [&](size_t i) {
    auto k = vouch::bench::DeriveMacKey(shared, vouch::bench::Serial(i));
    if (!k.ok()) Die("derive: " + k.status().ToString());
    macs[i] = *k;
  });
  std::unordered_map<std::string, vouch::bench::MacKey> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) keys.emplace(vouch::bench::InstanceId(prefix, i), macs[i]);
  int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  size_t nbodies = (n + batch - 1) / batch;
  std::vector<std::string> bodies(nbodies);
  ParallelFor(nbodies, threads, [&](size_t b) {
    size_t first = b * batch;
    bodies[b] = vouch::bench::BatchBody(prefix, first, std::min(batch, n - first), n, 1, ts, "mac",
                                        [&](size_t i, const std::string& id) {
                                          return vouch::bench::MacB64(macs[i], id, 1, ts, "running");
                                        });
  });

  std::atomic<size_t> done{0};
  std::atomic<bool> bad{false};
  auto t0 = Clock::now();
  auto stop = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> ts_;
  for (size_t t = 0; t < threads; ++t) {
    ts_.emplace_back([&, t] {
      size_t mine = 0;
      for (size_t b = t;; b += threads) {
        if (b >= nbodies) b %= nbodies;
        long good = Ingest(bodies[b], keys);
        if (good < 0 || static_cast<size_t>(good) != std::min(batch, n - b * batch)) bad = true;
        mine += good > 0 ? static_cast<size_t>(good) : 0;
        if (Clock::now() >= stop) break;
      }
      done.fetch_add(mine);
    });
  }
  for (auto& t : ts_) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (bad) Die("a heartbeat did not verify");
  json out{{"mode", "floor"},
           {"what", "ParseHeartbeatBatch (the route's reading and checks) + HMAC-SHA256 per heartbeat"},
           {"instances", n},
           {"batch", batch},
           {"threads", threads},
           {"heartbeats", done.load()},
           {"seconds", secs},
           {"per_second", static_cast<double>(done.load()) / secs}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
