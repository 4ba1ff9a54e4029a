#include "malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace vouchd {

int LimitMallocArenas(int arenas) {
  if (arenas <= 0 || std::getenv("MALLOC_ARENA_MAX") != nullptr) return 0;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.arena_max") != nullptr) return 0;
  return mallopt(M_ARENA_MAX, arenas) == 1 ? arenas : 0;
}

}  // namespace vouchd
