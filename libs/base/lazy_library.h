#pragma once

// Entry points of a shared library that is loaded with dlopen on first use (libs/curl,
// libs/archive): the process pays for mapping and relocating the library, and its dependency
// tree, only when a command actually calls into it.
//
//   VOUCH_LAZY_FN(Loader, ret, name, fail, (params), (args))
// defines `extern "C" ret name(params)` with the exact prototype of the library's header; the
// first call resolves the real symbol through Loader() (a function returning the dlopen handle
// or nullptr) and later calls go straight to it. When the library or the symbol is missing, the
// call returns `fail`, the value by which the library itself reports failure.
// A function not defined this way is a link error (undefined reference), never a silent stub.

#include <dlfcn.h>

namespace vouch::lazy {

// Opens `soname` once (RTLD_NOW | RTLD_LOCAL); prints one line on stderr if it cannot.
void* Open(const char* soname);

template <typename Fn>
Fn Resolve(void* handle, const char* name) {
  if (handle == nullptr) return nullptr;
  // POSIX guarantees that a data pointer from dlsym converts to a function pointer.
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

}  // namespace vouch::lazy

// Defines `void* loader()` in an anonymous namespace: the dlopen handle of `soname`, opened on the
// first call (nullptr, with one line on stderr, if it cannot be).
#define VOUCH_LAZY_LIBRARY(loader, soname)                                     \
  namespace {                                                                  \
  void* loader() {                                                             \
    static void* const handle = ::vouch::lazy::Open(soname);                   \
    return handle;                                                             \
  }                                                                            \
  }

#define VOUCH_LAZY_FN(loader, ret, name, fail, params, args)                   \
  extern "C" ret name params {                                                 \
    using Fn = ret(*) params;                                                  \
    static const Fn fn = ::vouch::lazy::Resolve<Fn>(loader(), #name);          \
    if (fn == nullptr) return fail;                                            \
    return fn args;                                                            \
  }

#define VOUCH_LAZY_VOID_FN(loader, name, params, args)                         \
  extern "C" void name params {                                                \
    using Fn = void(*) params;                                                 \
    static const Fn fn = ::vouch::lazy::Resolve<Fn>(loader(), #name);          \
    if (fn != nullptr) fn args;                                                \
  }
