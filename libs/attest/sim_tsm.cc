#include "attest/sim_tsm.h"

#include <string>

#include "attest/sim_agent.h"

namespace vouch::attest {

std::string_view SimTsmProvider(const SimVendor& vendor) {
  switch (vendor.tee()) {
    case SimTee::kTdx: return "tdx_guest";
    case SimTee::kSevSnp: return "sev_guest";
    case SimTee::kSgx: break;
  }
  return "";
}

Result<TsmBlobs> SimTsmReport(const SimVendor& vendor, std::span<const uint8_t, 64> inblob, uint32_t privlevel) {
  TsmBlobs out;
  const SimAgentIdentity& agent = ShippedSimAgent();
  switch (vendor.tee()) {
    case SimTee::kTdx: {
      SimTdxQuoteOptions o;
      o.version = 4;
      o.mr_td = agent.tdx_mrtd;
      o.rtmr = agent.tdx_rtmr;
      VOUCH_ASSIGN_OR_RETURN(out.outblob, vendor.platform().TdxQuote(o, inblob));
      return out;
    }
    case SimTee::kSevSnp: {
      if (privlevel > 3) {
        return InvalidArgument("privlevel " + std::to_string(privlevel) + " is out of range 0..3", "invalid_privlevel");
      }
      SimSnpReportOptions o;
      o.measurement = agent.snp_measurement;
      o.vmpl = privlevel;
      VOUCH_ASSIGN_OR_RETURN(out.outblob, vendor.snp()->Report(o, inblob));
      out.auxblob = vendor.snp()->cert_table();
      return out;
    }
    case SimTee::kSgx: break;
  }
  return Status(StatusCode::kFailedPrecondition,
                vendor.dir() + " is an sgx sim folder: configfs-tsm needs a tdx or sev-snp one", std::string(kSimWrongPlatform));
}

}  // namespace vouch::attest
