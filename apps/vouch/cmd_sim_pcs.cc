// vouch sim pcs: an Intel PCS v4 + AMD KDS compatible server over sim vendor folders and folders
// of real collateral (docs/cli.md, "vouch sim pcs"; the routes are in libs/simpcs/emulator.h).
#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "base/file.h"
#include "base/host_port.h"
#include "cmd_sim_parts.h"
#include "http/server.h"
#include "pki/service.h"
#include "simpcs/emulator.h"

namespace vouch::cli {
namespace {

struct PcsArgs {
  std::vector<std::string> dirs;
  std::string listen;
  std::string tls_cert;
  std::string tls_key;
  std::string cert_out;
  std::string rate_limit_kds = "0";
  int64_t retired_below = -1;
  bool corrupt_signature = false;
  bool plain_http = false;
};

// "10s", "500ms", "2m", "0" -> milliseconds.
std::chrono::milliseconds ParseDuration(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 9) UsageError("--rate-limit-kds: expected a duration such as 10s, 500ms or 0, got \"" + text + "\"");
  int64_t n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s" || (unit.empty() && n == 0)) return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  UsageError("--rate-limit-kds: expected a unit ms, s or m in \"" + text + "\"");
}

void RunPcs(const PcsArgs& a, const GlobalOptions& global) {
  auto hp = ParseHostPort(a.listen);
  if (!hp.ok()) UsageError("--listen: expected HOST:PORT, got \"" + a.listen + "\"");
  if (a.tls_cert.empty() != a.tls_key.empty()) UsageError("--tls-cert and --tls-key go together");

  simpcs::Options options;
  options.dirs = a.dirs;
  options.kds_min_interval = ParseDuration(a.rate_limit_kds);
  if (a.retired_below >= 0) options.retired_below = a.retired_below;
  options.corrupt_all = a.corrupt_signature;
  auto emulator = simpcs::Emulator::Create(options);
  if (!emulator.ok()) throw CliError("sim pcs: " + emulator.status().message(), kExitError);
  {
    // What is served, on stderr; a folder that holds nothing recognisable is most likely a typo.
    auto cat = (*emulator)->catalog();
    for (const auto& dir : a.dirs) {
      auto from = [&dir](const std::string& source) { return source.rfind(dir, 0) == 0; };
      bool any = false;
      for (const auto* list : {&cat->tcb_infos, &cat->qe_identities, &cat->evaluation_numbers}) {
        for (const auto& x : *list) any = any || from(x.source);
      }
      for (const auto* list : {&cat->pck_crls, &cat->root_crls}) {
        for (const auto& x : *list) any = any || from(x.source);
      }
      for (const auto& x : cat->vceks) any = any || from(x.source);
      for (const auto& x : cat->amd_products) any = any || from(x.source);
      if (!any) std::cerr << "vouch sim pcs: warning: nothing to serve in " << dir << "\n";
    }
    std::cerr << "vouch sim pcs: serving " << cat->tcb_infos.size() << " TCB Info, " << cat->qe_identities.size()
              << " QE identities, " << cat->pck_crls.size() << " PCK CRLs, " << cat->root_crls.size() << " root CRLs, "
              << cat->vceks.size() << " VCEKs, " << cat->amd_products.size() << " AMD products\n";
  }

  http::ServerOptions server;
  server.listen_address = hp->host;
  server.port = hp->port;
  server.threads = 2;
  if (a.plain_http) {
    server.tcp_plaintext = true;
  } else if (!a.tls_cert.empty()) {
    server.cert_chain_pem = ReadFileOrDie(a.tls_cert, "--tls-cert");
    server.private_key_pem = ReadFileOrDie(a.tls_key, "--tls-key");
  } else {
    // A throw-away CA and server certificate for the listen address; the CA goes to --cert-out
    // so that clients (vouchd --pccs-ca-file, curl --cacert) can trust it.
    pki::ServiceCertificateOptions cert_options;
    cert_options.ca_common_name = "vouch sim pcs CA";
    cert_options.ip_addresses = {"127.0.0.1", "::1"};
    if (hp->host != "127.0.0.1" && hp->host != "::1" && hp->host != "localhost" && hp->host != "0.0.0.0" &&
        hp->host != "::") {
      if (hp->host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos) {
        cert_options.ip_addresses.push_back(hp->host);
      } else {
        cert_options.dns_names.push_back(hp->host);
      }
    }
    auto certs = pki::CreateServiceCertificates(cert_options);
    if (!certs.ok()) throw CliError("sim pcs: " + certs.status().message(), kExitError);
    server.cert_chain_pem = certs->server_chain_pem;
    server.private_key_pem = std::string(certs->server_key_pem.view());
    if (!a.cert_out.empty()) WriteFileOrDie(a.cert_out, certs->ca_cert_pem, 0644);
  }
  if (!a.cert_out.empty() && (a.plain_http || !a.tls_cert.empty())) {
    UsageError("--cert-out is for the generated certificate (without --tls-cert or --plain-http)");
  }

  // The server's log lines go to stderr: stdout carries only the URL line (tests read it).
  spdlog::set_default_logger(spdlog::stderr_logger_mt("sim-pcs"));
  http::Router router;
  (*emulator)->AddRoutes(&router);
  auto srv = http::Server::Create(std::move(server), std::move(router));
  if (!srv.ok()) throw CliError("sim pcs: " + srv.status().message(), kExitUsage);

  // The server threads inherit this mask; the main thread takes the signal with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (Status s = (*srv)->Start(); !s.ok()) throw CliError("sim pcs: " + s.message(), kExitError);

  std::string host = hp->host.find(':') != std::string::npos ? "[" + hp->host + "]" : hp->host;
  std::string url = std::string(a.plain_http ? "http" : "https") + "://" + host + ":" + std::to_string((*srv)->port());
  if (global.json()) {
    std::cout << nlohmann::json{{"url", url}, {"port", (*srv)->port()}}.dump() << std::endl;
  } else {
    std::cout << "vouch sim pcs: INSECURE test emulator of Intel PCS and AMD KDS listening on " << url << std::endl;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  (*srv)->Stop(std::chrono::milliseconds(2000));
  (*srv)->Wait();
}

}  // namespace

void RegisterSimPcs(CLI::App* sim_group, GlobalOptions& global) {
  auto args = std::make_shared<PcsArgs>();
  auto* c = sim_group->add_subcommand(
      "pcs", "Serve collateral folders as Intel PCS (API v4) and AMD KDS do (a test emulator; runs until SIGINT/SIGTERM)");
  c->add_option("--serve", args->dirs, "A sim vendor folder or a folder of real collateral (repeatable)")
      ->required()
      ->check(CLI::ExistingDirectory);
  c->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0: any; the URL is printed)")->required();
  c->add_option("--tls-cert", args->tls_cert, "Server certificate chain (PEM); default: a generated one");
  c->add_option("--tls-key", args->tls_key, "Its private key (PEM)");
  c->add_option("--cert-out", args->cert_out, "Write the CA of the generated certificate here (PEM)");
  c->add_flag("--plain-http", args->plain_http, "Serve plain HTTP (loopback addresses only)");
  c->add_option("--rate-limit-kds", args->rate_limit_kds,
                "KDS answers 429 with Retry-After to a client asking again within this (e.g. 10s; 0: off)");
  c->add_option("--retired-below", args->retired_below,
                "Answer 410 Gone for a tcbEvaluationDataNumber below N");
  c->add_flag("--corrupt-signature", args->corrupt_signature,
              "Every collateral answer carries a broken signature (see also POST /sim/v1/corrupt)");
  c->callback([args, &global] { RunPcs(*args, global); });
}

}  // namespace vouch::cli
