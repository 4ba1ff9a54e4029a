#pragma once

// Intel SGX DCAP (quote v3) and TDX (quote v4/v5) verification, following Intel QVL's four
// steps in order (ATTESTATION-FORMATS.md §5):
//   1. PCK certificate chain (3 certificates, trusted root, CRL signatures, revocation, expiry)
//   2. TCB Info (TCB Signing chain, signature over the served bytes, expiry)
//   3. QE / TD-QE Identity (same)
//   4. the quote: TCB Info <-> TEE type / FMSPC / PCE-ID, TDX module identity, QE report
//      signature (PCK key), QE report data binding, QE identity, quote signature (attestation
//      key), TCB level matching and convergence with the QE and TDX module TCB status.
// The same code path serves real evidence and the sim TEE (sim_vendor.h); only the trust anchor
// differs.
//
// Trust: the anchor is the compiled-in Intel SGX Root CA (pinned by DER) unless the caller
// passes an explicit root; a sim root (sim_vendor.h) is used only with allow_sim, and then every
// verdict carries insecure_sim = true. A collateral folder's trustedRootCaCert.pem is never
// trusted on its own.
//
// Time is always a parameter: certificates, CRLs, TCB Info and QE Identity are checked at `at`.
//
// Failure behaviour: never throws. A failing check yields Verdict{genuine = false} whose
// error->reason() is one of the codes below. A missing piece of collateral does not stop the
// checks that can still run: the verdict is then not genuine with "missing_collateral",
// details.missing_collateral lists what was missing, and details.tcb_status_partial gives the
// TCB status computed without the missing parts (if TCB Info was present).
//
// Thread safety: a DcapVerifier is immutable after Create apart from an internal, mutex-guarded
// cache of verified PCK chains; Verify may be called concurrently. Collateral signatures and
// chains are checked once at Create, so verifying many quotes against the same collateral only
// repeats each quote's own checks (parse, two ECDSA verifies, hashing, TCB matching).

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "attest/dcap_collateral.h"
#include "attest/verdict.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::attest {

// Stable error codes (Verdict::error->reason()).
inline constexpr std::string_view kDcapMalformedQuote = "malformed_quote";
inline constexpr std::string_view kDcapUnsupportedQuoteFormat = "unsupported_quote_format";
inline constexpr std::string_view kDcapMissingCollateral = "missing_collateral";
inline constexpr std::string_view kDcapMalformedCollateral = "malformed_collateral";
inline constexpr std::string_view kDcapMalformedPckChain = "malformed_pck_chain";
inline constexpr std::string_view kDcapMalformedPckExtension = "malformed_pck_extension";
inline constexpr std::string_view kDcapChainUntrusted = "chain_untrusted";
inline constexpr std::string_view kDcapInvalidCertSignature = "invalid_certificate_signature";
inline constexpr std::string_view kDcapInvalidCollateralSignature = "invalid_collateral_signature";
inline constexpr std::string_view kDcapCrlMismatch = "crl_mismatch";
inline constexpr std::string_view kDcapPckRevoked = "pck_revoked";
inline constexpr std::string_view kDcapCertRevoked = "cert_revoked";
inline constexpr std::string_view kDcapCollateralExpired = "collateral_expired";
inline constexpr std::string_view kDcapCrlExpired = "crl_expired";
inline constexpr std::string_view kDcapTcbInfoMismatch = "tcb_info_mismatch";
inline constexpr std::string_view kDcapTdxModuleMismatch = "tdx_module_mismatch";
inline constexpr std::string_view kDcapInvalidQeReportSignature = "invalid_qe_report_signature";
inline constexpr std::string_view kDcapInvalidQeReportData = "invalid_qe_report_data";
inline constexpr std::string_view kDcapQeIdentityMismatch = "qe_identity_mismatch";
inline constexpr std::string_view kDcapInvalidQuoteSignature = "invalid_quote_signature";
inline constexpr std::string_view kDcapInvalidAttestationKey = "invalid_attestation_key";
inline constexpr std::string_view kDcapSimNotAllowed = "sim_not_allowed";

struct DcapTrustOptions {
  // An explicit trust anchor (borrowed; the verifier takes its own reference). Null: the Intel
  // SGX Root CA, or — only with allow_sim — the sim root of the collateral folder.
  X509* trust_root = nullptr;
  // Accept a sim root (sim_vendor.h). Verdicts are then marked insecure_sim.
  bool allow_sim = false;
};

class DcapVerifier {
 public:
  static Result<std::unique_ptr<DcapVerifier>> Create(std::shared_ptr<const DcapCollateral> collateral,
                                                      const DcapTrustOptions& trust = {});
  ~DcapVerifier();
  DcapVerifier(const DcapVerifier&) = delete;
  DcapVerifier& operator=(const DcapVerifier&) = delete;

  Verdict Verify(std::span<const uint8_t> quote, TimePoint at) const;

  // The time-independent state of the collateral this verifier was made from: ok when the trust
  // root is usable and the root CA CRL, TCB Info and QE Identity are present and signed by it;
  // otherwise the first problem, with the code a verdict would carry. A running manager uses it
  // to refuse replacing good collateral with a broken copy.
  Status CollateralStatus() const;
  // When the first piece of this collateral stops being usable: the earliest of the TCB Info's
  // and QE Identity's nextUpdate, the root CA and PCK CRLs' nextUpdate and the TCB signing
  // chain's notAfter. Past it, evidence is refused (collateral_expired / crl_expired) until new
  // collateral is loaded. TimePoint::max() if none of them is present.
  TimePoint CollateralValidUntil() const;

  struct Impl;

 private:
  explicit DcapVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One-shot convenience: loads `collateral_dir` (if any) and verifies. Without a folder only the
// quote's own chain and signatures can be checked (not genuine, "missing_collateral").
Verdict VerifyDcapQuote(std::span<const uint8_t> quote, const std::optional<std::string>& collateral_dir,
                        TimePoint at, const DcapTrustOptions& trust = {});

// QVL's status convergence: `tcb` lowered by a QE-identity or TDX-module status `other`
// ("UpToDate", "OutOfDate", "Revoked", "TcbLevelNotSupported").
std::string ConvergeTcbStatus(const std::string& tcb, const std::string& other);

}  // namespace vouch::attest
