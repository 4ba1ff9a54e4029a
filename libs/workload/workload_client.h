#pragma once

// WorkloadClient: what a workload does to become an attested TLS service (docs/agent.md):
//   1. make an EC P-256 key in memory,
//   2. GET /v1/target-info from the agent (whom the local report is addressed to),
//   3. make an SGX REPORT for that target whose report_data[0..32) = SHA-256(CSR public key),
//   4. POST /v1/certificate {csr, report} and receive leaf, chain and zone root,
//   5. renew before expiry (same instance id), and send signed heartbeats.
// Step 3 is the TEE's job: a ReportSource. ManifestReportSource (alias SimReportSource) asks the
// agent's sim-only endpoint to MAC a report body that claims the given measurements (INSECURE;
// sim TEE), or on a confidential VM node sends that claim unsigned (the agent checks the caller).
//
// Thread-compatible: use one WorkloadClient from one thread at a time. Never throws.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"
#include "evidence/sgx_report.h"
#include "workload/local_http.h"

namespace vouch::workload {

struct TargetInfo {
  std::array<uint8_t, 32> mrenclave{};  // the agent's enclave identity (report target)
  std::string tee;                      // "sim" or a real backend name
};

// The enclave identity a sim workload claims.
struct SimIdentity {
  std::array<uint8_t, 32> mrenclave{};
  std::array<uint8_t, 32> mrsigner{};
  uint16_t isvprodid = 0;
  uint16_t isvsvn = 0;
  bool debug = false;
};

// Makes the 432-byte REPORT for `target` with `report_data` (64 bytes).
using ReportSource = std::function<Result<std::vector<uint8_t>>(const TargetInfo& target,
                                                               const std::array<uint8_t, 64>& report_data)>;

struct Credentials {
  crypto::EvpPkeyPtr key;
  crypto::SecretBytes key_pem;  // PKCS#8 PEM
  std::string cert_pem;         // leaf first, then any intermediates
  std::string ca_pem;           // zone root CA
  std::string instance_id;
  std::string serial;
  std::string not_after;        // RFC 3339, as the manager said
  // MAC heartbeats (docs/formats/heartbeat-key.md): the zone's heartbeat public key when the
  // answer named one (EC P-256 instance keys), and K derived from it; both empty otherwise
  // (heartbeats are then signed with ECDSA).
  std::string heartbeat_public_pem;
  crypto::SecretBytes heartbeat_key;
};

class WorkloadClient {
 public:
  static Result<std::unique_ptr<WorkloadClient>> Create(const std::string& socket_path,
                                                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

  Result<nlohmann::json> Version();
  Result<TargetInfo> GetTargetInfo();
  // The report source of a runtime that reports its manifest identity (vouch-rte): in the sim
  // TEE the agent's POST /v1/sim/report MACs it (INSECURE); on a confidential VM node (target
  // tee "tdx" / "sev-snp") it is sent in the REPORT layout without a MAC, and the agent believes
  // it only from a vouch-rte process it recognises by kernel facts (docs/agent.md).
  ReportSource ManifestReportSource(const SimIdentity& identity);
  // The same (the name from before confidential VMs).
  ReportSource SimReportSource(const SimIdentity& identity);

  // A new key (unless `key` is given: renewal keeps the key) and certificate for `dns_names`
  // (empty: the app's names). `instance_id` non-empty renews that instance. Retries while the
  // agent answers 503 (manager unreachable) until `retry_for` has passed.
  Result<Credentials> RequestCertificate(const ReportSource& report, const std::vector<std::string>& dns_names,
                                         const std::string& instance_id = "", EVP_PKEY* key = nullptr,
                                         std::chrono::seconds retry_for = std::chrono::seconds(0));

  // Signs and sends one heartbeat (the agent queues it durably before it answers).
  Status SendHeartbeat(EVP_PKEY* key, const std::string& instance_id, int64_t seq, const std::string& status = "running");
  // Sends one heartbeat MAC'd under `mac_key` (K, 32 bytes) when it is not empty, else signed
  // by `key` (ECDSA).
  Status SendHeartbeat(EVP_PKEY* key, std::span<const uint8_t> mac_key, const std::string& instance_id, int64_t seq,
                       const std::string& status = "running");

 private:
  explicit WorkloadClient(std::unique_ptr<LocalHttp> http) : http_(std::move(http)) {}
  std::unique_ptr<LocalHttp> http_;
};

// A PEM CSR for `key` with CN = first name and the names as DNS SANs.
Result<std::string> MakeCsr(EVP_PKEY* key, const std::vector<std::string>& dns_names);

}  // namespace vouch::workload
