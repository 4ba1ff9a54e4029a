#include "attest/verdict.h"

namespace vouch::attest {

std::string_view PlatformName(Platform p) {
  switch (p) {
    case Platform::kSgx: return "sgx";
    case Platform::kTdx: return "tdx";
    case Platform::kSevSnp: return "sev-snp";
  }
  return "unknown";
}

nlohmann::json Verdict::ToJson() const {
  nlohmann::json j;
  j["platform"] = PlatformName(platform);
  j["genuine"] = genuine;
  j["tcb_status"] = tcb_status.empty() ? nlohmann::json(nullptr) : nlohmann::json(tcb_status);
  j["advisory_ids"] = advisory_ids;
  j["measurements"] = measurements;
  j["report_data"] = report_data_hex;
  j["insecure_sim"] = insecure_sim;
  if (!details.empty()) j["details"] = details;
  if (!genuine && error.has_value()) {
    j["error"] = {{"code", error->reason()}, {"message", error->message()}};
  }
  return j;
}

int Verdict::ExitCode() const {
  if (!genuine) return 2;
  static const char* kAcceptable[] = {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
                                      "ConfigurationAndSWHardeningNeeded"};
  for (const char* s : kAcceptable) {
    if (tcb_status == s) return 0;
  }
  return 1;
}

}  // namespace vouch::attest
