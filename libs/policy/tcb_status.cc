#include "policy/tcb_status.h"

#include <string>

namespace vouch::policy {
namespace {

constexpr TcbStatus kAll[] = {
    TcbStatus::kUpToDate,
    TcbStatus::kSWHardeningNeeded,
    TcbStatus::kConfigurationNeeded,
    TcbStatus::kConfigurationAndSWHardeningNeeded,
    TcbStatus::kTDRelaunchAdvised,
    TcbStatus::kTDRelaunchAdvisedConfigurationNeeded,
    TcbStatus::kOutOfDate,
    TcbStatus::kOutOfDateConfigurationNeeded,
    TcbStatus::kRevoked,
    TcbStatus::kTcbLevelNotSupported,
};

}  // namespace

std::string_view TcbStatusName(TcbStatus status) {
  switch (status) {
    case TcbStatus::kUpToDate: return "UpToDate";
    case TcbStatus::kSWHardeningNeeded: return "SWHardeningNeeded";
    case TcbStatus::kConfigurationNeeded: return "ConfigurationNeeded";
    case TcbStatus::kConfigurationAndSWHardeningNeeded: return "ConfigurationAndSWHardeningNeeded";
    case TcbStatus::kTDRelaunchAdvised: return "TDRelaunchAdvised";
    case TcbStatus::kTDRelaunchAdvisedConfigurationNeeded: return "TDRelaunchAdvisedConfigurationNeeded";
    case TcbStatus::kOutOfDate: return "OutOfDate";
    case TcbStatus::kOutOfDateConfigurationNeeded: return "OutOfDateConfigurationNeeded";
    case TcbStatus::kRevoked: return "Revoked";
    case TcbStatus::kTcbLevelNotSupported: return "TcbLevelNotSupported";
  }
  return "TcbLevelNotSupported";
}

Result<TcbStatus> ParseTcbStatus(std::string_view name) {
  for (TcbStatus s : kAll) {
    if (TcbStatusName(s) == name) return s;
  }
  return InvalidArgument(
      "unknown TCB status '" + std::string(name) +
          "', expected one of UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
          "ConfigurationAndSWHardeningNeeded, TDRelaunchAdvised, "
          "TDRelaunchAdvisedConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded, "
          "Revoked, TcbLevelNotSupported",
      std::string(kInvalidTcbStatus));
}

TcbStatus WithoutSwHardening(TcbStatus s) {
  if (s == TcbStatus::kSWHardeningNeeded) return TcbStatus::kUpToDate;
  if (s == TcbStatus::kConfigurationAndSWHardeningNeeded) return TcbStatus::kConfigurationNeeded;
  return s;
}

}  // namespace vouch::policy
