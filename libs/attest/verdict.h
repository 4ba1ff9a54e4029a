#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace vouch::attest {

enum class Platform { kSgx, kTdx, kSevSnp };
std::string_view PlatformName(Platform p);  // "sgx", "tdx", "sev-snp"

// The outcome of verifying one piece of evidence: "is it genuine, and what TCB level does it
// have?". Acceptability under a zone's rules is the policy library's job, not this one's.
struct Verdict {
  Platform platform = Platform::kSgx;
  bool genuine = false;
  // QVL status names: "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
  // "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded",
  // "Revoked", "TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded", "TcbLevelNotSupported".
  // Empty when not genuine or not determined.
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
  // Platform-specific measurements, exactly the keys of INTERFACES.md
  // (sgx: mrenclave, mrsigner, isvprodid, isvsvn, ...; tdx: mrtd, rtmr0..3, ...; sev-snp: measurement, ...).
  nlohmann::json measurements = nlohmann::json::object();
  std::string report_data_hex;
  bool insecure_sim = false;
  // Extra facts a caller may record (fmspc, pce id, chip id, debug flag, ...).
  nlohmann::json details = nlohmann::json::object();
  // Set when genuine == false: code is a stable snake_case string (e.g. "invalid_quote_signature").
  std::optional<Status> error;

  // The JSON of `vouch evidence verify -o json` (INTERFACES.md).
  nlohmann::json ToJson() const;
  // 0: genuine and acceptable TCB; 1: genuine but OutOfDate/Revoked/not supported; 2: not genuine.
  int ExitCode() const;
};

}  // namespace vouch::attest
