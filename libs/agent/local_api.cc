// The agent's local workload API (docs/agent.md): the Unix-socket (and optional loopback TCP)
// servers and their handlers, the local check of a workload's REPORT, and local refusals queued
// for vouchd. The connection to vouchd (provisioning, renewal, the client pool, delivery) is in
// agent.cc.
#include "agent/agent.h"

#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <spdlog/spdlog.h>

#include "base/encoding.h"
#include "base/host_port.h"
#include "crypto/digest.h"
#include "crypto/secret.h"
#include "evidence/sgx_report.h"
#include "http/json_body.h"
#include "pki/csr.h"
#include "workload/wire.h"

namespace vouch::agent {
namespace {

using http::JsonBody;
using http::Request;
using http::Response;
using nlohmann::json;

Response ErrorResponse(const Status& st) { return Response::Error(st); }

constexpr int kWorkloadRefusalsPerMinute = 30;

bool IsSnakeCase(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

}  // namespace

Status VerifyLocalRequest(const attest::SimPlatform& platform, std::span<const uint8_t, 32> my_mrenclave,
                          std::span<const uint8_t> report, std::string_view csr_pem, std::vector<uint8_t>* body_out) {
  return VerifyLocalRequest(platform.ReportKey(my_mrenclave), report, csr_pem, body_out);
}

Status VerifyLocalRequest(const crypto::SecretBytes& report_key, std::span<const uint8_t> report,
                          std::string_view csr_pem, std::vector<uint8_t>* body_out) {
  if (report.size() != evidence::kSgxReportSize) {
    return InvalidArgument("report must be a " + std::to_string(evidence::kSgxReportSize) + "-byte SGX REPORT, got " +
                               std::to_string(report.size()),
                           "invalid_report");
  }
  if (!attest::SimPlatform::VerifyReportWithKey(report, report_key)) {
    return PermissionDenied("the report's MAC does not verify for this agent (not made by this platform's EREPORT "
                            "for this target, or altered)",
                            "report_mac_invalid");
  }
  // Only the CSR's key is needed here (the binding); vouchd verifies the CSR's self-signature
  // before it issues anything, so it is not verified twice (docs/agent.md).
  pki::CsrPolicy policy;
  policy.verify_signature = false;
  VOUCH_ASSIGN_OR_RETURN(pki::Csr csr, pki::ParseCsr(csr_pem, policy));
  VOUCH_ASSIGN_OR_RETURN(evidence::SgxReport parsed, evidence::ParseSgxReport(report));
  auto want = crypto::Sha256(csr.spki_der);
  if (!crypto::ConstantTimeEquals(std::span<const uint8_t>(parsed.body.report_data).first(32), want)) {
    return PermissionDenied("the report data is not SHA-256 of the CSR's public key", "report_data_mismatch");
  }
  body_out->assign(parsed.body.raw.begin(), parsed.body.raw.end());
  return Status::Ok();
}

Status ClaimedReportBody(std::span<const uint8_t> report, std::string_view csr_pem, std::vector<uint8_t>* body_out) {
  if (report.size() != evidence::kSgxReportSize) {
    return InvalidArgument("report must be the " + std::to_string(evidence::kSgxReportSize) +
                               "-byte REPORT layout carrying the workload's manifest identity, got " +
                               std::to_string(report.size()),
                           "invalid_report");
  }
  pki::CsrPolicy policy;
  policy.verify_signature = false;  // vouchd verifies it (as for SGX REPORTs)
  VOUCH_ASSIGN_OR_RETURN(pki::Csr csr, pki::ParseCsr(csr_pem, policy));
  VOUCH_ASSIGN_OR_RETURN(evidence::SgxReport claim, evidence::ParseSgxReport(report));
  auto want = crypto::Sha256(csr.spki_der);
  if (!crypto::ConstantTimeEquals(std::span<const uint8_t>(claim.body.report_data).first(32), want)) {
    return PermissionDenied("the report data is not SHA-256 of the CSR's public key", "report_data_mismatch");
  }
  // Only the identity the manifest gives (what vouchd matches against builds) goes on; nothing
  // else of the caller's bytes.
  evidence::SgxReportBody body;
  body.mr_enclave = claim.body.mr_enclave;
  body.mr_signer = claim.body.mr_signer;
  body.isv_prod_id = claim.body.isv_prod_id;
  body.isv_svn = claim.body.isv_svn;
  body.attribute_flags =
      evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit | (claim.body.debug() ? evidence::kSgxFlagDebug : 0);
  body.attribute_xfrm = 3;
  std::copy(want.begin(), want.end(), body.report_data.begin());
  auto encoded = evidence::EncodeSgxReportBody(body);
  body_out->assign(encoded.begin(), encoded.end());
  return Status::Ok();
}

void Agent::LogRefusal(const std::string& what, const Status& why, const std::string& mrenclave) {
  refused_.fetch_add(1);
  spdlog::warn("agent: refused {}: {} ({})", what, why.message(), why.reason());
  json line = {{"at", ToUnixSeconds(SystemClock::Get().Now())}, {"what", what}, {"code", why.reason()},
               {"message", why.message()}};
  if (!mrenclave.empty()) line["mrenclave"] = mrenclave;
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::ofstream out(options_.data_dir + "/refusals.log", std::ios::app);
    out << line.dump() << "\n";
  }
  {
    // Reported to vouchd with the next check-in, which is made soon.
    json r = {{"at", line["at"]}, {"code", why.reason()}, {"message", why.message().substr(0, 200)}};
    if (!mrenclave.empty()) r["mrenclave"] = mrenclave;
    Status queued = refusal_queue_->Push(r.dump());
    if (!queued.ok()) {
      refusals_unreported_.fetch_add(1);
      spdlog::warn("agent: refusal not queued for the manager ({}); it stays in refusals.log", queued.message());
    }
  }
  std::lock_guard<std::mutex> lock(loop_mu_);
  wake_ = true;
  loop_cv_.notify_one();
}

http::Router Agent::BuildLocalRouter() {
  http::Router r;
  r.Add("GET", "/v1/version", [this](Request&) {
    return Response::Json({{"version", kAgentVersion},
                           {"node_id", node_id_},
                           {"zone", zone_},
                           {"tee", options_.tee},
                           {"workload_auth", cvm() ? "peer" : "report"},
                           {"insecure_sim", options_.tee == "sim"}});
  });
  // On a confidential VM there is no enclave to address: mrenclave is all zero and `tee` tells
  // vouch-rte to send its manifest identity unsigned (the agent checks who sends it instead).
  r.Add("GET", "/v1/target-info", [this](Request&) {
    return Response::Json({{"mrenclave", HexEncode(mrenclave_)},
                           {"tee", options_.tee},
                           {"workload_auth", cvm() ? "peer" : "report"}});
  });
  if (options_.tee == "sim") {
    // Plays the CPU's EREPORT for a sim workload: MACs the body it claims for the target.
    r.Add("POST", "/v1/sim/report", [this](Request& req) -> Response {
      auto run = [&]() -> Result<Response> {
        VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
        VOUCH_ASSIGN_OR_RETURN(std::string body_b64, b.RequiredString("report_body", 1024));
        VOUCH_ASSIGN_OR_RETURN(std::string target_hex, b.RequiredString("target_mrenclave", 64));
        VOUCH_RETURN_IF_ERROR(b.Finish());
        auto raw = Base64Decode(body_b64);
        if (!raw.ok()) return InvalidArgument("report_body is not base64", "invalid_base64");
        VOUCH_ASSIGN_OR_RETURN(auto body, evidence::ParseSgxReportBody(*raw));
        auto target = HexDecode(target_hex);
        if (!target.ok() || target->size() != 32) {
          return InvalidArgument("target_mrenclave must be 64 hex digits", "invalid_target");
        }
        std::array<uint8_t, 32> t{};
        std::copy(target->begin(), target->end(), t.begin());
        // Made from the typed fields: the MAC covers exactly what a parser of the REPORT sees.
        VOUCH_ASSIGN_OR_RETURN(auto report, sim_->platform().MakeReport(body, t));
        return Response::Json({{"report", Base64Encode(report)}, {"insecure_sim", true}});
      };
      auto res = run();
      return res.ok() ? std::move(*res) : ErrorResponse(res.status());
    });
  }
  r.Add("POST", "/v1/certificate", [this](Request& req) -> Response {
    auto run = [&]() -> Result<Response> {
      VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
      VOUCH_ASSIGN_OR_RETURN(std::string csr, b.RequiredString("csr", 64 * 1024));
      VOUCH_ASSIGN_OR_RETURN(std::string report_b64, b.RequiredString("report", 2048));
      VOUCH_ASSIGN_OR_RETURN(auto instance, b.OptionalString("instance_id", 64));
      VOUCH_RETURN_IF_ERROR(b.Finish());
      auto report = Base64Decode(report_b64);
      if (!report.ok()) return InvalidArgument("report is not base64", "invalid_base64");
      std::vector<uint8_t> body;
      Status local;
      if (cvm()) {
        // Kernel facts first: the caller must be a vouch-rte this agent knows (agent/peer.h).
        local = rte_->Check(PeerProcess{req.peer_pid, req.peer_uid, req.peer_pidfd});
        if (local.ok()) local = ClaimedReportBody(*report, csr, &body);
      } else {
        local = VerifyLocalRequest(report_key_, *report, csr, &body);
      }
      if (!local.ok()) {
        if (local.code() == StatusCode::kPermissionDenied) {
          std::string mrenclave;
          auto parsed = evidence::ParseSgxReport(*report);
          if (parsed.ok()) mrenclave = HexEncode(parsed->body.mr_enclave);
          LogRefusal("certificate request", local, mrenclave);
        }
        return local;
      }
      json fwd = {{"csr", csr}, {"report_body", Base64Encode(body)}};
      if (instance && !instance->empty()) fwd["instance_id"] = *instance;
      Status err;
      uint64_t gen;
      {
        std::lock_guard<std::mutex> lock(pool_mu_);
        gen = generation_;
      }
      auto client = Acquire(&err);
      if (!client) return err;
      // vouchd's answer is passed on as it came (the workload parses it), not parsed and re-encoded.
      auto answer = client->PostJsonRaw("/api/v1/certificates", fwd.dump());
      Release(std::move(client), gen);
      if (!answer.ok()) {
        Status st = answer.status();
        if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded) {
          return Unavailable("the manager is unreachable; retry later (" + st.message() + ")", "manager_unavailable");
        }
        return st;
      }
      issued_.fetch_add(1);
      Response resp;
      resp.status = 201;
      resp.body = std::move(*answer);
      return resp;
    };
    auto res = run();
    if (res.ok()) return std::move(*res);
    Response resp = ErrorResponse(res.status());
    if (resp.status == 503) resp.AddHeader("Retry-After", "2");
    return resp;
  });
  // A workload runtime (vouch-rte) that refused to start tells the agent why; queued like the
  // agent's own refusals for vouchd's audit log (docs/agent.md "Local refusals").
  r.Add("POST", "/v1/refusal", [this](Request& req) -> Response {
    auto run = [&]() -> Result<Response> {
      VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
      VOUCH_ASSIGN_OR_RETURN(std::string code, b.RequiredString("code", 64));
      VOUCH_ASSIGN_OR_RETURN(std::string message, b.RequiredString("message", 300));
      VOUCH_ASSIGN_OR_RETURN(auto path, b.OptionalString("path", 1024));
      VOUCH_ASSIGN_OR_RETURN(auto mrenclave, b.OptionalString("mrenclave", 64));
      VOUCH_RETURN_IF_ERROR(b.Finish());
      if (!IsSnakeCase(code)) return InvalidArgument("code must be snake_case, 1..64 characters", "invalid_code");
      if (mrenclave && !mrenclave->empty()) {
        auto raw = HexDecode(*mrenclave);
        if (!raw.ok() || raw->size() != 32) return InvalidArgument("mrenclave must be 64 hex digits", "invalid_mrenclave");
      }
      {
        std::lock_guard<std::mutex> lock(workload_refusal_mu_);
        const auto now = std::chrono::steady_clock::now();
        const double minutes = std::chrono::duration<double>(now - workload_refusal_refilled_).count() / 60.0;
        workload_refusal_refilled_ = now;
        workload_refusal_tokens_ = std::min<double>(kWorkloadRefusalsPerMinute,
                                                    workload_refusal_tokens_ + minutes * kWorkloadRefusalsPerMinute);
        if (workload_refusal_tokens_ < 1) {
          refusals_unreported_.fetch_add(1);
          return Response::Json({{"queued", false}, {"counted", true}}, 202);
        }
        workload_refusal_tokens_ -= 1;
      }
      // The path first: vouchd keeps the first 200 characters of a message.
      std::string text = "workload start refused";
      if (path && !path->empty()) text += " at " + *path;
      text += ": " + message;
      LogRefusal("workload start", PermissionDenied(text, code), mrenclave ? *mrenclave : std::string());
      return Response::Json({{"queued", true}}, 202);
    };
    auto res = run();
    return res.ok() ? std::move(*res) : ErrorResponse(res.status());
  });
  r.Add("POST", "/v1/heartbeat", [this](Request& req) -> Response {
    auto run = [&]() -> Result<Response> {
      VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
      VOUCH_ASSIGN_OR_RETURN(std::string instance, b.RequiredString("instance_id", 64));
      VOUCH_ASSIGN_OR_RETURN(int64_t seq, b.RequiredInt("seq", 1));
      VOUCH_ASSIGN_OR_RETURN(int64_t ts, b.RequiredInt("timestamp", 0));
      VOUCH_ASSIGN_OR_RETURN(std::string status, b.RequiredString("status", 16));
      // Authenticated by the workload with exactly one of an ECDSA "signature" or a "mac" under
      // its heartbeat key (docs/formats/heartbeat-key.md). Relayed unchanged: the agent cannot
      // check either (it has no key for that), vouchd does.
      VOUCH_ASSIGN_OR_RETURN(std::optional<std::string> sig, b.OptionalString("signature", 512));
      VOUCH_ASSIGN_OR_RETURN(std::optional<std::string> mac, b.OptionalString("mac", 64));
      VOUCH_RETURN_IF_ERROR(b.Finish());
      if (sig.has_value() == mac.has_value()) {
        return InvalidArgument("a heartbeat carries exactly one of signature and mac", "invalid_heartbeat");
      }
      if (!workload::IsValidWireId(instance)) return InvalidArgument("invalid instance_id", "invalid_instance_id");
      if (status != "running" && status != "stopping") {
        return InvalidArgument("status must be running or stopping", "invalid_status");
      }
      json rec = {{"instance_id", instance}, {"seq", seq}, {"timestamp", ts}, {"status", status}};
      if (sig) {
        if (!Base64Decode(*sig).ok()) return InvalidArgument("signature is not base64", "invalid_base64");
        rec["signature"] = *sig;
      } else {
        auto raw = Base64Decode(*mac);
        if (!raw.ok()) return InvalidArgument("mac is not base64", "invalid_base64");
        if (raw->size() != workload::kHeartbeatMacSize) {
          return InvalidArgument("mac must be 32 bytes (HMAC-SHA256)", "invalid_heartbeat");
        }
        rec["mac"] = *mac;
      }
      VOUCH_RETURN_IF_ERROR(queue_->Push(rec.dump()));
      if (queue_->size() >= options_.batch_max) {
        std::lock_guard<std::mutex> lock(loop_mu_);
        wake_ = true;
        loop_cv_.notify_one();
      }
      return Response::Json({{"queued", true}}, 202);
    };
    auto res = run();
    if (res.ok()) return std::move(*res);
    Response resp = ErrorResponse(res.status());
    if (res.status().reason() == "queue_full") {
      resp.status = 503;
      resp.AddHeader("Retry-After", "5");
    }
    return resp;
  });
  return r;
}

Status Agent::Start() {
  http::ServerOptions so;
  so.tcp_enabled = false;
  so.unix_socket_path = options_.socket_path;
  so.unix_socket_mode = options_.socket_mode;
  so.threads = options_.threads;
  so.max_body_bytes = 256 * 1024;
  VOUCH_ASSIGN_OR_RETURN(server_, http::Server::Create(so, BuildLocalRouter()));
  VOUCH_RETURN_IF_ERROR(server_->Start());
  if (!options_.socket_group.empty()) {
    struct group* g = ::getgrnam(options_.socket_group.c_str());
    if (g == nullptr || ::chown(options_.socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      server_->Stop(std::chrono::milliseconds(0));
      return InvalidArgument("cannot give the socket to group '" + options_.socket_group + "'", "invalid_group");
    }
  }
  if (!options_.listen_tcp.empty()) {
    auto listen = ParseHostPort(options_.listen_tcp);
    if (!listen.ok()) {
      server_->Stop(std::chrono::milliseconds(0));
      return InvalidArgument("--listen-tcp must be host:port on loopback, got '" + options_.listen_tcp + "'",
                             "invalid_listen");
    }
    http::ServerOptions to = so;
    to.unix_socket_path.clear();
    to.tcp_enabled = true;
    to.tcp_plaintext = true;
    to.listen_address = listen->host;
    to.port = listen->port;
    auto tcp = http::Server::Create(to, BuildLocalRouter());
    Status st = tcp.ok() ? (*tcp)->Start() : tcp.status();
    if (!st.ok()) {
      server_->Stop(std::chrono::milliseconds(0));
      return st;
    }
    tcp_server_ = std::move(*tcp);
  }
  loop_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Agent::Stop() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (tcp_server_) tcp_server_->Stop(std::chrono::seconds(5));
  if (server_) server_->Stop(std::chrono::seconds(5));
}

}  // namespace vouch::agent
