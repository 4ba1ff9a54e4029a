// libFuzzer target for the SEV-SNP report parser (libs/evidence/snp_report.h).
// Seed corpus: fuzz/snp_report_corpus/ (real v2/v3 reports from shared/testdata).
// Checks beyond "no crash": a report that parses has a known version and signing key, and
// decoding its TCB fields with every product layout is total.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "evidence/snp_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vouch::evidence;
  auto report = ParseSnpReport(std::span<const uint8_t>(data, size));
  if (!report.ok()) {
    if (report.status().reason().empty()) std::abort();
    return 0;
  }
  if (size != kSnpReportSize) std::abort();
  if (report->version != 2 && report->version != 3 && report->version != 5) std::abort();
  if (report->version < 3 && report->cpuid_fam_id.has_value()) std::abort();
  for (SnpProduct p : {SnpProduct::kMilan, SnpProduct::kGenoa, SnpProduct::kTurin, report->ProductFromCpuid()}) {
    for (uint64_t tcb : {report->current_tcb, report->reported_tcb, report->committed_tcb, report->launch_tcb}) {
      SnpTcbVersion t = SnpTcbVersion::Decode(tcb, p);
      if (t.raw != tcb || t.fmc.has_value() != (p == SnpProduct::kTurin)) std::abort();
    }
  }
  return 0;
}
