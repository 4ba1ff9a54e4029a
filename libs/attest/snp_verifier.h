#pragma once

// AMD SEV-SNP attestation report verification (ATTESTATION-FORMATS.md §6).
//
// Answers "is this report genuine, signed by a VCEK/VLEK that chains to a pinned AMD root,
// and does the key's TCB match the report?". Whether the measurements and TCB are
// acceptable is the policy library's job (docs/policy.md).
//
// SNP has no Intel-style TCB Info collateral: AMD signs a VCEK per (chip, reported_tcb), so a
// genuine report's tcb_status is always "UpToDate" and a zone that wants a minimum TCB states it
// as minimum reported_tcb components in its MeasurementRule (policy/).
//
// Failure behaviour: never throws; a non-genuine Verdict carries error->reason() from the
// stable set below. Thread-safe: no shared mutable state (the built-in roots are parsed
// once, thread-safely).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attest/amd_roots.h"
#include "attest/verdict.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::attest {

// Stable error codes of a non-genuine SNP verdict (Verdict::error->reason()).
inline constexpr std::string_view kSnpMalformedReport = "snp_malformed_report";
inline constexpr std::string_view kSnpMissingCollateral = "snp_missing_collateral";
inline constexpr std::string_view kSnpMalformedCertificate = "snp_malformed_certificate";
inline constexpr std::string_view kSnpChainUntrusted = "snp_chain_untrusted";
inline constexpr std::string_view kSnpCertExpired = "snp_cert_expired";
inline constexpr std::string_view kSnpInvalidSignature = "snp_invalid_signature";
inline constexpr std::string_view kSnpTcbMismatch = "snp_tcb_mismatch";
inline constexpr std::string_view kSnpHwidMismatch = "snp_hwid_mismatch";
inline constexpr std::string_view kSnpSigningKeyMismatch = "snp_signing_key_mismatch";
inline constexpr std::string_view kSnpUnsupportedAlgo = "snp_unsupported_algo";
inline constexpr std::string_view kSnpProductMismatch = "snp_product_mismatch";
// VerifySnpEvidence (issue 14):
inline constexpr std::string_view kSnpMalformedCertTable = "snp_malformed_cert_table";  // details.parse_error
inline constexpr std::string_view kSnpSimNotAllowed = "snp_sim_not_allowed";  // a sim ARK without allow_sim
inline constexpr std::string_view kSnpCertRevoked = "snp_cert_revoked";        // ASK or VCEK/VLEK listed in the ARK's CRL
inline constexpr std::string_view kSnpCrlInvalid = "snp_crl_invalid";          // CRL unparsable, not the ARK's, or badly signed
inline constexpr std::string_view kSnpCrlExpired = "snp_crl_expired";          // CRL nextUpdate before `at`

// Verifies one SNP report (the raw 1184 bytes).
//  - collateral_dir: a folder holding the VCEK or VLEK (DER, *.der / *.cer / *.crt) and
//    optionally the AMD chain (PEM bundles of ASK/ASVK + ARK). Without it, the verdict is
//    not genuine with kSnpMissingCollateral: vouch does not fetch from AMD KDS itself.
//    Files are recognised by content, not name: EC P-384 certificates are VCEK/VLEK
//    candidates, self-signed RSA ones ARK candidates, other RSA ones ASK/ASVK candidates
//    (files that are not certificates are ignored). With several leaves (e.g. the trustee
//    test folder: a VCEK, a VLEK and two invalid VCEKs) each is tried, best fit first (hwID ==
//    chip_id, SPLs == reported_tcb, kind == signing_key); the first genuine verdict wins,
//    else the best-fitting failure of a leaf whose AMD chain held, else the best-fitting
//    failure. details.certificate_file names the leaf used.
//  - at: the verification time (certificate validity is checked at this instant).
// The ARK must equal (DER) one of the built-in AMD roots (amd_roots.h); ASK/ASVK missing from
// the folder are taken from the built-in set.
vouch::attest::Verdict VerifySnpReport(std::span<const uint8_t> report,
                                       const std::optional<std::string>& collateral_dir,
                                       vouch::TimePoint at);

// ---- SEV-SNP evidence blobs (report ‖ certificate table) -----------------------------------

// Trust for VerifySnpEvidence.
struct SnpTrustOptions {
  // Accept an INSECURE sim ARK (self-signed, subject CN starting "vouch INSECURE SIM":
  // sim_vendor.h); the verdict is then marked insecure_sim. Without it such evidence is refused
  // with kSnpSimNotAllowed. Real ARKs must always equal (DER) a built-in AMD root.
  bool allow_sim = false;
};

// Certificates and the CRL known besides those in the evidence (a collateral cache, a folder).
struct SnpCollateral {
  // Each entry DER or PEM (a PEM may hold several, e.g. KDS cert_chain: ASK then ARK). Entries
  // that are not certificates are ignored (counted in details.ignored_certificates).
  std::vector<std::vector<uint8_t>> certs;
  // The ARK's CRL (KDS /vcek/v1/{product}/crl), DER or PEM; empty: no revocation check.
  std::vector<uint8_t> crl;
};

// Verifies SEV-SNP evidence as vouch carries it: the 1184-byte report followed by the optional
// GHCB certificate table (evidence/snp_cert_table.h). Certificates from the table are tried
// first, then those of `collateral`, then the built-in ASK/ASVK and ARKs; with several leaves
// the best fit is tried first (as VerifySnpReport). Checks are VerifySnpReportWithCerts's, plus:
//  - the ARK: a built-in AMD root (by DER), or — only with trust.allow_sim — a sim ARK
//    (verdict insecure_sim; details.trust_root "sim"); a sim ARK without it: kSnpSimNotAllowed;
//  - with collateral.crl: the CRL must be issued and signed by the chain's ARK
//    (kSnpCrlInvalid), its nextUpdate not before `at` (kSnpCrlExpired), and list neither the
//    ASK/ASVK nor the leaf serial (kSnpCertRevoked).
// A blob shorter than 1184 bytes: kSnpMalformedReport; a malformed table:
// kSnpMalformedCertTable. details.certificate_source is "cert_table" or "collateral".
vouch::attest::Verdict VerifySnpEvidence(std::span<const uint8_t> evidence, const SnpCollateral& collateral,
                                         vouch::TimePoint at, const SnpTrustOptions& trust = {});

// Reads a folder into SnpCollateral: every *.der, *.cer, *.crt, *.pem file as a certificate
// candidate, except crl.der / crl.pem, which is the CRL (a sev-snp sim folder, a KDS download).
// Fails only when the folder cannot be read ("collateral_dir_unreadable").
Result<SnpCollateral> LoadSnpCollateralDir(const std::string& dir);

// ---- Lower-level API ---------------------------------------------------------------------

// Certificates for one report. `leaf` is the VCEK or VLEK. `ask` is the ASK (VCEK) or ASVK
// (VLEK); `ark` the AMD root. Null ask/ark mean "use the built-in one for the product".
// Owns its certificates.
struct SnpCertChain {
  crypto::X509Ptr leaf;
  crypto::X509Ptr ask;
  crypto::X509Ptr ark;
};

// Verifies `report` against already-loaded certificates. Borrowed pointers; `leaf` required,
// `ask`/`ark` may be null (built-in). Same checks and error codes as VerifySnpReport.
vouch::attest::Verdict VerifySnpReportWithCerts(std::span<const uint8_t> report, X509* leaf, X509* ask,
                                                X509* ark, vouch::TimePoint at);

// As VerifySnpReportWithCerts, but trusting `roots` instead of the built-in AMD roots (an AMD
// root rotation configured by an operator; tests with their own chain). Null `ask`/`ark` are
// resolved from `roots` by signature. `roots` entries need ark, ask and asvk.
vouch::attest::Verdict VerifySnpReportWithRoots(std::span<const uint8_t> report, X509* leaf, X509* ask, X509* ark,
                                                vouch::TimePoint at, std::span<const AmdRootSet> roots);

// Loads a leaf certificate (DER or PEM) and an optional chain file (PEM bundle holding the
// ASK/ASVK and/or ARK, in any order; the right intermediate is chosen by the leaf's issuer
// signature, never by name) from explicit paths.
Result<SnpCertChain> LoadSnpCertChainFiles(const std::string& leaf_path,
                                           const std::optional<std::string>& chain_pem_path);

// Verifies `report` against certificates read from explicit file paths.
vouch::attest::Verdict VerifySnpReportWithFiles(std::span<const uint8_t> report, const std::string& leaf_path,
                                                const std::optional<std::string>& chain_pem_path,
                                                vouch::TimePoint at);

}  // namespace vouch::attest
