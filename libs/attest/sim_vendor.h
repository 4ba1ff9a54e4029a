#pragma once

// The simulated TEE vendor ("sim"): an INSECURE stand-in for Intel that lets vouch exercise every
// real DCAP path on machines without SGX (design: docs/sim.md).
//
// SimVendor::Create(dir) writes, in Intel's formats and under the file names of the DCAP test
// folders, a sim root CA (CN "vouch INSECURE SIM Root CA — not Intel"), a PCK platform CA, a TCB
// Signing certificate, the root and PCK CRLs, a signed TCB Info v3 (SGX; levels UpToDate,
// SWHardeningNeeded with an advisory, OutOfDate), a signed QE Identity, and one platform (PCK
// key + certificate with the real SGX extension, an attestation key, a QE report signed by the
// PCK key). The private keys and the platform secret go to DIR/sim-secrets.json (mode 0600).
//
// The quotes it emits are byte-for-byte SGX quote v3 (certification data type 5) and verify
// through the ordinary DcapVerifier, which trusts a sim root only with allow_sim and then marks
// the verdict insecure_sim.
//
// Local attestation (what EREPORT/EGETKEY do on real hardware): a report key is derived per
// target enclave from the platform secret, and a 432-byte SGX REPORT carries an AES-128-CMAC of
// its body under the target's report key.
//
// SimVendor / SimPlatform are immutable after Create/Load and safe to use from several threads.
// Nothing here throws.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"
#include "evidence/sgx_report.h"

namespace vouch::attest {

// UTF-8, with an em dash.
inline constexpr char kSimRootCommonName[] = "vouch INSECURE SIM Root CA \xE2\x80\x94 not Intel";
inline constexpr char kSimNamePrefix[] = "vouch INSECURE SIM";
inline constexpr char kSimSecretsFile[] = "sim-secrets.json";
// The advisory listed on the sim's SWHardeningNeeded level.
inline constexpr char kSimAdvisoryId[] = "INTEL-SA-00615";

// True for a self-signed certificate whose subject CN starts with "vouch INSECURE SIM": the
// marker of a sim root. (Trust never rests on this name: a sim root is only ever accepted when
// the caller allows sim evidence, and the verdict then says insecure_sim.)
bool IsSimRootCa(X509* cert);

enum class SimTcb { kUpToDate, kSwHardeningNeeded, kOutOfDate };
std::string_view SimTcbName(SimTcb tcb);  // "up-to-date", "sw-hardening-needed", "out-of-date"
Result<SimTcb> ParseSimTcb(std::string_view name);
// The QVL status a platform with this option gets: "UpToDate", "SWHardeningNeeded", "OutOfDate".
std::string_view SimTcbStatus(SimTcb tcb);

struct SimVendorOptions {
  SimTcb tcb = SimTcb::kUpToDate;
  bool revoked = false;  // the platform's PCK serial is listed in the PCK CRL
  // Start of validity of everything written (certificates, CRLs, TCB Info, QE Identity); default
  // is the current time minus one hour.
  std::optional<TimePoint> now;
  // Lifetime of CRLs, TCB Info and QE Identity (Intel's are ~30 days; a sim lasts a year so a
  // dev installation keeps working). Certificates last 10 years.
  std::chrono::seconds collateral_validity = std::chrono::hours(24 * 365);
};

class SimPlatform {
 public:
  ~SimPlatform();
  SimPlatform(const SimPlatform&) = delete;
  SimPlatform& operator=(const SimPlatform&) = delete;

  // An SGX quote v3 for an enclave whose report body is `body` (its report_data is replaced by
  // `report_data`, up to 64 bytes, zero-padded).
  Result<std::vector<uint8_t>> Quote(const evidence::SgxReportBody& body, std::span<const uint8_t> report_data) const;
  // Same, from the 384 raw bytes of a report body.
  Result<std::vector<uint8_t>> Quote(std::span<const uint8_t> report_body, std::span<const uint8_t> report_data) const;

  // --- local attestation ---
  // The 128-bit report key of the enclave `target_mrenclave` on this platform:
  // HMAC-SHA256(platform secret, "vouch-sim-report-key-v1" ‖ target_mrenclave)[0..16).
  crypto::SecretBytes ReportKey(std::span<const uint8_t, 32> target_mrenclave) const;
  // A 432-byte SGX REPORT (EREPORT): `body` ‖ random KEYID ‖ AES-128-CMAC(report key of the
  // target, body bytes).
  Result<std::array<uint8_t, evidence::kSgxReportSize>> MakeReport(const evidence::SgxReportBody& body,
                                                                    std::span<const uint8_t, 32> target_mrenclave) const;
  // Checks the MAC of a REPORT addressed to `my_mrenclave` (constant-time compare). False for
  // any size other than 432 or a wrong MAC.
  bool VerifyReport(std::span<const uint8_t> report, std::span<const uint8_t, 32> my_mrenclave) const;
  // Same with the report key already derived (ReportKey(my_mrenclave)): an enclave asks EGETKEY
  // for its report key once, not for every REPORT it checks.
  static bool VerifyReportWithKey(std::span<const uint8_t> report, const crypto::SecretBytes& report_key);

  const std::array<uint8_t, 6>& fmspc() const { return fmspc_; }
  const std::array<uint8_t, 16>& comp_svns() const { return comp_svns_; }
  uint16_t pcesvn() const { return pcesvn_; }
  const std::string& pck_chain_pem() const { return chain_pem_; }

 private:
  friend class SimVendor;
  SimPlatform() = default;
  crypto::EvpPkeyPtr pck_key_;
  crypto::EvpPkeyPtr attestation_key_;
  crypto::SecretBytes secret_;
  std::string chain_pem_;  // PCK leaf, PCK CA, root (PEM)
  std::array<uint8_t, 6> fmspc_{};
  std::array<uint8_t, 16> comp_svns_{};
  std::array<uint8_t, 16> cpusvn_{};
  std::array<uint8_t, 16> qe_id_{};
  uint16_t pcesvn_ = 0;
  std::array<uint8_t, 64> attestation_key_raw_{};
};

class SimVendor {
 public:
  // Writes a new sim vendor and platform into `dir` (created if missing; fails with
  // "already_exists" if it already holds one).
  static Result<std::unique_ptr<SimVendor>> Create(const std::string& dir, const SimVendorOptions& options = {});
  // Loads one written by Create.
  static Result<std::unique_ptr<SimVendor>> Load(const std::string& dir);
  ~SimVendor();
  SimVendor(const SimVendor&) = delete;
  SimVendor& operator=(const SimVendor&) = delete;

  const std::string& dir() const { return dir_; }
  const SimPlatform& platform() const { return *platform_; }
  X509* root() const { return root_.get(); }
  SimTcb tcb() const { return tcb_; }
  bool revoked() const { return revoked_; }

 private:
  SimVendor() = default;
  std::string dir_;
  crypto::X509Ptr root_;
  std::unique_ptr<SimPlatform> platform_;
  SimTcb tcb_ = SimTcb::kUpToDate;
  bool revoked_ = false;
};

// AES-128-CMAC (NIST SP 800-38B) through OpenSSL EVP_MAC "CMAC": the MAC of sim SGX REPORTs.
// A TCB recovery, as Intel publishes one: rewrites DIR/tcbInfo.json (atomically) with the next
// TCB evaluation data number, issued now, every level OutOfDate; signed with the sim vendor's
// TCB signing key. Returns the new evaluation data number.
Result<int> SimTcbRecovery(const std::string& dir);

Result<std::array<uint8_t, 16>> SimAesCmac128(const crypto::SecretBytes& key, std::span<const uint8_t> data);

// The QE enclave identity the sim quoting enclave reports (and its QE Identity describes).
inline constexpr uint16_t kSimQeIsvProdId = 1;
inline constexpr uint16_t kSimQeIsvSvn = 8;

}  // namespace vouch::attest
