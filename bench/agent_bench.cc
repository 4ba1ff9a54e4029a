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
//       Signed heartbeats for instances <prefix>0..N-1 (all certified for the key in --key-pem)
//       posted to vouchd's POST /api/v1/heartbeats with node certificates, in batches of B, as
//       batching agents do. With K servers, server k (with node certificate k) gets instances
//       [k*N/K, (k+1)*N/K). Signatures are made before the clock starts.
//   bench_agent workload --socket PATH --out DIR --mrenclave HEX --mrsigner HEX
//       One sim workload's certificate through the agent: writes DIR/key.pem and
//       DIR/instance.json ({instance_id, serial}), for the heartbeat run.
// Prints one JSON line with the figures (rate, latency percentiles per request).
#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
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

struct Run {
  size_t ok = 0;
  double seconds = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  json Json() const {
    return json{{"ok", ok}, {"seconds", seconds}, {"per_second", static_cast<double>(ok) / seconds},
                {"latency_ms", {{"p50", p50_ms}, {"p99", p99_ms}, {"max", max_ms}}}};
  }
};

// Runs `bodies` over `threads` keep-alive connections (one thread each, blocking; thread t
// handles group t % groups.size() of `groups`, a list of body indices). `setup(conn, t)` sets the
// connection's transport and returns the URL it posts to.
Run Drive(const std::vector<std::string>& bodies, const std::vector<std::vector<size_t>>& groups, size_t threads,
          long want, const std::function<std::string(Conn&, size_t)>& setup,
          const std::function<bool(const std::string&)>& accept = nullptr) {
  std::vector<std::atomic<size_t>> next(groups.size());
  std::atomic<size_t> good{0};
  std::atomic<bool> printed{false};
  std::mutex lat_mu;
  std::vector<double> lat;
  lat.reserve(bodies.size());
  // On stderr, so that a profiler can be started for the timed part only (bench/agent_bench.sh).
  std::fprintf(stderr, "bench_agent: clock started (%zu requests)\n", bodies.size());
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

int Heartbeats(const std::map<std::string, std::string>& f) {
  size_t n = std::stoul(Get(f, "--instances")), batch = std::stoul(Get(f, "--batch")),
         threads = std::stoul(Get(f, "--threads"));
  std::string prefix = Get(f, "--prefix", "inst_b");
  int64_t seq = std::stoll(Get(f, "--seq", "1"));
  auto servers = Split(Get(f, "--server")), certs = Split(Get(f, "--cert")), keys = Split(Get(f, "--key"));
  if (servers.empty() || certs.size() != servers.size() || keys.size() != servers.size()) {
    Die("--server, --cert and --key need as many entries each");
  }
  auto key_pem = Must(vouch::ReadWholeFile(Get(f, "--key-pem")), "key pem");
  auto key = Must(vouch::crypto::PrivateKeyFromPem(key_pem), "key");
  int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<std::string> bodies;
  std::vector<std::vector<size_t>> groups(servers.size());
  size_t per = n / servers.size();
  for (size_t k = 0; k < servers.size(); ++k) {
    json hbs = json::array();
    size_t end = k + 1 == servers.size() ? n : (k + 1) * per;
    for (size_t i = k * per; i < end; ++i) {
      std::string inst = prefix + std::to_string(i);
      auto sig = Must(vouch::crypto::Sign(key.get(), vouch::AsBytes(vouch::workload::HeartbeatMessage(inst, seq, ts, "running"))),
                      "sign");
      hbs.push_back({{"instance_id", inst}, {"seq", seq}, {"timestamp", ts}, {"status", "running"},
                     {"signature", vouch::Base64Encode(sig)}});
      if (hbs.size() == batch || i + 1 == end) {
        groups[k].push_back(bodies.size());
        bodies.push_back(json{{"node", {{"version", "bench"}}}, {"heartbeats", hbs}}.dump());
        hbs = json::array();
      }
    }
  }
  std::string ca = Get(f, "--ca-file");
  std::atomic<size_t> accepted{0};
  Run r = Drive(
      bodies, groups, std::max(threads, servers.size()), 200,
      [&](Conn& c, size_t t) {
        size_t k = t % servers.size();
        curl_easy_setopt(c.h, CURLOPT_CAINFO, ca.c_str());
        curl_easy_setopt(c.h, CURLOPT_SSLCERT, certs[k].c_str());
        curl_easy_setopt(c.h, CURLOPT_SSLKEY, keys[k].c_str());
        return servers[k] + "/api/v1/heartbeats";
      },
      [&](const std::string& out) {
        auto j = json::parse(out, nullptr, false);
        if (!j.is_object()) return false;
        accepted.fetch_add(j.value("accepted", size_t{0}));
        return true;
      });
  json out = r.Json();
  out["mode"] = "heartbeats";
  out["instances"] = n;
  out["batch"] = batch;
  out["connections"] = std::max(threads, servers.size());
  out["servers"] = servers.size();
  out["accepted"] = accepted.load();
  out["per_second"] = static_cast<double>(accepted.load()) / r.seconds;
  out["batches_per_second"] = static_cast<double>(r.ok) / r.seconds;
  std::printf("%s\n", out.dump().c_str());
  return accepted.load() == n ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: bench_agent issue|cfssl|heartbeats|workload --flag value ...");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string mode = argv[1];
  auto f = Flags(argc, argv);
  if (mode == "issue") return Issue(f);
  if (mode == "cfssl") return Cfssl(f);
  if (mode == "heartbeats") return Heartbeats(f);
  if (mode == "workload") return Workload(f);
  Die("unknown mode " + mode);
}
