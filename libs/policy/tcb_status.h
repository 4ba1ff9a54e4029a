#pragma once

// TCB status names of Intel's Quote Verification Library (ATTESTATION-FORMATS.md §5) as one
// enum with a strict "how good is it" order. Pure; thread-safe.

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
// Exact, case-sensitive QVL names; "invalid_tcb_status" otherwise.
Result<TcbStatus> ParseTcbStatus(std::string_view name);

// 0 for UpToDate, growing as the status gets worse.
inline int TcbRank(TcbStatus s) { return static_cast<int>(s); }
// True when `status` is as good as or better than `minimum`.
inline bool TcbAtLeast(TcbStatus status, TcbStatus minimum) { return TcbRank(status) <= TcbRank(minimum); }
// Revoked and TcbLevelNotSupported.
inline bool TcbNeverAcceptable(TcbStatus s) {
  return s == TcbStatus::kRevoked || s == TcbStatus::kTcbLevelNotSupported;
}
// The status with its "SWHardeningNeeded" part taken away (what it counts as once every advisory
// is tolerated): SWHardeningNeeded -> UpToDate, ConfigurationAndSWHardeningNeeded ->
// ConfigurationNeeded; other statuses are returned unchanged.
TcbStatus WithoutSwHardening(TcbStatus s);

}  // namespace vouch::policy
