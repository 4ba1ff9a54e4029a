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
// Three platforms (SimVendorOptions::tee; the folder's sim-secrets.json records which):
//  - sgx: the above.
//  - tdx: the same Intel-style PKI, a TDX TCB Info v3 (id TDX, tdxModule, tdxModuleIdentities
//    TDX_01, tdxtcbcomponents; levels as the SGX sim's) and a TD_QE identity; quotes are TDX
//    quote v4 or v5 (TD report 1.0 or 1.5) signed as DCAP does (QE report, attestation key,
//    certification data type 6 wrapping type 5).
//  - sev-snp: its own AMD-style chain (RSA-4096 ARK and ASK with RSASSA-PSS/SHA-384 signatures,
//    a P-384 VCEK with AMD's extensions), an ARK-signed CRL, and Milan-like v3 reports signed
//    with ECDSA P-384 by the VCEK (SimSnpPlatform). Folder: cert_chain.pem (ASK then ARK, as KDS
//    serves it), vcek.der, crl.der, sim-secrets.json.
// Layouts and commands: docs/sim.md.
//
// SimVendor / SimPlatform / SimSnpPlatform are immutable after Create/Load and safe to use from
// several threads. Nothing here throws.

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

// Which TEE a sim folder emulates.
enum class SimTee { kSgx, kTdx, kSevSnp };
std::string_view SimTeeName(SimTee tee);  // "sgx", "tdx", "sev-snp"
Result<SimTee> ParseSimTee(std::string_view name);

enum class SimTcb { kUpToDate, kSwHardeningNeeded, kOutOfDate };
std::string_view SimTcbName(SimTcb tcb);  // "up-to-date", "sw-hardening-needed", "out-of-date"
Result<SimTcb> ParseSimTcb(std::string_view name);
// The QVL status a platform with this option gets: "UpToDate", "SWHardeningNeeded", "OutOfDate".
std::string_view SimTcbStatus(SimTcb tcb);

// SEV-SNP TCB_VERSION components (Milan layout: byte 0 bootloader, 1 tee, 6 snp, 7 microcode).
struct SimSnpTcb {
  uint8_t bootloader = 0;
  uint8_t tee = 0;
  uint8_t snp = 0;
  uint8_t microcode = 0;
  uint64_t Raw() const;
  bool operator==(const SimSnpTcb&) const = default;
};
// The reported TCB a sev-snp sim gets for a SimTcb: up-to-date {4, 0, 22, 213}, sw-hardening-
// needed {3, 0, 20, 209}, out-of-date {2, 0, 8, 115}. (An SNP verdict has no TCB status of its
// own: zones state minimum components; docs/policy.md.)
SimSnpTcb SimSnpTcbFor(SimTcb tcb);

struct SimVendorOptions {
  SimTee tee = SimTee::kSgx;
  SimTcb tcb = SimTcb::kUpToDate;
  // sgx/tdx: the platform's PCK serial is listed in the PCK CRL; sev-snp: the VCEK's serial is
  // listed in the ARK's CRL (crl.der).
  bool revoked = false;
  // sev-snp: the reported TCB, overriding SimSnpTcbFor(tcb).
  std::optional<SimSnpTcb> snp_tcb;
  // Start of validity of everything written (certificates, CRLs, TCB Info, QE Identity); default
  // is the current time minus one hour.
  std::optional<TimePoint> now;
  // Lifetime of CRLs, TCB Info and QE Identity (Intel's are ~30 days; a sim lasts a year so a
  // dev installation keeps working). Certificates last 10 years.
  std::chrono::seconds collateral_validity = std::chrono::hours(24 * 365);
};

// What a TDX sim quote attests (TD report fields a guest controls; the rest is the sim's).
struct SimTdxQuoteOptions {
  int version = 4;            // 4 or 5
  bool td_report_15 = false;  // v5 only: body type 3 (TD report 1.5) instead of 2 (1.0)
  std::array<uint8_t, 48> mr_td{};
  std::array<std::array<uint8_t, 48>, 4> rtmr{};
  std::array<uint8_t, 48> mr_config_id{};
  std::array<uint8_t, 48> mr_owner{};
  std::array<uint8_t, 48> mr_owner_config{};
  bool debug = false;  // TD_ATTRIBUTES bit 0
};

// The TDX module the sim reports: TEE_TCB_SVN = {4, 1, 2, 0...} (module SVN 4, major version 1
// -> identity TDX_01, late microcode 2), MRSIGNERSEAM zero (Intel's), SEAMATTRIBUTES zero.
inline constexpr uint8_t kSimTdxModuleSvn = 4;
inline constexpr uint8_t kSimTdxModuleMajor = 1;

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
  // (The two above need an sgx folder: failed_precondition "wrong_sim_platform" otherwise.)

  // A TDX quote v4 or v5 (tdx folders only, else "wrong_sim_platform"); `report_data` up to 64
  // bytes, zero-padded.
  Result<std::vector<uint8_t>> TdxQuote(const SimTdxQuoteOptions& options, std::span<const uint8_t> report_data) const;

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
  Result<std::vector<uint8_t>> SignQuote(std::vector<uint8_t> q) const;
  SimTee tee_ = SimTee::kSgx;
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

// What a sev-snp sim report attests (fields a guest or its launch controls).
struct SimSnpReportOptions {
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  uint32_t vmpl = 0;  // 0..3
  bool debug = false;  // guest policy bit 19
  uint32_t guest_svn = 0;
};

// The SEV-SNP side of a sev-snp sim folder: the VCEK key and the chip.
class SimSnpPlatform {
 public:
  ~SimSnpPlatform();
  SimSnpPlatform(const SimSnpPlatform&) = delete;
  SimSnpPlatform& operator=(const SimSnpPlatform&) = delete;

  // A 1184-byte ATTESTATION_REPORT v3 (Milan: CPUID family 0x19 model 0x01 stepping 1; policy
  // 0x30000 plus DEBUG on request; signing key VCEK; current = committed = launch = reported
  // TCB; firmware 1.55.21) with REPORT_DATA = `report_data` (up to 64 bytes, zero-padded), a
  // random REPORT_ID, signed with ECDSA P-384 / SHA-384 by the VCEK (r, s little-endian).
  Result<std::vector<uint8_t>> Report(const SimSnpReportOptions& options, std::span<const uint8_t> report_data) const;
  // The certificate table a host hands out with it: VCEK, ASK, ARK (DER, in that order).
  const std::vector<uint8_t>& cert_table() const { return cert_table_; }
  // Report ‖ certificate table: the evidence blob vouch carries (team contract, issue 14).
  Result<std::vector<uint8_t>> Evidence(const SimSnpReportOptions& options, std::span<const uint8_t> report_data) const;

  const std::array<uint8_t, 64>& chip_id() const { return chip_id_; }
  const SimSnpTcb& reported_tcb() const { return tcb_; }
  const std::vector<uint8_t>& vcek_der() const { return vcek_der_; }
  const std::vector<uint8_t>& ask_der() const { return ask_der_; }
  const std::vector<uint8_t>& ark_der() const { return ark_der_; }

 private:
  friend class SimVendor;
  SimSnpPlatform() = default;
  crypto::EvpPkeyPtr vcek_key_;
  std::array<uint8_t, 64> chip_id_{};
  SimSnpTcb tcb_;
  std::vector<uint8_t> vcek_der_, ask_der_, ark_der_;
  std::vector<uint8_t> cert_table_;
};

// File names of a sev-snp sim folder (those of AMD KDS answers).
inline constexpr char kSimSnpCertChainFile[] = "cert_chain.pem";  // ASK then ARK
inline constexpr char kSimSnpVcekFile[] = "vcek.der";
inline constexpr char kSimSnpCrlFile[] = "crl.der";
// The product the sev-snp sim claims (VCEK productName "Milan-B0").
inline constexpr char kSimSnpProductName[] = "Milan-B0";

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
  SimTee tee() const { return tee_; }
  // The DCAP platform (sgx, tdx). A sev-snp folder has one too, for local attestation only
  // (ReportKey / MakeReport); its Quote / TdxQuote fail with "wrong_sim_platform".
  const SimPlatform& platform() const { return *platform_; }
  // The SEV-SNP platform; null unless tee() is kSevSnp.
  const SimSnpPlatform* snp() const { return snp_.get(); }
  // The sim root: the Intel-style root CA (sgx, tdx) or the ARK (sev-snp).
  X509* root() const { return root_.get(); }
  SimTcb tcb() const { return tcb_; }
  bool revoked() const { return revoked_; }

 private:
  SimVendor() = default;
  // sim_snp.cc: writes the sev-snp files of a new folder; loads them (given sim-secrets.json's text).
  static Status CreateSnpFiles(const std::string& dir, const SimVendorOptions& options, TimePoint now);
  Status LoadSnp(const std::string& secrets_text);
  std::string dir_;
  crypto::X509Ptr root_;
  std::unique_ptr<SimPlatform> platform_;
  std::unique_ptr<SimSnpPlatform> snp_;
  SimTee tee_ = SimTee::kSgx;
  SimTcb tcb_ = SimTcb::kUpToDate;
  bool revoked_ = false;
};

// AES-128-CMAC (NIST SP 800-38B) through OpenSSL EVP_MAC "CMAC": the MAC of sim SGX REPORTs.
// A TCB recovery, as Intel publishes one: rewrites DIR/tcbInfo.json (atomically) with the next
// TCB evaluation data number, issued now, every level OutOfDate; signed with the sim vendor's
// TCB signing key. Returns the new evaluation data number. Works for sgx and tdx folders (TDX:
// the verdict becomes OutOfDate); a sev-snp folder has no TCB Info ("wrong_sim_platform").
Result<int> SimTcbRecovery(const std::string& dir);

Result<std::array<uint8_t, 16>> SimAesCmac128(const crypto::SecretBytes& key, std::span<const uint8_t> data);

// The QE enclave identity the sim quoting enclave reports (and its QE Identity describes).
inline constexpr uint16_t kSimQeIsvProdId = 1;
inline constexpr uint16_t kSimQeIsvSvn = 8;
// The TD quoting enclave (TDX folders; its TD_QE identity).
inline constexpr uint16_t kSimTdQeIsvProdId = 2;
inline constexpr uint16_t kSimTdQeIsvSvn = 4;
// Stable reason of an operation the folder's platform does not support.
inline constexpr std::string_view kSimWrongPlatform = "wrong_sim_platform";

}  // namespace vouch::attest
