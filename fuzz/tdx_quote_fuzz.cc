// libFuzzer target: the DCAP quote parser for TDX quotes v4 and v5 (any version is accepted
// here, so the fuzzer also explores the version dispatch).
#include <cstddef>
#include <cstdint>
#include <span>

#include "evidence/dcap_quote.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto q = vouch::evidence::ParseDcapQuote(bytes);
  if (q.ok()) {
    // Invariant: header/body + length + signature data + trailing bytes cover the input.
    if (q->signed_data.size() + 4 + q->sig_data_len + q->trailing_bytes != size) __builtin_trap();
    volatile uint8_t sink = q->report_data()[63];
    if (q->td_report.has_value()) sink = sink ^ q->td_report->tee_tcb_svn[0];
    (void)sink;
  }
  (void)vouch::evidence::ParseTdxQuoteV4(bytes);
  (void)vouch::evidence::ParseTdxQuoteV5(bytes);
  return 0;
}
