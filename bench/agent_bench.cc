// Load generator for the agent benchmarks (BENCHMARKS.md, "Agent"); bench/agent_bench.sh runs it.
//
//   bench_agent issue   --socket PATH[,PATH...] --requests N --threads T --mrenclave HEX --mrsigner HEX
//                       [--isvprodid N --isvsvn N --dns NAME]
//       Simulated workloads getting certificates through running vouch-agents (connection i
//       goes to socket i mod #sockets): keys, CSRs and the sim REPORTs (what EREPORT returns
//       in-process on hardware) are made before the clock starts; timed are the
//       POST /v1/certificate calls (the agent's MAC and binding checks, the mTLS hop, vouchd's
//       checks, signing and the durable record), over keep-alive connections.
//   bench_agent cfssl   --url http://127.0.0.1:PORT --requests N --threads T
//       The same generator against `cfssl serve`: POST /api/v1/cfssl/sign with P-256 CSRs.
//   bench_agent heartbeats --server URL[,URL...] --ca-file F --cert F[,F...] --key F[,F...]
//                       --key-pem F --instances N --batch B --threads T [--prefix inst_b] [--seq S]
//                       [--auth sig|mac --hb-pub F] [--count C] [--max-seconds S]
//       Heartbeats for instances <prefix>0..N-1 (all certified for the key in --key-pem, serials
//       as bench/hb_common.h says) posted to vouchd's POST /api/v1/heartbeats with node
//       certificates, in batches of B, as batching agents do. With K servers, server k (with node
//       certificate k) gets instances [k*N/K, (k+1)*N/K). --auth sig: ECDSA signatures; mac: HMACs
//       under each instance's heartbeat key (--hb-pub: the zone's heartbeat public key). Made
//       before the clock starts. A URL may be given twice (two nodes' instances, one server).
//       --count C: only the first C/K instances of each server's share. --max-seconds S: no batch
//       is sent after S seconds (the answer says "truncated" and how many were "sent").
//   bench_agent get --url URL --ca-file F --token T --requests N [--threads T] [--walk 1]
//       GET latency (p50/p99/max) of an API list route; --walk 1 follows next_cursor.
//   bench_agent soak --server URL --ca-file F --cert F --key F --key-pem F --instances N --batch B
//                    --threads T --rate HB_PER_S --duration S [--interval 60] [--auth mac --hb-pub F]
//                    [--issue-socket PATH --issue-rate R --issue-threads T --mrenclave HEX --mrsigner HEX --dns D]
//       Heartbeats at a fixed rate for S seconds (MACs computed as each batch is sent) with
//       issuance through the agent beside them; one JSON line per interval (sent, accepted,
//       batch latency p50/p99, issued), then a summary (sum_acked_seq: the sum over instances
//       of the highest acknowledged seq, to compare with the store's SUM(last_seq)).
//   bench_agent workload --socket PATH --out DIR --mrenclave HEX --mrsigner HEX
//       One sim workload's certificate through the agent: writes DIR/key.pem and
//       DIR/instance.json ({instance_id, serial}), for the heartbeat run.
// Prints one JSON line with the figures (rate, latency percentiles per request).
#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/sgx_report.h"
#include "hb_common.h"
#include "workload/wire.h"
#include "workload/workload_client.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_agent: %s\n", what.c_str());
  std::exit(2);
}

template <typename T>
T Must(vouch::Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

std::map<std::string, std::string> Flags(int argc, char** argv) {
  std::map<std::string, std::string> f;
  for (int i = 2; i + 1 < argc; i += 2) f[argv[i]] = argv[i + 1];
  return f;
}

std::string Get(const std::map<std::string, std::string>& f, const std::string& k, const std::string& def = "") {
  auto it = f.find(k);
  if (it != f.end()) return it->second;
  if (def.empty()) Die("missing " + k);
  return def;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

size_t Sink(char* d, size_t s, size_t n, void* u) {
  static_cast<std::string*>(u)->append(d, s * n);
  return s * n;
}

struct Conn {
  CURL* h = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  ~Conn() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  long Post(const std::string& url, const std::string& body, std::string* out) {
    out->clear();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    if (curl_easy_perform(h) != CURLE_OK) return -1;
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
};

// CPU seconds (user + system) this process has used so far.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Run {
  size_t ok = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double cpu_seconds = 0;  // the generator's own CPU during the timed part
  json Json() const {
    return json{{"ok", ok}, {"seconds", seconds}, {"per_second", static_cast<double>(ok) / seconds},
                {"generator_cpu_s", cpu_seconds},
                {"latency_ms", {{"p50", p50_ms}, {"p99", p99_ms}, {"max", max_ms}}}};
  }
};

// Runs `bodies` over `threads` keep-alive connections (one thread each, blocking; thread t
// handles group t % groups.size() of `groups`, a list of body indices). `setup(conn, t)` sets the
// connection's transport and returns the URL it posts to.
// With `max_seconds` > 0 no body is sent after that many seconds; `sent`, if given, marks the
// bodies that were.
Run Drive(const std::vector<std::string>& bodies, const std::vector<std::vector<size_t>>& groups, size_t threads,
          long want, const std::function<std::string(Conn&, size_t)>& setup,
          const std::function<bool(const std::string&)>& accept = nullptr, double max_seconds = 0,
          std::vector<char>* sent = nullptr) {
  std::vector<std::atomic<size_t>> next(groups.size());
  std::atomic<size_t> good{0};
  std::atomic<bool> printed{false};
  std::mutex lat_mu;
  std::vector<double> lat;
  lat.reserve(bodies.size());
  // On stderr, so that a profiler can be started for the timed part only (bench/agent_bench.sh).
  std::fprintf(stderr, "bench_agent: clock started (%zu requests)\n", bodies.size());
  double cpu0 = CpuSeconds();
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      Conn c;
      std::string url = setup(c, t);
      const auto& g = groups[t % groups.size()];
      auto& n = next[t % groups.size()];
      std::string out;
      std::vector<double> mine;
      for (size_t k; (k = n.fetch_add(1)) < g.size();) {
        auto s = Clock::now();
        if (max_seconds > 0 && std::chrono::duration<double>(s - t0).count() >= max_seconds) break;
        if (sent != nullptr) (*sent)[g[k]] = 1;
        long code = c.Post(url, bodies[g[k]], &out);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        if (code == want && (!accept || accept(out))) {
          good.fetch_add(1);
        } else if (!printed.exchange(true)) {
          std::fprintf(stderr, "bench_agent: HTTP %ld: %s\n", code, out.substr(0, 300).c_str());
        }
      }
      std::lock_guard<std::mutex> lock(lat_mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : ts) t.join();
  Run r;
  r.ok = good.load();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu_seconds = CpuSeconds() - cpu0;
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    r.p50_ms = lat[lat.size() / 2];
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
    r.max_ms = lat.back();
  }
  return r;
}

std::vector<std::vector<size_t>> OneGroup(size_t n) {
  std::vector<std::vector<size_t>> g(1);
  for (size_t i = 0; i < n; ++i) g[0].push_back(i);
  return g;
}

vouch::workload::SimIdentity IdentityFrom(const std::map<std::string, std::string>& f) {
  vouch::workload::SimIdentity id;
  auto mre = Must(vouch::HexDecode(Get(f, "--mrenclave")), "mrenclave");
  auto mrs = Must(vouch::HexDecode(Get(f, "--mrsigner")), "mrsigner");
  if (mre.size() != 32 || mrs.size() != 32) Die("--mrenclave/--mrsigner must be 64 hex digits");
  std::copy(mre.begin(), mre.end(), id.mrenclave.begin());
  std::copy(mrs.begin(), mrs.end(), id.mrsigner.begin());
  id.isvprodid = static_cast<uint16_t>(std::stoi(Get(f, "--isvprodid", "1")));
  id.isvsvn = static_cast<uint16_t>(std::stoi(Get(f, "--isvsvn", "1")));
  return id;
}

int Workload(const std::map<std::string, std::string>& f) {
  auto client = Must(vouch::workload::WorkloadClient::Create(Get(f, "--socket")), "connect");
  auto creds = Must(client->RequestCertificate(client->SimReportSource(IdentityFrom(f)), {}), "certificate");
  std::string out = Get(f, "--out");
  std::string mk = "mkdir -p '" + out + "'";
  if (std::system(mk.c_str()) != 0) Die("mkdir " + out);
  FILE* k = std::fopen((out + "/key.pem").c_str(), "w");
  FILE* i = std::fopen((out + "/instance.json").c_str(), "w");
  if (k == nullptr || i == nullptr) Die("cannot write into " + out);
  std::fwrite(creds.key_pem.data(), 1, creds.key_pem.size(), k);
  std::string info = json{{"instance_id", creds.instance_id}, {"serial", creds.serial}}.dump() + "\n";
  std::fwrite(info.data(), 1, info.size(), i);
  std::fclose(k);
  std::fclose(i);
  std::printf("%s", info.c_str());
  return 0;
}

int Issue(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--requests")), threads = std::stoul(Get(f, "--threads"));
  std::vector<std::string> sockets = Split(Get(f, "--socket"));
  vouch::workload::SimIdentity id = IdentityFrom(f);
  std::vector<std::string> dns;
  if (f.count("--dns")) dns.push_back(f.at("--dns"));
  // Every agent of the run shares one sim platform, so a REPORT made through the first one
  // verifies on all of them (as REPORTs do on one machine's agents).
  auto client = Must(vouch::workload::WorkloadClient::Create(sockets[0]), "connect");
  auto target = Must(client->GetTargetInfo(), "target info");
  auto source = client->SimReportSource(id);
  std::vector<std::string> bodies;
  bodies.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto key = Must(vouch::crypto::GenerateP256(), "key");
    std::string csr = Must(vouch::workload::MakeCsr(key.get(), dns), "csr");
    auto spki = Must(vouch::crypto::PublicKeyToDer(key.get()), "spki");
    auto d = vouch::crypto::Sha256(spki);
    std::array<uint8_t, 64> rd{};
    std::copy(d.begin(), d.end(), rd.begin());
    auto report = Must(source(target, rd), "sim report");
    bodies.push_back(json{{"csr", csr}, {"report", vouch::Base64Encode(report)}}.dump());
  }
  Run r = Drive(bodies, OneGroup(n), threads, 201, [&](Conn& c, size_t t) {
    curl_easy_setopt(c.h, CURLOPT_UNIX_SOCKET_PATH, sockets[t % sockets.size()].c_str());
    return std::string("http://localhost/v1/certificate");
  });
  json out = r.Json();
  out["mode"] = "vouch-agent";
  out["requests"] = n;
  out["connections"] = threads;
  out["agents"] = sockets.size();
  std::printf("%s\n", out.dump().c_str());
  return r.ok == n ? 0 : 1;
}

int Cfssl(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--requests")), threads = std::stoul(Get(f, "--threads"));
  std::string url = Get(f, "--url") + "/api/v1/cfssl/sign";
  std::vector<std::string> bodies;
  bodies.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto key = Must(vouch::crypto::GenerateP256(), "key");
    std::string csr = Must(vouch::workload::MakeCsr(key.get(), {"web.example.com"}), "csr");
    bodies.push_back(json{{"certificate_request", csr}}.dump());
  }
  Run r = Drive(bodies, OneGroup(n), threads, 200, [&](Conn&, size_t) { return url; },
                [](const std::string& out) { return out.find("\"success\":true") != std::string::npos; });
  json out = r.Json();
  out["mode"] = "cfssl";
  out["requests"] = n;
  out["connections"] = threads;
  std::printf("%s\n", out.dump().c_str());
  return r.ok == n ? 0 : 1;
}

// Runs fn(i) for i in [0, n) on as many threads as cores.
void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) fn(i);
    });
  }
  for (auto& t : ts) t.join();
}

// How the generator's instances authenticate their heartbeats: --auth sig (ECDSA by the
// instance key, the form from before issue 16) or --auth mac (HMAC under each instance's
// heartbeat key; --hb-pub: the zone's heartbeat public key, PEM).
struct HbAuth {
  std::string field = "signature";
  vouch::crypto::EvpPkeyPtr key;
  std::vector<vouch::bench::MacKey> macs;  // by instance index, for --auth mac
  std::string Auth(size_t i, const std::string& id, int64_t seq, int64_t ts) const {
    if (!macs.empty()) return vouch::bench::MacB64(macs[i], id, seq, ts, "running");
    auto sig = Must(vouch::crypto::Sign(key.get(), vouch::AsBytes(vouch::workload::HeartbeatMessage(id, seq, ts, "running"))),
                    "sign");
    return vouch::Base64Encode(sig);
  }
};

HbAuth MakeAuth(const std::map<std::string, std::string>& f, size_t n) {
  HbAuth a;
  auto key_pem = Must(vouch::ReadWholeFile(Get(f, "--key-pem")), "key pem");
  a.key = Must(vouch::crypto::PrivateKeyFromPem(key_pem), "key");
  std::string mode = Get(f, "--auth", "sig");
  if (mode == "sig") return a;
  if (mode != "mac") Die("--auth is sig or mac");
  a.field = "mac";
  auto zone = Must(vouch::crypto::PublicKeyFromPem(Must(vouch::ReadWholeFile(Get(f, "--hb-pub")), "hb pub")), "hb pub key");
  auto shared = Must(vouch::crypto::EcdhSharedSecret(a.key.get(), zone.get()), "ecdh");
  a.macs.resize(n);
  std::span<const uint8_t> sh(shared.data(), shared.size());
  ParallelFor(n, [&](size_t i) { a.macs[i] = Must(vouch::bench::DeriveMacKey(sh, vouch::bench::Serial(i)), "derive"); });
  // The shortcut (one ECDH for all) gives what the workload library derives.
  auto check = Must(vouch::crypto::DeriveHeartbeatKey(a.key.get(), zone.get(), vouch::bench::Serial(n - 1)), "derive check");
  if (check.size() != 32 || !std::equal(a.macs[n - 1].begin(), a.macs[n - 1].end(), check.data())) {
    Die("heartbeat key derivation differs from crypto::DeriveHeartbeatKey");
  }
  return a;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void SetNodeTls(Conn& c, const std::string& ca, const std::string& cert, const std::string& key) {
  curl_easy_setopt(c.h, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(c.h, CURLOPT_SSLCERT, cert.c_str());
  curl_easy_setopt(c.h, CURLOPT_SSLKEY, key.c_str());
}

int Heartbeats(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--instances")), batch = std::stoul(Get(f, "--batch")),
         threads = std::stoul(Get(f, "--threads"));
  std::string prefix = Get(f, "--prefix", "inst_b");
  int64_t seq = std::stoll(Get(f, "--seq", "1"));
  auto servers = Split(Get(f, "--server")), certs = Split(Get(f, "--cert")), keys = Split(Get(f, "--key"));
  if (servers.empty() || certs.size() != servers.size() || keys.size() != servers.size()) {
    Die("--server, --cert and --key need as many entries each");
  }
  HbAuth auth = MakeAuth(f, n);
  int64_t ts = UnixNow();
  // Batches of server k's share of the instances, each within that share; built on all cores.
  struct Slot {
    size_t server, first, count;
  };
  std::vector<Slot> slots;
  std::vector<std::vector<size_t>> groups(servers.size());
  size_t per = n / servers.size();
  // --count C: only the first C/K instances of each server's share (a shorter round over the same store).
  size_t count = std::stoul(Get(f, "--count", std::to_string(n)));
  size_t sent = 0;
  for (size_t k = 0; k < servers.size(); ++k) {
    size_t end = k + 1 == servers.size() ? n : (k + 1) * per;
    if (count < n) end = std::min(end, k * per + count / servers.size());
    sent += end - k * per;
    for (size_t i = k * per; i < end; i += batch) {
      groups[k].push_back(slots.size());
      slots.push_back({k, i, std::min(batch, end - i)});
    }
  }
  std::vector<std::string> bodies(slots.size());
  ParallelFor(slots.size(), [&](size_t b) {
    bodies[b] = vouch::bench::BatchBody(prefix, slots[b].first, slots[b].count, n, seq, ts, auth.field,
                                        [&](size_t i, const std::string& id) { return auth.Auth(i, id, seq, ts); });
  });
  std::string ca = Get(f, "--ca-file");
  std::atomic<size_t> accepted{0};
  double max_seconds = std::stod(Get(f, "--max-seconds", "0"));
  std::vector<char> attempted(bodies.size(), 0);
  Run r = Drive(
      bodies, groups, std::max(threads, servers.size()), 200,
      [&](Conn& c, size_t t) {
        size_t k = t % servers.size();
        SetNodeTls(c, ca, certs[k], keys[k]);
        return servers[k] + "/api/v1/heartbeats";
      },
      [&](const std::string& out) {
        auto j = json::parse(out, nullptr, false);
        if (!j.is_object()) return false;
        accepted.fetch_add(j.value("accepted", size_t{0}));
        return true;
      },
      max_seconds, &attempted);
  sent = 0;
  for (size_t b = 0; b < slots.size(); ++b) sent += attempted[b] ? slots[b].count : 0;
  json out = r.Json();
  out["mode"] = "heartbeats";
  out["truncated"] = std::find(attempted.begin(), attempted.end(), 0) != attempted.end();
  out["auth"] = auth.field;
  out["seq"] = seq;
  out["instances"] = n;
  out["sent"] = sent;
  out["batch"] = batch;
  out["connections"] = std::max(threads, servers.size());
  out["servers"] = servers.size();
  out["accepted"] = accepted.load();
  out["per_second"] = static_cast<double>(accepted.load()) / r.seconds;
  out["batches_per_second"] = static_cast<double>(r.ok) / r.seconds;
  std::printf("%s\n", out.dump().c_str());
  return accepted.load() == sent ? 0 : 1;
}

// GET --url with a bearer token, --requests times on --threads keep-alive connections; with
// --walk 1 each thread follows next_cursor from page to page (back to the first page at the end).
int GetMode(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--requests")), threads = std::stoul(Get(f, "--threads", "1"));
  std::string url = Get(f, "--url"), ca = Get(f, "--ca-file"), auth = "Authorization: Bearer " + Get(f, "--token");
  bool walk = Get(f, "--walk", "0") == "1";
  std::atomic<size_t> next{0}, good{0}, items{0};
  std::atomic<bool> printed{false};
  std::mutex mu;
  std::vector<double> lat;
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      Conn c;
      curl_slist_free_all(c.headers);
      c.headers = curl_slist_append(nullptr, auth.c_str());
      curl_easy_setopt(c.h, CURLOPT_CAINFO, ca.c_str());
      curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.headers);
      curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, &Sink);
      curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 120L);
      std::string out, cursor;
      std::vector<double> mine;
      while (next.fetch_add(1) < n) {
        std::string u = url;
        if (walk && !cursor.empty()) {
          char* esc = curl_easy_escape(c.h, cursor.c_str(), static_cast<int>(cursor.size()));
          u += (u.find('?') == std::string::npos ? "?cursor=" : "&cursor=") + std::string(esc);
          curl_free(esc);
        }
        out.clear();
        curl_easy_setopt(c.h, CURLOPT_URL, u.c_str());
        curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &out);
        auto s = Clock::now();
        long code = -1;
        if (curl_easy_perform(c.h) == CURLE_OK) curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        auto j = json::parse(out, nullptr, false);
        if (code == 200 && j.is_object()) {
          good.fetch_add(1);
          if (j.contains("items") && j["items"].is_array()) items.fetch_add(j["items"].size());
          cursor = j.contains("next_cursor") && j["next_cursor"].is_string() ? j["next_cursor"].get<std::string>() : "";
        } else if (!printed.exchange(true)) {
          std::fprintf(stderr, "bench_agent: HTTP %ld: %s\n", code, out.substr(0, 300).c_str());
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : ts) t.join();
  Run r;
  r.ok = good.load();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    r.p50_ms = lat[lat.size() / 2];
    r.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
    r.max_ms = lat.back();
  }
  json out = r.Json();
  out["mode"] = "get";
  out["url"] = url;
  out["walk"] = walk;
  out["requests"] = n;
  out["items_per_answer"] = r.ok ? static_cast<double>(items.load()) / static_cast<double>(r.ok) : 0.0;
  std::printf("%s\n", out.dump().c_str());
  return r.ok == n ? 0 : 1;
}

// The soak: heartbeats at --rate per second (batches of --batch on --threads connections, each
// batch sent at its scheduled time or at once when behind), MACs computed as each batch is
// sent, instances in turn (round r sends seq seq_base+r+1), for --duration seconds; beside it,
// --issue-rate certificates per second through the agent at --issue-socket (each a fresh key,
// CSR and sim REPORT). One JSON line per --interval seconds, then a summary line.
int Soak(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--instances")), batch = std::stoul(Get(f, "--batch")),
         threads = std::stoul(Get(f, "--threads"));
  double rate = std::stod(Get(f, "--rate")), duration = std::stod(Get(f, "--duration")),
         interval = std::stod(Get(f, "--interval", "60")), irate = std::stod(Get(f, "--issue-rate", "0"));
  size_t ithreads = std::stoul(Get(f, "--issue-threads", "4"));
  int64_t seq_base = std::stoll(Get(f, "--seq-base", "0"));
  std::string prefix = Get(f, "--prefix", "inst_b"), server = Get(f, "--server"), ca = Get(f, "--ca-file"),
              cert = Get(f, "--cert"), key = Get(f, "--key");
  if (n % batch != 0) Die("--instances must be a multiple of --batch");
  HbAuth auth = MakeAuth(f, n);
  size_t nslots = static_cast<size_t>(interval > 0 ? std::ceil(duration / interval) : 1) + 1;
  struct Slot {
    std::mutex mu;
    std::vector<double> lat, ilat;
    size_t sent = 0, accepted = 0, failed_batches = 0, issued = 0, issue_failed = 0;
  };
  std::vector<Slot> slots(nslots);
  std::vector<std::atomic<int32_t>> acked(n);  // highest acknowledged seq per instance
  for (auto& a : acked) a.store(static_cast<int32_t>(seq_base));
  std::atomic<size_t> next{0}, inext{0};
  std::atomic<double> lag_ms{0};
  std::atomic<bool> printed{false};
  std::fprintf(stderr, "bench_agent: clock started (soak)\n");
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  auto slot_of = [&](Clock::time_point t) -> Slot& {
    double s = std::chrono::duration<double>(t - t0).count();
    return slots[std::min(nslots - 1, static_cast<size_t>(interval > 0 ? s / interval : 0))];
  };
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      Conn c;
      SetNodeTls(c, ca, cert, key);
      std::string url = server + "/api/v1/heartbeats", out;
      for (;;) {
        size_t k = next.fetch_add(1);
        auto at = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k * batch / rate));
        if (at >= end) break;
        std::this_thread::sleep_until(at);
        auto s = Clock::now();
        double behind = std::chrono::duration<double, std::milli>(s - at).count();
        double prev = lag_ms.load();
        while (behind > prev && !lag_ms.compare_exchange_weak(prev, behind)) {
        }
        size_t first = (k * batch) % n;
        int64_t seq = seq_base + static_cast<int64_t>(k * batch / n) + 1, now = UnixNow();
        std::string body = vouch::bench::BatchBody(prefix, first, batch, n, seq, now, auth.field,
                                                   [&](size_t i, const std::string& id) { return auth.Auth(i, id, seq, now); });
        long code = c.Post(url, body, &out);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
        size_t acc = 0;
        bool ok = false;
        if (code == 200) {
          auto j = json::parse(out, nullptr, false);
          if (j.is_object()) {
            ok = true;
            acc = j.value("accepted", size_t{0});
            if (j.contains("rejected") && j["rejected"].is_array() && !j["rejected"].empty() && !printed.exchange(true)) {
              std::fprintf(stderr, "bench_agent: rejected: %s\n", j["rejected"].dump().substr(0, 300).c_str());
            }
            // Every item not listed as rejected was acknowledged.
            std::vector<bool> rej(batch, false);
            if (j.contains("rejected") && j["rejected"].is_array()) {
              for (const auto& r : j["rejected"]) {
                std::string id = r.value("instance_id", std::string());
                if (id.size() > prefix.size()) {
                  size_t i = std::stoul(id.substr(prefix.size()));
                  rej[(i + n - first) % n] = true;
                }
              }
            }
            for (size_t m = 0; m < batch; ++m) {
              if (!rej[m]) acked[(first + m) % n].store(static_cast<int32_t>(seq));
            }
          }
        }
        if (!ok && !printed.exchange(true)) std::fprintf(stderr, "bench_agent: HTTP %ld: %s\n", code, out.substr(0, 300).c_str());
        Slot& sl = slot_of(s);
        std::lock_guard<std::mutex> lock(sl.mu);
        sl.lat.push_back(ms);
        sl.sent += batch;
        sl.accepted += acc;
        if (!ok) ++sl.failed_batches;
      }
    });
  }
  std::string isock = Get(f, "--issue-socket", "-");
  if (irate > 0) {
    vouch::workload::SimIdentity id = IdentityFrom(f);
    std::vector<std::string> dns;
    if (f.count("--dns")) dns.push_back(f.at("--dns"));
    for (size_t t = 0; t < ithreads; ++t) {
      ts.emplace_back([&, id, dns] {
        auto client = Must(vouch::workload::WorkloadClient::Create(isock), "connect");
        auto target = Must(client->GetTargetInfo(), "target info");
        auto source = client->SimReportSource(id);
        Conn c;
        curl_easy_setopt(c.h, CURLOPT_UNIX_SOCKET_PATH, isock.c_str());
        std::string out;
        for (;;) {
          size_t k = inext.fetch_add(1);
          auto at = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k / irate));
          if (at >= end) break;
          std::this_thread::sleep_until(at);
          auto ikey = Must(vouch::crypto::GenerateP256(), "key");
          std::string csr = Must(vouch::workload::MakeCsr(ikey.get(), dns), "csr");
          auto spki = Must(vouch::crypto::PublicKeyToDer(ikey.get()), "spki");
          auto d = vouch::crypto::Sha256(spki);
          std::array<uint8_t, 64> rd{};
          std::copy(d.begin(), d.end(), rd.begin());
          auto report = Must(source(target, rd), "sim report");
          std::string body = json{{"csr", csr}, {"report", vouch::Base64Encode(report)}}.dump();
          auto s = Clock::now();
          long code = c.Post("http://localhost/v1/certificate", body, &out);
          double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
          Slot& sl = slot_of(s);
          std::lock_guard<std::mutex> lock(sl.mu);
          sl.ilat.push_back(ms);
          if (code == 201) {
            ++sl.issued;
          } else {
            ++sl.issue_failed;
          }
        }
      });
    }
  }
  // Report each interval once it is over (the last slot holds what ran past the end).
  auto pct = [](std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(static_cast<double>(v.size()) * q))];
  };
  // The mean answers how many batches --threads connections can carry: threads x batch / mean
  // (each connection waits for its answer), whatever the schedule asks.
  auto mean = [](const std::vector<double>& v) {
    double t = 0;
    for (double x : v) t += x;
    return v.empty() ? 0.0 : t / static_cast<double>(v.size());
  };
  auto report = [&](size_t i) {
    Slot& sl = slots[i];
    std::lock_guard<std::mutex> lock(sl.mu);
    json o{{"interval", i + 1},
           {"sent", sl.sent},
           {"accepted", sl.accepted},
           {"per_second", static_cast<double>(sl.accepted) / interval},
           {"failed_batches", sl.failed_batches},
           {"batch_latency_ms", {{"p50", pct(sl.lat, 0.5)}, {"p99", pct(sl.lat, 0.99)}, {"max", pct(sl.lat, 1.0)},
                                 {"mean", mean(sl.lat)}}},
           {"issued", sl.issued},
           {"issue_failed", sl.issue_failed},
           {"issue_latency_ms", {{"p50", pct(sl.ilat, 0.5)}, {"p99", pct(sl.ilat, 0.99)}}},
           {"lag_ms", lag_ms.load()}};
    std::printf("%s\n", o.dump().c_str());
    std::fflush(stdout);
  };
  size_t reported = 0;
  if (interval > 0) {
    for (; reported + 1 < nslots; ++reported) {
      auto due = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((reported + 1) * interval + 1.0));
      if (due > end + std::chrono::seconds(1)) break;
      std::this_thread::sleep_until(due);
      report(reported);
    }
  }
  for (auto& t : ts) t.join();
  for (; reported < nslots; ++reported) {
    if (!slots[reported].lat.empty() || !slots[reported].ilat.empty()) report(reported);
  }
  size_t sent = 0, accepted = 0, failed = 0, issued = 0, ifailed = 0;
  for (auto& sl : slots) {
    sent += sl.sent;
    accepted += sl.accepted;
    failed += sl.failed_batches;
    issued += sl.issued;
    ifailed += sl.issue_failed;
  }
  int64_t sum = 0;
  for (auto& a : acked) sum += a.load();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  json o{{"mode", "soak"},       {"auth", auth.field},         {"instances", n},
         {"rate", rate},         {"seconds", secs},            {"sent", sent},
         {"accepted", accepted}, {"dropped", sent - accepted}, {"failed_batches", failed},
         {"per_second", static_cast<double>(accepted) / secs}, {"issued", issued},
         {"issue_failed", ifailed}, {"max_lag_ms", lag_ms.load()},
         {"sum_acked_seq", sum}};
  std::printf("%s\n", o.dump().c_str());
  return sent == accepted && failed == 0 && ifailed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: bench_agent issue|cfssl|heartbeats|workload|get|soak --flag value ...");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string mode = argv[1];
  auto f = Flags(argc, argv);
  if (mode == "issue") return Issue(f);
  if (mode == "cfssl") return Cfssl(f);
  if (mode == "heartbeats") return Heartbeats(f);
  if (mode == "workload") return Workload(f);
  if (mode == "get") return GetMode(f);
  if (mode == "soak") return Soak(f);
  Die("unknown mode " + mode);
}
