// libFuzzer target: the enclave manifest parser. vouch-rte parses /vouch/manifest.json from the
// container image before anything else is checked, so these bytes are untrusted. Invariant: what
// Parse accepts re-serialises to exactly the same bytes (the canonical form, docs/formats/manifest.md).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "manifest/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = vouch::manifest::Parse(in);
  if (!m.ok()) return 0;
  auto again = vouch::manifest::ToCanonical(*m);
  if (!again.ok() || *again != in) __builtin_trap();
  (void)vouch::manifest::Mrenclave(in);
  for (const auto& f : m->files) (void)vouch::manifest::IsProtected(f.path, m->ro_dirs, m->rw_dirs);
  return 0;
}
