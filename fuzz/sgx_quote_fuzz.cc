// libFuzzer target: SGX quote v3 parser (and the SGX REPORT parsers on the same bytes).
#include <cstddef>
#include <cstdint>
#include <span>

#include "evidence/dcap_quote.h"
#include "evidence/sgx_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto q = vouch::evidence::ParseSgxQuoteV3(bytes);
  if (q.ok()) {
    // Touch what a verifier reads.
    volatile uint8_t sink = q->report_data()[0] ^ q->qe_report.raw[0];
    for (uint8_t b : q->cert_data.data) sink = sink ^ b;
    (void)sink;
  }
  if (size >= vouch::evidence::kSgxReportSize) {
    (void)vouch::evidence::ParseSgxReport(bytes.first(vouch::evidence::kSgxReportSize));
  }
  if (size >= vouch::evidence::kSgxReportBodySize) {
    auto b = vouch::evidence::ParseSgxReportBody(bytes.first(vouch::evidence::kSgxReportBodySize));
    if (b.ok()) {
      // Encoding the typed fields and parsing again is lossless (reserved bytes become zero).
      auto enc = vouch::evidence::EncodeSgxReportBody(*b);
      auto again = vouch::evidence::ParseSgxReportBody(enc);
      if (!again.ok() || again->mr_enclave != b->mr_enclave || again->report_data != b->report_data ||
          again->attribute_flags != b->attribute_flags || again->isv_svn != b->isv_svn) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
