#pragma once

// "Is this verified evidence acceptable?" (docs/policy.md). The attest library answers "is it
// genuine, at what TCB level?"; these pure functions apply a zone's rules to that Verdict.
// No I/O, no clock, no shared state: thread-safe, never throw.
//
// Every rejection is a non-ok Status with StatusCode kPermissionDenied (kInvalidArgument for a
// malformed rule) and one of the stable reason codes below; the API maps them to HTTP.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "attest/verdict.h"
#include "base/result.h"
#include "base/status.h"
#include "policy/tcb_status.h"

namespace vouch::policy {

// Stable reason codes: the one set for every "is this evidence acceptable?" decision (node
// enrolment and renewal, workload issuance, cluster join; docs/policy.md). The API maps them all
// to 403.
inline constexpr std::string_view kNotGenuine = "evidence_not_genuine";
inline constexpr std::string_view kSimNotAllowed = "sim_not_allowed";
inline constexpr std::string_view kTcbTooOld = "tcb_too_old";
inline constexpr std::string_view kTcbRevoked = "tcb_revoked";
inline constexpr std::string_view kTcbNotSupported = "tcb_not_supported";
inline constexpr std::string_view kTcbUnknown = "tcb_unknown";
inline constexpr std::string_view kAdvisoryNotTolerated = "advisory_not_tolerated";
inline constexpr std::string_view kPlatformMismatch = "platform_mismatch";
inline constexpr std::string_view kMeasurementNotAllowed = "measurement_not_allowed";
inline constexpr std::string_view kMrsignerMismatch = "mrsigner_mismatch";
inline constexpr std::string_view kIsvprodidMismatch = "isvprodid_mismatch";
inline constexpr std::string_view kIsvsvnTooLow = "isvsvn_too_low";
inline constexpr std::string_view kRtmrMismatch = "rtmr_mismatch";
inline constexpr std::string_view kHostDataMismatch = "host_data_mismatch";
inline constexpr std::string_view kVmplMismatch = "vmpl_mismatch";
inline constexpr std::string_view kGuestSvnTooLow = "guest_svn_too_low";
inline constexpr std::string_view kReportedTcbTooLow = "reported_tcb_too_low";
inline constexpr std::string_view kDebugNotAllowed = "debug_not_allowed";
inline constexpr std::string_view kInvalidRule = "invalid_rule";
// The evidence's report data does not bind what the protocol says it must (key, nonce).
inline constexpr std::string_view kReportDataMismatch = "report_data_mismatch";
// Node agents: the evidence is not from an agent identity the zone accepts.
inline constexpr std::string_view kNodeIdentityNotAllowed = "node_identity_not_allowed";
// A node's recorded platform no longer meets its zone's rules (at a workload certificate request).
inline constexpr std::string_view kNodeTcbNotAcceptable = "node_tcb_not_acceptable";
// Workloads: the build whose measurement matched is not approved.
inline constexpr std::string_view kBuildPending = "build_pending";
inline constexpr std::string_view kBuildDenied = "build_denied";
inline constexpr std::string_view kBuildRevoked = "build_revoked";

// A zone's platform rules.
struct ZonePolicy {
  // The worst TCB status accepted outright.
  TcbStatus min_tcb = TcbStatus::kUpToDate;
  // Advisory ids (e.g. "INTEL-SA-00615") whose software mitigations the zone vouches for. When
  // every advisory of a SWHardeningNeeded / ConfigurationAndSWHardeningNeeded verdict is listed
  // here, the status counts as UpToDate / ConfigurationNeeded (docs/policy.md, "Advisories").
  std::vector<std::string> tolerated_advisories;
  bool allow_sim = false;
  bool allow_debug = false;
};

// SGX enclave identity. At least one of mrenclave / mrsigner must be set. Hex is
// case-insensitive (64 hex digits each).
struct SgxMeasurementRule {
  std::optional<std::string> mrenclave;
  std::optional<std::string> mrsigner;
  std::optional<uint16_t> isvprodid;
  std::optional<uint16_t> min_isvsvn;
};

// TDX TD identity: MRTD (96 hex digits) and optionally RTMR0..3.
struct TdxMeasurementRule {
  std::string mrtd;
  std::optional<std::string> rtmr[4];
};

// Minimum SNP reported_tcb components (each optional); fmc is Turin-only and a rule that
// sets it rejects reports without it.
struct SnpMinTcb {
  std::optional<uint8_t> bootloader;
  std::optional<uint8_t> tee;
  std::optional<uint8_t> snp;
  std::optional<uint8_t> microcode;
  std::optional<uint8_t> fmc;
};

// SEV-SNP launch identity: MEASUREMENT (96 hex digits), optional HOST_DATA (64), exact VMPL,
// minimum guest SVN and minimum reported_tcb.
struct SnpMeasurementRule {
  std::string measurement;
  std::optional<std::string> host_data;
  std::optional<uint32_t> vmpl;
  std::optional<uint32_t> min_guest_svn;
  SnpMinTcb min_reported_tcb;
};

struct MeasurementRule {
  std::variant<SgxMeasurementRule, TdxMeasurementRule, SnpMeasurementRule> rule;
  attest::Platform platform() const;
};

// Accept, or a reason. `effective_tcb` is the status the decision used (after tolerated
// advisories); `tolerated` lists the advisory ids that were needed to accept.
struct Decision {
  Status status;
  std::optional<TcbStatus> effective_tcb;
  std::vector<std::string> tolerated;

  bool accepted() const { return status.ok(); }
  static Decision Accept() { return Decision{}; }
  static Decision Reject(std::string_view reason, std::string message);
};

// Genuine; sim only when allowed; TCB acceptable under min_tcb and the advisory rule.
Decision EvaluatePlatform(const attest::Verdict& verdict, const ZonePolicy& zone);

// Genuine; same platform as the rule; debug refused unless the zone allows it; then the rule's
// identity checks. Does not judge the TCB status (EvaluatePlatform does).
Decision EvaluateMeasurement(const attest::Verdict& verdict, const MeasurementRule& rule, const ZonePolicy& zone);

// EvaluatePlatform, then EvaluateMeasurement: the first rejection wins.
Decision Evaluate(const attest::Verdict& verdict, const MeasurementRule& rule, const ZonePolicy& zone);

// The verdict's report data starts with `expected` (constant-time); else kReportDataMismatch.
Decision CheckReportData(const attest::Verdict& verdict, std::span<const uint8_t> expected);

// Evidence of an identity from a list (node agents, vouchd joining a cluster): EvaluatePlatform;
// then never debug, whatever zone.allow_debug (kDebugNotAllowed); then the first rule that
// accepts wins (EvaluateMeasurement); none: `none_reason` (kNodeIdentityNotAllowed for node
// agents, kMeasurementNotAllowed for cluster joins), the message naming the closest refusal.
Decision EvaluateIdentity(const attest::Verdict& verdict, const std::vector<MeasurementRule>& rules,
                          const ZonePolicy& zone, std::string_view none_reason);

// A node's standing at a later request: its recorded verdict under the zone's current rules
// (EvaluatePlatform); a refusal is kNodeTcbNotAcceptable with the underlying reason in the message.
Decision EvaluateNodeStanding(const attest::Verdict& recorded, const ZonePolicy& zone);

// A build a workload's measurement may match.
struct BuildRule {
  MeasurementRule rule;
  std::string status;  // "approved", "pending", "denied", "revoked"
  bool debug = false;  // the build was registered as a debug build
};
// A workload's verdict (its locally attested report) against the candidate builds of its zone:
// the first approved build whose rule accepts (debug aside) is chosen (`*chosen` its index);
// none matches: kMeasurementNotAllowed; only unapproved ones: kBuildPending / kBuildDenied /
// kBuildRevoked (of the first); a debug workload only when the zone and the build allow debug.
Decision EvaluateWorkload(const attest::Verdict& workload, const std::vector<BuildRule>& builds, const ZonePolicy& zone,
                          size_t* chosen);

// Node identity rules as JSON (API, store): {"platform":"sgx","mrenclave":...} or
// {"platform":"sgx","mrsigner":...,"isvprodid":N,"min_isvsvn":N}; {"platform":"tdx","mrtd":...,
// "rtmr0".."rtmr3"?}; {"platform":"sev-snp","measurement":...,"host_data"?}. Hex is lower-cased.
// InvalidArgument kInvalidRule for anything else (unknown keys included).
Result<MeasurementRule> ParseIdentityRule(const nlohmann::json& j);
nlohmann::json IdentityRuleJson(const MeasurementRule& rule);

}  // namespace vouch::policy
