// libFuzzer target: QE / TD-QE Identity JSON parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "evidence/dcap_collateral.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto id = vouch::evidence::ParseEnclaveIdentity(text);
  if (id.ok()) {
    if (text.find(id->signed_body) == std::string_view::npos) __builtin_trap();
    if (id->tcb_levels.empty()) __builtin_trap();
  }
  return 0;
}
