#pragma once

// "Is this verified evidence acceptable?" (docs/policy.md). The attest library answers "is it
// genuine, at what TCB level?"; these pure functions apply a zone's rules to that Verdict.
// No I/O, no clock, no shared state: thread-safe, never throw.
//
// Every rejection is a non-ok Status with StatusCode kPermissionDenied (kInvalidArgument for a
// malformed rule) and one of the stable reason codes below; the API maps them to HTTP.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "attest/verdict.h"
#include "base/status.h"
#include "policy/tcb_status.h"

namespace vouch::policy {

// Stable reason codes.
inline constexpr std::string_view kNotGenuine = "not_genuine";
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

}  // namespace vouch::policy
