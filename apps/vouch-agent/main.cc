// vouch-agent: the node agent. Provisions the node once (join token), then serves the workload
// API on a Unix socket and forwards certificate requests and heartbeats to vouchd (docs/agent.md).
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "base/file.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "vouch-agent: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vouch-agent: the vouch node agent"};
  app.set_version_flag("--version", std::string("vouch-agent ") + vouch::agent::kAgentVersion);
  vouch::agent::AgentOptions o;
  std::string join_token_file, mode = "0660", listen_tcp;
  int batch_ms = 1000, checkin_s = 30;
  app.add_option("--server", o.server_urls,
                 "vouchd URL; repeatable or comma-separated for an HA cluster (saved in DATA/agent.json; "
                 "optional once saved)");
  app.add_option("--ca-file", o.ca_file, "CA that signed vouchd's HTTPS certificate (service-ca.pem)");
  app.add_option("--data-dir", o.data_dir, "Where the node identity and the queue live")->required();
  app.add_option("--socket", o.socket_path, "Unix socket of the workload API")->required();
  app.add_option("--socket-mode", mode, "Octal mode of the socket")->capture_default_str();
  app.add_option("--socket-group", o.socket_group, "Group that owns the socket (workloads in it may connect)");
  app.add_option("--join-token", o.join_token, "Join token (first start only)");
  app.add_option("--join-token-file", join_token_file, "Read the join token from this file");
  app.add_option("--tee", o.tee,
                 "TEE backend: sim (a sim folder's SGX platform), tdx or sev-snp (evidence from the kernel's "
                 "configfs-tsm), auto (the configfs-tsm provider present; none is an error)")
      ->capture_default_str()
      ->check(CLI::IsMember({"sim", "tdx", "sev-snp", "auto"}));
  app.add_option("--sim", o.sim_dir, "Sim vendor folder (vouch sim init DIR) for --tee sim");
  app.add_option("--tsm-dir", o.tsm_dir, "configfs-tsm report directory (tdx, sev-snp, auto)")->capture_default_str();
  app.add_option("--rte-sha256", o.rte_sha256,
                 "SHA-256 (hex) of a vouch-rte executable whose processes may request workload certificates on a "
                 "confidential VM (repeatable; default: the vouch-rte next to vouch-agent)");
  app.add_option("--listen-tcp", listen_tcp, "Also serve the workload API (plain HTTP) on this loopback host:port");
  app.add_option("--batch-interval-ms", batch_ms, "Heartbeat batching interval")->capture_default_str()->check(CLI::Range(10, 60000));
  app.add_option("--batch-max", o.batch_max, "Heartbeats per batch")->capture_default_str()->check(CLI::Range(1, 5000));
  app.add_option("--checkin-interval", checkin_s, "Node check-in interval in seconds")->capture_default_str()->check(CLI::Range(1, 3600));
  app.add_option("--queue-max", o.queue_max, "Bound of the on-disk heartbeat queue (records)")->capture_default_str()->check(CLI::Range(1, 10000000));
  app.add_option("--renew-fraction", o.renew_fraction, "Renew the node certificate after this fraction of its life")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.95));
  app.add_option("--threads", o.threads, "Handler threads of the workload API (each request to vouchd holds one)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  CLI11_PARSE(app, argc, argv);

  o.listen_tcp = listen_tcp;
  try {
    o.socket_mode = static_cast<uint32_t>(std::stoul(mode, nullptr, 8));
  } catch (...) {
    return Fail("--socket-mode must be octal, e.g. 0660");
  }
  if (!join_token_file.empty()) {
    auto t = vouch::ReadWholeFile(join_token_file, 4096);
    if (!t.ok()) return Fail(t.status().message());
    o.join_token = *t;
    while (!o.join_token.empty() && (o.join_token.back() == '\n' || o.join_token.back() == '\r')) o.join_token.pop_back();
  }
  o.batch_interval = std::chrono::milliseconds(batch_ms);
  o.checkin_interval = std::chrono::seconds(checkin_s);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto agent = vouch::agent::Agent::Create(o);
  if (!agent.ok()) {
    const auto& st = agent.status();
    return Fail(st.message() + (st.reason().empty() ? "" : " (" + st.reason() + ")"));
  }
  if (auto st = (*agent)->Start(); !st.ok()) return Fail(st.message());
  std::printf("vouch-agent: node %s (tee %s) serving unix:%s\n", (*agent)->node_id().c_str(),
              (*agent)->tee().c_str(), o.socket_path.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("vouch-agent: signal {}, stopping", sig);
  (*agent)->Stop();
  return 0;
}
