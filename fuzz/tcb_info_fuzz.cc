// libFuzzer target: TCB Info JSON parser (v2/v3, SGX/TDX) and the raw-member scanner.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "evidence/dcap_collateral.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto info = vouch::evidence::ParseTcbInfo(text);
  if (info.ok()) {
    // The signed body must be a verbatim part of the input.
    if (text.find(info->signed_body) == std::string_view::npos) __builtin_trap();
    if (info->tcb_levels.empty()) __builtin_trap();
  }
  auto m = vouch::evidence::FindTopLevelJsonMember(text, "tcbInfo");
  if (m.has_value() && (m->data() < text.data() || m->data() + m->size() > text.data() + text.size())) {
    __builtin_trap();
  }
  return 0;
}
