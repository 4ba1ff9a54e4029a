#include "base/lazy_library.h"

#include <cstdio>

namespace vouch::lazy {

void* Open(const char* soname) {
  void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) std::fprintf(stderr, "vouch: cannot load %s: %s\n", soname, dlerror());
  return h;
}

}  // namespace vouch::lazy
