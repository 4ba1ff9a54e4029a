#pragma once

// The INSECURE sim's answer to a Linux configfs-tsm report request (TEE-SERVICES.md §3): what
// the kernel's tdx_guest / sev_guest provider would put in outblob and auxblob, produced by a
// tdx or sev-snp sim folder (sim_vendor.h) for the shipped sim agent (sim_agent.h). Used by the
// emulated configfs-tsm (`vouch sim tsm`, libs/tsm) and by tests. docs/sim.md.
//
// Stateless functions over an immutable SimVendor: thread-safe; never throw.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "attest/sim_vendor.h"
#include "base/result.h"

namespace vouch::attest {

// The blobs of one configfs-tsm report.
struct TsmBlobs {
  std::vector<uint8_t> outblob;
  std::vector<uint8_t> auxblob;  // empty: the provider gives none
};

// The configfs-tsm `provider` the folder emulates: "tdx_guest" (tdx), "sev_guest" (sev-snp),
// "" (sgx: no configfs-tsm provider).
std::string_view SimTsmProvider(const SimVendor& vendor);

// The report for `inblob` (exactly 64 bytes, the kernel's rule for both providers):
//  - tdx: outblob = a TDX quote v4 whose REPORTDATA is inblob, MRTD the shipped sim agent's,
//    RTMRs zero, not debug; auxblob empty (tdx_guest has none). privlevel is ignored (tdx_guest
//    does not show the attribute).
//  - sev-snp: outblob = the 1184-byte report with REPORT_DATA = inblob, VMPL = privlevel,
//    MEASUREMENT the shipped sim agent's, HOST_DATA zero, not debug; auxblob = the certificate
//    table with VCEK, ASK, ARK.
// Errors: privlevel > 3 -> InvalidArgument "invalid_privlevel"; an sgx folder ->
// FailedPrecondition kSimWrongPlatform.
Result<TsmBlobs> SimTsmReport(const SimVendor& vendor, std::span<const uint8_t, 64> inblob, uint32_t privlevel);

}  // namespace vouch::attest
