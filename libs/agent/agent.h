#pragma once

// The node agent (docs/agent.md). One per machine:
//  - identity: an EC P-256 node key (DATA/node-key.pem, 0600) and the node certificate from
//    vouchd's node CA (DATA/node-cert.pem, DATA/node.json); kept across restarts;
//  - provisioning once with a join token: nonce -> quote binding SHA-256(node SPKI ‖ nonce) ->
//    POST /api/v1/nodes; renewal with fresh evidence (POST /api/v1/nodes/renew, mTLS) once
//    `renew_fraction` of the certificate's lifetime has passed;
//  - the TEE backend: `sim` (the sim SGX platform of a sim folder) or, on a confidential VM,
//    `tdx` / `sev-snp` / `auto` (evidence from the kernel's configfs-tsm, libs/tsm);
//  - the workload API on a Unix socket: GET /v1/version, GET /v1/target-info,
//    POST /v1/certificate (CSR + 432-byte REPORT, MAC checked in constant time, report data =
//    SHA-256(CSR key), then forwarded under the node identity; on a confidential VM the REPORT
//    is an unsigned claim of the manifest identity, believed only from a known vouch-rte
//    process, agent/peer.h), POST /v1/heartbeat (queued durably, then batched to
//    POST /api/v1/heartbeats), and with the sim TEE POST /v1/sim/report;
//  - check-ins (node version, load, queue depth) with every batch and at least every
//    `checkin_interval`; local refusals (bad REPORT MAC, report not binding the CSR key) ride on
//    the next check-in so that vouchd audits them;
//  - several manager URLs (an HA cluster, docs/cluster.md): kept in DATA/agent.json, one shared
//    fail-over state for all its clients; heartbeat batches are idempotent (vouchd drops
//    duplicates by seq) and move to the next manager on any failure, certificate requests only
//    when the connection failed before sending.
//
// Thread safety: Create, Start and Stop from one thread; handlers run on the server's threads;
// one background thread delivers the queue and renews.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "agent/disk_queue.h"
#include "agent/peer.h"
#include "attest/sim_vendor.h"
#include "base/result.h"
#include "client/api_client.h"
#include "http/router.h"
#include "http/server.h"
#include "tsm/report.h"

namespace vouch::agent {

inline constexpr char kAgentVersion[] = "0.1.0";

struct AgentOptions {
  // Manager URLs, tried in order with fail-over. Entries may be comma-separated lists. Empty: the
  // list saved in DATA/agent.json by an earlier start.
  std::vector<std::string> server_urls;
  std::string ca_file;
  std::string data_dir;
  std::string socket_path;
  uint32_t socket_mode = 0660;
  std::string socket_group;  // chgrp the socket to this group (optional)
  std::string join_token;
  // Also serve the workload API as plain HTTP on this loopback address ("127.0.0.1:9092").
  // Unlike the socket (mode 0660), any local user can reach it.
  std::string listen_tcp;
  // "sim", or on a confidential VM "tdx", "sev-snp" or "auto" (the configfs-tsm provider the
  // kernel offers; none is a start-up error). Create replaces "auto" by what it found.
  std::string tee = "sim";
  std::string sim_dir;
  // configfs-tsm report directory (tdx, sev-snp, auto).
  std::string tsm_dir = std::string(tsm::kDefaultTsmDir);
  // Confidential VMs: SHA-256 (hex) of the vouch-rte executables whose processes may claim a
  // workload identity. Empty: the vouch-rte next to this program's executable, if any.
  std::vector<std::string> rte_sha256;
  std::chrono::milliseconds batch_interval{1000};
  size_t batch_max = 500;
  std::chrono::seconds checkin_interval{30};
  size_t queue_max = 100000;
  double renew_fraction = 2.0 / 3.0;
  // Handler threads of the workload API. A certificate request holds its thread while vouchd
  // answers (vouchd commits concurrent requests together), so more threads than cores.
  size_t threads = 64;
};

// The agent's own enclave identity in the sim TEE: workloads address their REPORTs to it.
std::array<uint8_t, 32> SimAgentMrEnclave();

// The local attestation check of POST /v1/certificate: the 432-byte REPORT's MAC under this
// platform's report key for `my_mrenclave` (constant-time compare), then report_data[0..32) ==
// SHA-256(CSR SubjectPublicKeyInfo). On success `body_out` gets the 384 body bytes. Refusals are
// PermissionDenied "report_mac_invalid" / "report_data_mismatch"; malformed input InvalidArgument.
Status VerifyLocalRequest(const attest::SimPlatform& platform, std::span<const uint8_t, 32> my_mrenclave,
                          std::span<const uint8_t> report, std::string_view csr_pem, std::vector<uint8_t>* body_out);
// Same with this platform's report key for the agent already derived (the agent does it once).
Status VerifyLocalRequest(const crypto::SecretBytes& report_key, std::span<const uint8_t> report,
                          std::string_view csr_pem, std::vector<uint8_t>* body_out);

// A confidential VM's POST /v1/certificate, after the caller was recognised as a vouch-rte
// (RteRecognizer): `report` is the 432-byte REPORT layout carrying the claimed manifest identity
// (no MAC: there is no EREPORT); its report_data[0..32) must be SHA-256(CSR SubjectPublicKeyInfo)
// ("report_data_mismatch"). `body_out` gets a fresh 384-byte body made of the claimed MRENCLAVE,
// MRSIGNER, ISVPRODID, ISVSVN and debug flag only, with that report_data: the form vouchd takes.
Status ClaimedReportBody(std::span<const uint8_t> report, std::string_view csr_pem, std::vector<uint8_t>* body_out);

// The configfs-tsm inblob of node provisioning: SHA-256(node SPKI DER ‖ nonce) ‖ 32 zero bytes.
std::array<uint8_t, tsm::kInblobSize> NodeInblob(std::span<const uint8_t> spki_der, std::span<const uint8_t> nonce);

class Agent {
 public:
  // Loads the sim platform and the identity, provisioning first if there is none.
  static Result<std::unique_ptr<Agent>> Create(AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  Status Start();
  void Stop();

  const std::string& node_id() const { return node_id_; }
  // The backend in use ("sim", "tdx", "sev-snp": "auto" resolved).
  const std::string& tee() const { return options_.tee; }
  http::Router BuildLocalRouter();

 private:
  explicit Agent(AgentOptions options);
  Status LoadOrProvision();
  Status Enroll(bool renewal);
  Result<std::unique_ptr<client::ApiClient>> NewClient(bool mtls);
  // A client with the node identity from a small pool (ApiClient is one-thread-at-a-time).
  std::unique_ptr<client::ApiClient> Acquire(Status* error);
  void Release(std::unique_ptr<client::ApiClient> c, uint64_t generation);
  void Loop();
  Status DeliverOnce(bool force_checkin);
  nlohmann::json NodeInfo() const;
  void LogRefusal(const std::string& what, const Status& why, const std::string& mrenclave);
  Status ResolveServers();
  Status ResolveTee();
  bool cvm() const { return !tsm_provider_.empty(); }
  // The evidence of node provisioning and renewal, binding SHA-256(spki ‖ nonce).
  Status MakeNodeEvidence(std::span<const uint8_t> spki, std::span<const uint8_t> nonce, std::string* platform,
                          std::vector<uint8_t>* evidence);

  AgentOptions options_;
  std::unique_ptr<attest::SimVendor> sim_;
  std::string tsm_provider_;             // "tdx_guest" / "sev_guest" on a confidential VM
  std::unique_ptr<RteRecognizer> rte_;   // confidential VMs: who may claim a workload identity
  std::array<uint8_t, 32> mrenclave_{};
  crypto::SecretBytes report_key_;  // this platform's report key for mrenclave_ (EGETKEY, once)
  std::string node_id_, zone_;
  int64_t cert_not_before_ = 0, cert_not_after_ = 0;
  int64_t cert_obtained_ = 0;  // when this agent received the current certificate (unix s)
  std::shared_ptr<client::ServerSet> servers_;
  std::unique_ptr<DiskQueue> queue_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Server> tcp_server_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<client::ApiClient>> pool_;
  uint64_t generation_ = 0;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread loop_;
  std::atomic<int64_t> refused_{0}, issued_{0}, delivered_{0};
  std::mutex log_mu_;
  // Local refusals not yet reported to vouchd: on disk (DATA/refusals-queue), so that a restart
  // or kill -9 loses none; past kMaxQueuedRefusals they are only counted.
  std::unique_ptr<DiskQueue> refusal_queue_;
  std::atomic<int64_t> refusals_unreported_{0};
  // POST /v1/refusal: a token bucket (30, refilled at 30 a minute); past it refusals are only
  // counted, so a local caller cannot flood vouchd's audit log.
  std::mutex workload_refusal_mu_;
  double workload_refusal_tokens_ = 30;
  std::chrono::steady_clock::time_point workload_refusal_refilled_ = std::chrono::steady_clock::now();
};

}  // namespace vouch::agent
