// The agent's connection to vouchd (docs/agent.md): options and identity on disk, provisioning and
// renewal, the client pool under the node identity, the manager list with fail-over, and the
// delivery loop (heartbeat batches, check-ins, queued refusals). The local workload API is in
// local_api.cc.
#include "agent/agent.h"

#include <stdlib.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "attest/sim_agent.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "evidence/sgx_report.h"

namespace vouch::agent {
namespace {

using nlohmann::json;

constexpr char kKeyFile[] = "node-key.pem";
constexpr char kCertFile[] = "node-cert.pem";
constexpr char kNodeFile[] = "node.json";
constexpr char kConfigFile[] = "agent.json";
constexpr size_t kRefusalsPerCheckin = 100;  // vouchd takes at most 100 per batch
constexpr size_t kMaxQueuedRefusals = 10000;
// After vouchd refused the node itself (deactivated, certificate revoked): retrying sooner
// cannot help and would only fill vouchd's logs.
constexpr std::chrono::seconds kRefusedNodeBackoff{300};

std::vector<std::string> SplitList(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    size_t start = 0;
    while (start <= e.size()) {
      size_t comma = e.find(',', start);
      if (comma == std::string::npos) comma = e.size();
      std::string part = e.substr(start, comma - start);
      while (!part.empty() && (part.back() == '/' || part.back() == ' ')) part.pop_back();
      while (!part.empty() && part.front() == ' ') part.erase(part.begin());
      if (!part.empty() && std::find(out.begin(), out.end(), part) == out.end()) out.push_back(part);
      start = comma + 1;
    }
  }
  return out;
}


}  // namespace

std::array<uint8_t, 32> SimAgentMrEnclave() { return attest::ShippedSimAgent().mrenclave; }

std::array<uint8_t, tsm::kInblobSize> NodeInblob(std::span<const uint8_t> spki_der, std::span<const uint8_t> nonce) {
  std::vector<uint8_t> bound(spki_der.begin(), spki_der.end());
  bound.insert(bound.end(), nonce.begin(), nonce.end());
  auto digest = crypto::Sha256(bound);
  std::array<uint8_t, tsm::kInblobSize> inblob{};  // the second half stays zero
  std::copy(digest.begin(), digest.end(), inblob.begin());
  return inblob;
}


Agent::Agent(AgentOptions options) : options_(std::move(options)) {}

Agent::~Agent() { Stop(); }

Result<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  if (options.data_dir.empty()) return InvalidArgument("--data-dir is required", "invalid_argument");
  if (options.socket_path.empty()) return InvalidArgument("--socket is required", "invalid_argument");
  if (options.tee != "sim" && options.tee != "tdx" && options.tee != "sev-snp" && options.tee != "auto") {
    return InvalidArgument("--tee must be sim, tdx, sev-snp or auto, got '" + options.tee + "'", "unsupported_tee");
  }
  if (options.tee == "sim" && options.sim_dir.empty()) {
    return InvalidArgument("--tee sim needs --sim DIR (a sim vendor folder)", "invalid_argument");
  }
  if (options.batch_max == 0 || options.batch_max > 5000) {
    return InvalidArgument("the batch size must be 1..5000", "invalid_argument");
  }
  if (!options.listen_tcp.empty()) {
    // Checked before anything touches the data dir; the server checks again when it binds.
    const std::string& l = options.listen_tcp;
    bool loopback = l.rfind("127.", 0) == 0 || l.rfind("[::1]:", 0) == 0;
    if (!loopback) {
      return InvalidArgument("--listen-tcp must be a loopback host:port (127.0.0.1:PORT or [::1]:PORT), got '" + l + "'",
                             "invalid_listen");
    }
  }
  auto agent = std::unique_ptr<Agent>(new Agent(std::move(options)));
  VOUCH_RETURN_IF_ERROR(agent->ResolveTee());
  VOUCH_RETURN_IF_ERROR(MakeDirs(agent->options_.data_dir, 0700));
  VOUCH_RETURN_IF_ERROR(agent->ResolveServers());
  VOUCH_ASSIGN_OR_RETURN(agent->queue_, DiskQueue::Open(agent->options_.data_dir + "/queue", agent->options_.queue_max));
  VOUCH_ASSIGN_OR_RETURN(agent->refusal_queue_,
                         DiskQueue::Open(agent->options_.data_dir + "/refusals-queue", kMaxQueuedRefusals));
  VOUCH_RETURN_IF_ERROR(agent->LoadOrProvision());
  return agent;
}

// The backend: the sim platform of a sim folder, or the kernel's configfs-tsm provider (checked
// here, so that a machine without one fails at start, not at the first renewal).
Status Agent::ResolveTee() {
  if (options_.tee == "sim") {
    VOUCH_ASSIGN_OR_RETURN(sim_, attest::SimVendor::Load(options_.sim_dir));
    mrenclave_ = SimAgentMrEnclave();
    report_key_ = sim_->platform().ReportKey(mrenclave_);
    return Status::Ok();
  }
  auto provider = tsm::DetectProvider(options_.tsm_dir);
  if (!provider.ok()) {
    return FailedPrecondition("--tee " + options_.tee + ": " + provider.status().message(), provider.status().reason());
  }
  std::string found = *provider == tsm::kProviderTdx ? "tdx" : *provider == tsm::kProviderSev ? "sev-snp" : "";
  if (found.empty()) {
    return FailedPrecondition("--tee " + options_.tee + ": the kernel's TSM provider '" + *provider +
                                  "' is not supported (tdx_guest, sev_guest)",
                              "unsupported_tee");
  }
  if (options_.tee != "auto" && options_.tee != found) {
    return FailedPrecondition("--tee " + options_.tee + ", but the kernel's TSM provider at " + options_.tsm_dir + " is " +
                                  *provider + " (" + found + ")",
                              std::string(tsm::kProviderMismatch));
  }
  options_.tee = found;
  tsm_provider_ = *provider;
  mrenclave_.fill(0);  // no enclave: workload REPORTs have no target
  std::vector<Sha256> known;
  for (const auto& hex : options_.rte_sha256) {
    VOUCH_ASSIGN_OR_RETURN(Sha256 h, ParseSha256Hex(hex));
    known.push_back(h);
  }
  if (options_.rte_sha256.empty()) known = DefaultRteHashes();
  if (known.empty()) {
    spdlog::warn("agent: no vouch-rte is known (--rte-sha256, or a vouch-rte next to vouch-agent): every workload "
                 "certificate request will be refused");
  }
  rte_ = std::make_unique<RteRecognizer>(std::move(known));
  spdlog::info("agent: TEE {} through configfs-tsm ({} at {})", options_.tee, tsm_provider_, options_.tsm_dir);
  return Status::Ok();
}

Status Agent::MakeNodeEvidence(std::span<const uint8_t> spki, std::span<const uint8_t> nonce, std::string* platform,
                               std::vector<uint8_t>* evidence) {
  const auto inblob = NodeInblob(spki, nonce);
  if (cvm()) {
    // Only through configfs-tsm: a fresh report directory, generation-checked (tsm/report.h).
    tsm::ReportRequest r;
    r.tsm_dir = options_.tsm_dir;
    r.provider = tsm_provider_;
    r.inblob = inblob;
    r.want_aux = tsm_provider_ == tsm::kProviderSev;
    VOUCH_ASSIGN_OR_RETURN(tsm::Report report, tsm::GetReport(r));
    if (report.attempts > 1) {
      spdlog::warn("agent: configfs-tsm: {} report attempt(s) raced with another writer in {} and were discarded; "
                   "attempt {} used (generation {})",
                   report.attempts - 1, options_.tsm_dir, report.attempts, report.generation);
    }
    // Team contract (issue 14): TDX = the quote; SEV-SNP = report ‖ certificate table.
    *evidence = std::move(report.outblob);
    evidence->insert(evidence->end(), report.auxblob.begin(), report.auxblob.end());
    *platform = options_.tee;
    return Status::Ok();
  }
  // The agent's own report body: its enclave identity (sim) and the binding in report_data.
  evidence::SgxReportBody body;
  body.mr_enclave = mrenclave_;
  body.mr_signer = attest::ShippedSimAgent().mrsigner;
  body.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit;
  body.attribute_xfrm = 3;
  VOUCH_ASSIGN_OR_RETURN(*evidence, sim_->platform().Quote(body, std::span<const uint8_t>(inblob).first(32)));
  *platform = "sgx";
  return Status::Ok();
}

// The manager list: from the command line (saved to DATA/agent.json when it changed), else the
// saved one.
Status Agent::ResolveServers() {
  const std::string path = options_.data_dir + "/" + kConfigFile;
  std::vector<std::string> given = SplitList(options_.server_urls);
  json config = json::object();
  if (FileExists(path)) {
    VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, 1 << 16));
    config = json::parse(text, nullptr, false);
    if (!config.is_object()) return DataLoss(path + " is corrupt", "config_corrupt");
  }
  std::vector<std::string> saved;
  if (config.contains("servers") && config["servers"].is_array()) {
    for (const auto& u : config["servers"]) {
      if (u.is_string()) saved.push_back(u.get<std::string>());
    }
  }
  if (given.empty()) {
    if (saved.empty()) return InvalidArgument("--server is required (no manager list saved in " + path + ")", "invalid_argument");
    given = saved;
  } else if (given != saved) {
    config["servers"] = given;
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(path, config.dump(2) + "\n", 0644));
  }
  options_.server_urls = given;
  servers_ = std::make_shared<client::ServerSet>(given.size());
  return Status::Ok();
}

Result<std::unique_ptr<client::ApiClient>> Agent::NewClient(bool mtls) {
  client::ClientOptions o;
  o.base_urls = options_.server_urls;
  o.servers = servers_;
  o.ca_file = options_.ca_file;
  o.user_agent = std::string("vouch-agent/") + kAgentVersion;
  o.connect_timeout = std::chrono::milliseconds(3000);
  o.request_timeout = std::chrono::milliseconds(30000);
  if (mtls) {
    o.client_cert_file = options_.data_dir + "/" + kCertFile;
    o.client_key_file = options_.data_dir + "/" + kKeyFile;
  }
  return client::ApiClient::Create(std::move(o));
}

Status Agent::LoadOrProvision() {
  const std::string dir = options_.data_dir;
  if (!FileExists(dir + "/" + kNodeFile) || !FileExists(dir + "/" + kCertFile)) {
    if (options_.join_token.empty()) {
      return FailedPrecondition("this agent is not provisioned yet: start it once with --join-token", "not_provisioned");
    }
    // The key survives a failed attempt, so a retry proves the same key.
    if (!FileExists(dir + "/" + kKeyFile)) {
      VOUCH_ASSIGN_OR_RETURN(auto key, crypto::GenerateP256());
      VOUCH_ASSIGN_OR_RETURN(auto pem, crypto::PrivateKeyToPem(key.get()));
      VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kKeyFile, pem.view(), 0600));
    }
    VOUCH_RETURN_IF_ERROR(Enroll(false));
  }
  VOUCH_ASSIGN_OR_RETURN(std::string node_text, ReadWholeFile(dir + "/" + kNodeFile, 1 << 16));
  auto node = json::parse(node_text, nullptr, false);
  if (!node.is_object() || !node.contains("node_id")) return DataLoss(dir + "/node.json is corrupt", "identity_corrupt");
  node_id_ = node.value("node_id", "");
  zone_ = node.value("zone", "");
  VOUCH_ASSIGN_OR_RETURN(std::string cert_pem, ReadWholeFile(dir + "/" + kCertFile, 1 << 16));
  VOUCH_ASSIGN_OR_RETURN(auto cert, crypto::CertFromPem(cert_pem));
  cert_not_before_ = ToUnixSeconds(crypto::NotBefore(cert.get()));
  cert_not_after_ = ToUnixSeconds(crypto::NotAfter(cert.get()));
  cert_obtained_ = node.value("obtained_at", int64_t{0});
  return Status::Ok();
}

Status Agent::Enroll(bool renewal) {
  const std::string dir = options_.data_dir;
  VOUCH_ASSIGN_OR_RETURN(std::string key_pem, ReadWholeFile(dir + "/" + kKeyFile, 1 << 16));
  VOUCH_ASSIGN_OR_RETURN(auto key, crypto::PrivateKeyFromPem(key_pem));
  std::fill(key_pem.begin(), key_pem.end(), '\0');
  VOUCH_ASSIGN_OR_RETURN(auto spki, crypto::PublicKeyToDer(key.get()));
  VOUCH_ASSIGN_OR_RETURN(auto client, NewClient(renewal));
  // A nonce request has no effect but an unused row: safe to send again elsewhere.
  VOUCH_ASSIGN_OR_RETURN(json nonce_answer,
                         client->Post("/api/v1/nodes/nonce", json::object(), client::Idempotent::kYes));
  std::string nonce_hex = nonce_answer.value("nonce", "");
  VOUCH_ASSIGN_OR_RETURN(auto nonce, HexDecode(nonce_hex));
  std::string platform;
  std::vector<uint8_t> evidence;
  VOUCH_RETURN_IF_ERROR(MakeNodeEvidence(spki, nonce, &platform, &evidence));
  json req = {{"nonce", nonce_hex},
              {"public_key", Base64Encode(spki)},
              {"platform", platform},
              {"evidence", Base64Encode(evidence)},
              {"info", NodeInfo()}};
  if (!renewal) req["join_token"] = options_.join_token;
  VOUCH_ASSIGN_OR_RETURN(json answer, client->Post(renewal ? "/api/v1/nodes/renew" : "/api/v1/nodes", req));
  std::string cert_pem = answer.value("certificate_pem", "");
  if (cert_pem.empty()) return Internal("the manager's answer has no certificate", "invalid_response");
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kCertFile, cert_pem, 0644));
  json node = {{"node_id", answer.value("node_id", "")},
               {"zone", answer.value("zone", "")},
               {"serial", answer.value("serial", "")},
               {"not_after", answer.value("not_after", "")},
               {"tcb_status", answer.value("tcb_status", "")},
               {"obtained_at", ToUnixSeconds(SystemClock::Get().Now())}};
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kNodeFile, node.dump(2) + "\n", 0644));
  if (!answer.value("ca_pem", std::string()).empty()) {
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/node-ca.pem", answer["ca_pem"].get<std::string>(), 0644));
  }
  spdlog::info("agent: {} node {} (zone {}, TCB {}), certificate valid until {}", renewal ? "renewed" : "provisioned",
               node.value("node_id", ""), node.value("zone", ""), node.value("tcb_status", ""),
               node.value("not_after", ""));
  if (renewal) {
    VOUCH_ASSIGN_OR_RETURN(auto cert, crypto::CertFromPem(cert_pem));
    std::lock_guard<std::mutex> lock(pool_mu_);
    cert_not_before_ = ToUnixSeconds(crypto::NotBefore(cert.get()));
    cert_not_after_ = ToUnixSeconds(crypto::NotAfter(cert.get()));
    cert_obtained_ = node.value("obtained_at", int64_t{0});
    pool_.clear();  // connections made with the old certificate
    ++generation_;
  }
  return Status::Ok();
}

std::unique_ptr<client::ApiClient> Agent::Acquire(Status* error) {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      auto c = std::move(pool_.back());
      pool_.pop_back();
      return c;
    }
  }
  auto c = NewClient(true);
  if (!c.ok()) {
    *error = c.status();
    return nullptr;
  }
  return std::move(*c);
}

void Agent::Release(std::unique_ptr<client::ApiClient> c, uint64_t generation) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  // Keep as many connections as handlers can use at once: a connection dropped here is a new TLS
  // handshake for the next request.
  if (generation == generation_ && pool_.size() < std::max<size_t>(16, options_.threads)) pool_.push_back(std::move(c));
}

json Agent::NodeInfo() const {
  double load[1] = {0};
  json info = {{"version", kAgentVersion}, {"tee", options_.tee}};
  if (getloadavg(load, 1) == 1) info["load"] = load[0];
  if (queue_) info["queue"] = queue_->size();
  info["certificates_forwarded"] = issued_.load();
  info["reports_refused"] = refused_.load();
  return info;
}

Status Agent::DeliverOnce(bool force_checkin) {
  VOUCH_ASSIGN_OR_RETURN(auto records, queue_->Peek(options_.batch_max));
  VOUCH_ASSIGN_OR_RETURN(auto queued_refusals, refusal_queue_->Peek(kRefusalsPerCheckin));
  json refusals = json::array();
  for (const auto& [seq, text] : queued_refusals) {
    auto j = json::parse(text, nullptr, false);
    if (j.is_object()) refusals.push_back(std::move(j));  // written by LogRefusal
  }
  const int64_t unreported = refusals_unreported_.exchange(0);
  // Counted refusals go back to the counter unless vouchd took the batch; queued ones stay queued.
  auto keep_refusals = [&]() { refusals_unreported_.fetch_add(unreported); };
  // Taken by vouchd (or refused by a manager that does not take refusals): off the queue.
  auto drop_refusals = [&]() -> Status {
    return queued_refusals.empty() ? Status::Ok() : refusal_queue_->PopThrough(queued_refusals.back().first);
  };
  if (records.empty() && refusals.empty() && !force_checkin) return Status::Ok();
  json hbs = json::array();
  for (const auto& [seq, text] : records) {
    auto j = json::parse(text, nullptr, false);
    if (j.is_object()) hbs.push_back(std::move(j));  // records are validated when queued
  }
  Status err;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    gen = generation_;
  }
  auto client = Acquire(&err);
  if (!client) {
    keep_refusals();
    return err;
  }
  json batch = {{"node", NodeInfo()}, {"heartbeats", hbs}};
  if (!refusals.empty()) batch["refusals"] = refusals;
  if (unreported > 0) batch["node"]["refusals_unreported"] = unreported;
  // Idempotent: vouchd records a heartbeat only if its seq is above the instance's last, so a
  // batch that may have reached a dying manager can go to the next one (docs/cluster.md).
  auto answer = client->Post("/api/v1/heartbeats", batch, client::Idempotent::kYes);
  if (!answer.ok() && answer.status().code() == StatusCode::kInvalidArgument && !refusals.empty()) {
    // A manager that does not take refusals (older version) must not cost the heartbeats: they
    // go again without them (the refusals stay in DIR/refusals.log).
    spdlog::warn("agent: the manager did not take {} local refusals ({}); they stay in refusals.log only",
                 refusals.size(), answer.status().message());
    VOUCH_RETURN_IF_ERROR(drop_refusals());
    queued_refusals.clear();
    refusals = json::array();
    batch.erase("refusals");
    answer = client->Post("/api/v1/heartbeats", batch, client::Idempotent::kYes);
  }
  Release(std::move(client), gen);
  if (!answer.ok()) {
    Status st = answer.status();
    if (st.code() != StatusCode::kInvalidArgument) keep_refusals();
    if (st.code() == StatusCode::kInvalidArgument && !records.empty()) {
      // The manager refused the batch as malformed: resending cannot help. Logged, then dropped
      // so that one bad record cannot wedge the queue (docs/agent.md).
      spdlog::error("agent: manager refused a heartbeat batch as malformed ({}); dropping {} records", st.message(),
                    records.size());
      return queue_->PopThrough(records.back().first);
    }
    return st;
  }
  VOUCH_RETURN_IF_ERROR(drop_refusals());
  if (!records.empty()) {
    VOUCH_RETURN_IF_ERROR(queue_->PopThrough(records.back().first));
    delivered_.fetch_add(static_cast<int64_t>(records.size()));
    if (answer->contains("rejected") && (*answer)["rejected"].is_array() && !(*answer)["rejected"].empty()) {
      spdlog::warn("agent: manager rejected {} heartbeats (first: {})", (*answer)["rejected"].size(),
                   (*answer)["rejected"][0].dump());
    }
  }
  return Status::Ok();
}

void Agent::Loop() {
  auto last_checkin = std::chrono::steady_clock::now() - options_.checkin_interval;
  auto next_attempt = std::chrono::steady_clock::now();
  auto next_renew_try = std::chrono::steady_clock::now();
  std::chrono::milliseconds backoff(500);
  bool hurry = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(loop_mu_);
      if (!hurry) loop_cv_.wait_for(lock, options_.batch_interval, [&] { return stop_ || wake_; });
      wake_ = false;
      hurry = false;
      if (stop_) break;
    }
    auto now = std::chrono::steady_clock::now();
    // Renew once renew_fraction of the certificate's life has passed.
    int64_t nb, na;
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      // vouchd back-dates notBefore for clock skew: count the life from when we got it.
      nb = std::max(cert_not_before_, cert_obtained_);
      na = cert_not_after_;
    }
    int64_t unix_now = ToUnixSeconds(SystemClock::Get().Now());
    if (now >= next_renew_try && unix_now >= nb + static_cast<int64_t>(static_cast<double>(na - nb) * options_.renew_fraction)) {
      Status st = Enroll(true);
      if (!st.ok()) {
        // Retry within a tenth of the remaining life (1..60 s), so a short-lived certificate
        // gets several tries before it expires.
        int64_t wait_s = std::clamp<int64_t>((na - unix_now) / 10, 1, 60);
        spdlog::warn("agent: renewal failed: {} ({}); retrying in {} s", st.message(), st.reason(), wait_s);
        next_renew_try = now + std::chrono::seconds(wait_s);
      }
    }
    if (now < next_attempt) continue;
    bool checkin_due = now - last_checkin >= options_.checkin_interval;
    const bool refusals_pending = refusal_queue_->size() > 0;
    if (queue_->size() == 0 && !checkin_due && !refusals_pending) continue;
    Status st = DeliverOnce(checkin_due);
    if (st.ok()) {
      last_checkin = now;
      backoff = std::chrono::milliseconds(500);
      // More queued than one batch: go on at once.
      hurry = queue_->size() >= options_.batch_max;
    } else if (st.code() == StatusCode::kPermissionDenied || st.code() == StatusCode::kUnauthenticated) {
      // The manager refuses this node (deactivated, certificate revoked or expired): nothing a
      // quick retry can change. Records stay queued; try again rarely.
      spdlog::error("agent: the manager refuses this node: {} ({}); {} records kept, retry in {} s", st.message(),
                    st.reason(), queue_->size(), kRefusedNodeBackoff.count());
      next_attempt = now + kRefusedNodeBackoff;
    } else {
      spdlog::warn("agent: delivery to the manager failed: {} ({}); {} records kept, retry in {} ms", st.message(),
                   st.reason(), queue_->size(), backoff.count());
      next_attempt = now + backoff;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
  }
}

}  // namespace vouch::agent