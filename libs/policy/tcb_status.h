#pragma once

// TCB status names of Intel's Quote Verification Library (ATTESTATION-FORMATS.md §5) as one
// enum with a strict "how good is it" order. Pure; thread-safe.

#include <array>
#include <string_view>

#include "base/result.h"

namespace vouch::policy {

// Declared best first; the numeric order IS the ranking (see TcbRank).
enum class TcbStatus {
  kUpToDate = 0,
  kSWHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSWHardeningNeeded,
  // TDX: the platform is current but the TD should be relaunched to pick up a newer TDX module;
  // better than any OutOfDate level, worse than every level that needs no action on the TD.
  kTDRelaunchAdvised,
  kTDRelaunchAdvisedConfigurationNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  // Never acceptable, whatever a zone's minimum.
  kRevoked,
  kTcbLevelNotSupported,
};

// The QVL / PCS spelling: "UpToDate", "SWHardeningNeeded", ..., "TcbLevelNotSupported".
std::string_view TcbStatusName(TcbStatus status);
// Exact, case-sensitive QVL names; InvalidArgument kInvalidTcbStatus otherwise.
inline constexpr std::string_view kInvalidTcbStatus = "invalid_tcb_status";
Result<TcbStatus> ParseTcbStatus(std::string_view name);

// 0 for UpToDate, growing as the status gets worse.
inline int TcbRank(TcbStatus s) { return static_cast<int>(s); }
// True when `status` is as good as or better than `minimum`.
inline bool TcbAtLeast(TcbStatus status, TcbStatus minimum) { return TcbRank(status) <= TcbRank(minimum); }
// Revoked and TcbLevelNotSupported.
inline bool TcbNeverAcceptable(TcbStatus s) {
  return s == TcbStatus::kRevoked || s == TcbStatus::kTcbLevelNotSupported;
}
// The statuses a zone may name as its minimum (`min_tcb`, docs/api.md), best first. The one list:
// the API validates against it, and a test checks the OpenAPI enum and the console's list
// (ui/views.js) against it (libs/api/tcb_list_test.cc).
inline constexpr std::array<TcbStatus, 6> kZoneMinimumTcbStatuses = {
    TcbStatus::kUpToDate,  TcbStatus::kSWHardeningNeeded, TcbStatus::kConfigurationNeeded,
    TcbStatus::kConfigurationAndSWHardeningNeeded, TcbStatus::kOutOfDate, TcbStatus::kOutOfDateConfigurationNeeded};
// True when `name` is the QVL name of one of kZoneMinimumTcbStatuses.
inline bool IsZoneMinimumTcbName(std::string_view name) {
  auto status = ParseTcbStatus(name);
  if (!status.ok()) return false;
  for (TcbStatus s : kZoneMinimumTcbStatuses) {
    if (s == *status) return true;
  }
  return false;
}

// The status with its "SWHardeningNeeded" part taken away (what it counts as once every advisory
// is tolerated): SWHardeningNeeded -> UpToDate, ConfigurationAndSWHardeningNeeded ->
// ConfigurationNeeded; other statuses are returned unchanged.
TcbStatus WithoutSwHardening(TcbStatus s);

}  // namespace vouch::policy
