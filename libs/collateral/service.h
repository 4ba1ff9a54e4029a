#pragma once

// The collateral service (issue 14, docs/collateral.md): the vendors' verification collateral —
// Intel PCS/PCCS (TCB Info for SGX and TDX per FMSPC, QE and TD_QE identity, PCK CRLs, the root CA
// CRL, each with its issuer chain) and AMD KDS (VCEK per product, chip and reported TCB; the
// ASK+ARK chain and the CRL per product) — kept in the store so every HA member shares one copy.
//
// Items reach the store from three places, and are VERIFIED before they are stored (signature,
// issuer chain to the pinned Intel SGX Root CA / a built-in AMD ARK, or — with allow_sim — to a sim
// root, then stored marked sim; for TCB Info and identities a tcbEvaluationDataNumber not lower
// than the one held for the same kind, key and root):
//   - fetched from ServiceOptions::pccs_url / kds_url on first need (a new FMSPC, CA type, chip +
//     TCB) and again before nextUpdate (RefreshDue, the background refresher);
//   - imported from folders (ImportDir / ImportFiles): the DCAP file names of
//     attest/dcap_collateral.h, the sim-vendor folders (sgx, tdx, sev-snp: cert_chain.pem,
//     vcek.der, crl.der), or a folder written by ExportDir (manifest.json).
// A bad answer is refused (returned as an error, counted in Stats, never stored); the last good
// copy stays in use. Expired but genuine items are stored too (state "expired") so that evidence
// can be verified `at` a past time. Several versions of an item are kept (newest first); the one
// used for a time `at` is the newest whose issue date is not after `at`.
//
// Fetch paths (PCS/PCCS API v4, docs/collateral.md; `{base}` = pccs_url without a trailing '/'):
//   {base}/sgx/certification/v4/tcb?fmspc=<12 hex>         header TCB-Info-Issuer-Chain
//   {base}/tdx/certification/v4/tcb?fmspc=<12 hex>         header TCB-Info-Issuer-Chain
//   {base}/sgx/certification/v4/qe/identity                header SGX-Enclave-Identity-Issuer-Chain
//   {base}/tdx/certification/v4/qe/identity                header SGX-Enclave-Identity-Issuer-Chain
//   {base}/sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der
//                                                          header SGX-PCK-CRL-Issuer-Chain
//   root CA CRL: https://certificates.trustedservices.intel.com/IntelSGXRootCA.der when base is
//   Intel's PCS (api.trustedservices.intel.com), else {base}/sgx/certification/v4/rootcacrl
//   (a PCCS; DER, PEM or hex accepted).
// KDS (`{kds}` = kds_url, e.g. https://kdsintf.amd.com):
//   {kds}/vcek/v1/{Milan|Genoa}/{hex of the 64-byte chip id}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
//   {kds}/vcek/v1/Turin/{hex of chip id[0..8)}?fmcSPL=&blSPL=&teeSPL=&snpSPL=&ucodeSPL=
//   {kds}/vcek/v1/{product}/cert_chain (PEM: ASK then ARK), {kds}/vcek/v1/{product}/crl (DER)
//   SPLs in decimal, two digits at least. At most one KDS request per kds_min_interval (a queue:
//   callers wait their turn); after a 429 or 5xx no request before Retry-After (seconds) or an
//   exponential back-off (10 s doubling, capped at 5 min).
// On a need (Ensure, Verify*, GetForServing), an item the source answered 404/410 for is not asked
// for again for 10 minutes, one whose fetch failed otherwise for a minute; RefreshDue asks again
// for a failed due item after an hour; RefreshOne always asks.
// HTTPS only, server certificate checked against ca_file (default: the system store).
//
// Thread safety: a Service is thread-safe; fetches of the same item are not coalesced across
// threads, but storing is idempotent. Blocking: calls that may fetch (Refresh*, Verify*,
// DcapVerifierFor, GetForServing with fetch) wait for the network (request_timeout per request).
// Never throws.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attest/verdict.h"
#include "base/clock.h"
#include "base/result.h"
#include "store/database.h"

namespace vouch::attest {
class DcapVerifier;
}

namespace vouch::collateral {

// ---- item kinds (Item::kind) and their keys (Item::key)
inline constexpr std::string_view kSgxTcbInfo = "sgx_tcb_info";      // key: FMSPC, 12 lower-case hex
inline constexpr std::string_view kTdxTcbInfo = "tdx_tcb_info";      // key: FMSPC
inline constexpr std::string_view kQeIdentity = "qe_identity";       // key: "QE"
inline constexpr std::string_view kTdQeIdentity = "td_qe_identity";  // key: "TD_QE"
inline constexpr std::string_view kPckCrl = "pck_crl";               // key: "processor" | "platform"
inline constexpr std::string_view kRootCaCrl = "root_ca_crl";        // key: "root"
inline constexpr std::string_view kAmdVcek = "amd_vcek";             // key: VcekKey(...)
inline constexpr std::string_view kAmdCertChain = "amd_cert_chain";  // key: product ("Milan", "Genoa", "Turin")
inline constexpr std::string_view kAmdCrl = "amd_crl";               // key: product
// All kinds, in listing order.
const std::vector<std::string_view>& Kinds();
bool IsKind(std::string_view kind);

// ---- Item::source
inline constexpr std::string_view kSourcePcs = "pcs";        // fetched from pccs_url
inline constexpr std::string_view kSourceKds = "kds";        // fetched from kds_url
inline constexpr std::string_view kSourceImport = "import";  // ImportDir / ImportFiles
// ---- Item::state (computed at the time of the call)
inline constexpr std::string_view kStateValid = "valid";
inline constexpr std::string_view kStateExpired = "expired";

// ---- refusal reasons of fetched / imported items (Outcome::reason, Status::reason(), the audit
// entry's outcome "denied:<reason>"). Stable snake_case.
inline constexpr std::string_view kFetchFailed = "collateral_fetch_failed";          // network, TLS, 5xx
inline constexpr std::string_view kNotFoundAtSource = "collateral_not_found";        // 404 (unknown FMSPC, chip)
inline constexpr std::string_view kRateLimited = "collateral_rate_limited";          // 429 / back-off in force
inline constexpr std::string_view kNoSource = "collateral_no_source";                // no pccs_url / kds_url
inline constexpr std::string_view kBadSignature = "collateral_bad_signature";        // signature does not verify
inline constexpr std::string_view kBadIssuerChain = "collateral_bad_issuer_chain";   // chain missing/untrusted
inline constexpr std::string_view kMalformed = "collateral_malformed";               // unparsable body
inline constexpr std::string_view kEvaluationRollback = "collateral_evaluation_rollback";  // lower tcbEvaluationDataNumber
inline constexpr std::string_view kSimNotAllowed = "collateral_sim_not_allowed";     // sim root, allow_sim off
inline constexpr std::string_view kWrongItem = "collateral_wrong_item";              // e.g. TCB Info of another FMSPC
// ---- reasons of bad requests to the service (InvalidArgument)
inline constexpr std::string_view kInvalidKind = "invalid_kind";  // not one of the kinds above
inline constexpr std::string_view kInvalidKey = "invalid_key";    // key malformed for its kind
inline constexpr std::string_view kInvalidCollateralSource =
    "invalid_collateral_source";  // pccs_url / kds_url
inline constexpr std::string_view kCollateralDirUnwritable = "collateral_dir_unwritable";
inline constexpr std::string_view kPlatformMismatch = "platform_mismatch";  // same text as policy's

// "{product}/{hwid hex}/{reported TCB as 16 hex digits}" (hwid: 64 bytes, Turin: the first 8).
std::string VcekKey(std::string_view product, std::span<const uint8_t> hwid, uint64_t reported_tcb);

// One stored item (one version of it).
struct Item {
  std::string id;        // stable id of this version
  std::string kind;      // k* above
  std::string key;       // see the kinds
  std::string root;      // "intel", "amd" or "sim:<16 hex of SHA-256(root DER)>"
  bool sim = false;      // chains to a sim root (trusted only where sim is allowed)
  TimePoint issue_date;  // TCB Info/identity issueDate, CRL thisUpdate, certificate notBefore
  TimePoint next_update; // nextUpdate; certificates: notAfter
  std::optional<int64_t> tcb_evaluation_data_number;  // TCB Info and identities
  std::string source;    // kSource*
  std::string origin;    // the URL or the folder it came from
  std::string state;     // kStateValid / kStateExpired (at the time of the call)
  TimePoint stored_at;
  std::string sha256;    // of body (hex)
  bool current = false;  // the newest version of (kind, key, root)
};

// An item with its bytes, as the vendor served them (for the PCCS routes and export).
struct RawItem {
  Item item;
  std::string body;               // TCB Info / identity JSON text; CRL DER; VCEK DER; cert_chain PEM
  std::string issuer_chain_pem;   // the issuer chain header, URL-decoded (PEM, signer first, root last)
  std::string content_type;       // as a PCCS serves it: application/json, application/pkix-crl, ...
};

struct ListFilter {
  std::string kind;          // "": all
  std::string key;           // "": all
  bool all_versions = false; // false: only the current version of each (kind, key, root)
};

// What a refresh or an import did, item by item.
struct Outcome {
  std::string kind, key;
  std::string origin;  // URL or file
  // "stored" (a new version), "unchanged" (same bytes as held), "refused" (verification failed:
  // the last good copy stays), "failed" (the source did not answer usefully).
  std::string result;
  std::string reason;   // for refused/failed: one of the reasons above
  std::string message;
};
struct Report {
  std::vector<Outcome> outcomes;
  int stored = 0, unchanged = 0, refused = 0, failed = 0;
};

struct ServiceOptions {
  // Intel PCS (https://api.trustedservices.intel.com) or a PCCS (https://host:8081); "": no fetching.
  std::string pccs_url;
  // AMD KDS (https://kdsintf.amd.com); "": no fetching.
  std::string kds_url;
  // PEM file of the TLS roots trusted for pccs_url and kds_url; "": the system store.
  std::string ca_file;
  // Items are fetched again this long before their nextUpdate.
  std::chrono::seconds refresh_margin{std::chrono::hours(24)};
  // Accept collateral chaining to a sim root (stored marked sim; verdicts insecure_sim).
  bool allow_sim = true;
  // KDS pacing: at most one request per this interval.
  std::chrono::milliseconds kds_min_interval{10000};
  std::chrono::milliseconds request_timeout{30000};
  // "standard" or "early" (TCB Info and identities).
  std::string tcb_update = "standard";
  // Versions kept per (kind, key, root), newest first (at least 1).
  int keep_versions = 8;
  // Called (on the caller's thread) for every refused item — a bad signature, a wrong chain, an
  // evaluation rollback — whatever asked for it (a node's need, a PCCS route, an API refresh, the
  // refresher, an import), after its audit entry: vouchd logs it. May be empty.
  std::function<void(const Outcome&, std::string_view source)> on_refused;
};

// Counters for /metrics (since start of this process).
struct Stats {
  // (source "pcs"|"kds"|"import", kind) -> count of failed or refused fetches/imports.
  std::map<std::pair<std::string, std::string>, int64_t> failures;
  int64_t fetches = 0;  // requests sent
};

class Service {
 public:
  // `db` (migrated to schema 4) and `clock` are borrowed and must outlive the service.
  static Result<std::unique_ptr<Service>> Create(store::Database* db, const Clock* clock, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const ServiceOptions& options() const;
  bool has_intel_source() const;
  bool has_amd_source() const;

  // ---- read side
  Result<std::vector<Item>> List(const ListFilter& filter = {});
  // The current version of (kind, key) for serving PCCS routes: a non-sim item first, else a sim
  // one; with `fetch`, a missing item is fetched first (when a source is configured).
  // NotFound "collateral_not_found" when there is none.
  Result<RawItem> GetForServing(std::string_view kind, std::string_view key, bool fetch = true);
  // One version by Item::id.
  Result<RawItem> GetById(std::string_view id);

  // ---- refresh
  // Fetches again every item held (its current version) whose nextUpdate minus refresh_margin is
  // past (or every item, when `force`). Items from imports are refreshed from the sources when
  // one is configured for their vendor.
  Report RefreshDue(bool force = false);
  // Fetches one item now (kind and key as above) and stores it if it verifies.
  Outcome RefreshOne(std::string_view kind, std::string_view key);
  // Ensures an item is held, fetching it when missing (first need).
  Outcome Ensure(std::string_view kind, std::string_view key);

  // ---- import / export (air-gapped sites; `--collateral DIR`)
  // `files`: file name -> bytes of one folder (see the header comment for the names).
  Report ImportFiles(const std::map<std::string, std::string>& files, const std::string& origin);
  Report ImportDir(const std::string& dir);
  // Every stored version: file name -> bytes, with manifest.json describing them (ImportFiles
  // reads it back).
  Result<std::map<std::string, std::string>> ExportFiles();
  Status ExportDir(const std::string& dir);

  // ---- verification
  // A DCAP verifier (SGX quote v3 / TDX quote v4, v5) with the collateral for this quote's FMSPC,
  // PCK CA type and root, valid at `at`; missing items are fetched (first need). With the source
  // down, what is held is used. NotFound "collateral_not_found" when nothing usable is held.
  Result<std::unique_ptr<attest::DcapVerifier>> DcapVerifierFor(std::span<const uint8_t> quote, TimePoint at);
  // Verifies evidence of `platform` ("sgx", "tdx", "sev-snp"; "" = detect from the bytes) at `at`
  // with collateral from this service. SEV-SNP evidence is the 1184-byte report optionally
  // followed by the GHCB certificate table (team contract): the VCEK/ASK/ARK from the table are
  // used first, else the stored/fetched VCEK and chain; the product's AMD CRL is checked for the
  // ASK and the VCEK (fetched when missing). A sim ARK / sim root is accepted only with
  // `allow_sim` (verdict insecure_sim). Never fails: problems are a non-genuine verdict.
  attest::Verdict Verify(std::span<const uint8_t> evidence, std::string_view platform, TimePoint at,
                         bool allow_sim = true);

  // Seconds of validity left per current item (negative: expired), for the gauge
  // vouch_collateral_remaining_seconds{kind,key,root}.
  std::vector<std::pair<Item, double>> RemainingValidity();
  Stats GetStats() const;

  struct Impl;

 private:
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Detects the platform of evidence bytes: "sgx" (quote v3), "tdx" (quote v4/v5 with TEE type
// 0x81), "sev-snp" (a report of 1184 bytes or more with version 2..5), or "" when unknown.
std::string DetectPlatform(std::span<const uint8_t> evidence);

}  // namespace vouch::collateral
