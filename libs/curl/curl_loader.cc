// libcurl entry points that load libcurl.so.4 on first use (see README.md).
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "base/lazy_library.h"

#include <cstdarg>
#include <cstdio>

VOUCH_LAZY_LIBRARY(Library, "libcurl.so.4")

#define VOUCH_CURL_FN(ret, name, fail, params, args) VOUCH_LAZY_FN(Library, ret, name, fail, params, args)
#define VOUCH_CURL_VOID_FN(name, params, args) VOUCH_LAZY_VOID_FN(Library, name, params, args)

VOUCH_CURL_FN(CURLcode, curl_global_init, CURLE_FAILED_INIT, (long flags), (flags))
VOUCH_CURL_VOID_FN(curl_global_cleanup, (void), ())
VOUCH_CURL_FN(char*, curl_version, const_cast<char*>("libcurl unavailable"), (void), ())
VOUCH_CURL_FN(curl_version_info_data*, curl_version_info, nullptr, (CURLversion v), (v))

VOUCH_CURL_FN(CURL*, curl_easy_init, nullptr, (void), ())
VOUCH_CURL_VOID_FN(curl_easy_cleanup, (CURL * c), (c))
VOUCH_CURL_VOID_FN(curl_easy_reset, (CURL * c), (c))
VOUCH_CURL_FN(CURL*, curl_easy_duphandle, nullptr, (CURL * c), (c))
VOUCH_CURL_FN(CURLcode, curl_easy_perform, CURLE_FAILED_INIT, (CURL * c), (c))
VOUCH_CURL_FN(CURLcode, curl_easy_pause, CURLE_FAILED_INIT, (CURL * c, int bitmask), (c, bitmask))
VOUCH_CURL_FN(const char*, curl_easy_strerror, "libcurl unavailable", (CURLcode code), (code))
VOUCH_CURL_FN(char*, curl_easy_escape, nullptr, (CURL * c, const char* s, int len), (c, s, len))
VOUCH_CURL_FN(char*, curl_easy_unescape, nullptr, (CURL * c, const char* s, int len, int* out), (c, s, len, out))
VOUCH_CURL_VOID_FN(curl_free, (void* p), (p))

VOUCH_CURL_FN(struct curl_slist*, curl_slist_append, nullptr, (struct curl_slist * l, const char* s), (l, s))
VOUCH_CURL_VOID_FN(curl_slist_free_all, (struct curl_slist * l), (l))

VOUCH_CURL_FN(CURLM*, curl_multi_init, nullptr, (void), ())
VOUCH_CURL_FN(CURLMcode, curl_multi_cleanup, CURLM_INTERNAL_ERROR, (CURLM * m), (m))
VOUCH_CURL_FN(CURLMcode, curl_multi_add_handle, CURLM_INTERNAL_ERROR, (CURLM * m, CURL* c), (m, c))
VOUCH_CURL_FN(CURLMcode, curl_multi_remove_handle, CURLM_INTERNAL_ERROR, (CURLM * m, CURL* c), (m, c))
VOUCH_CURL_FN(CURLMcode, curl_multi_perform, CURLM_INTERNAL_ERROR, (CURLM * m, int* running), (m, running))
VOUCH_CURL_FN(CURLMcode, curl_multi_poll, CURLM_INTERNAL_ERROR,
              (CURLM * m, struct curl_waitfd* fds, unsigned int n, int timeout_ms, int* numfds),
              (m, fds, n, timeout_ms, numfds))
VOUCH_CURL_FN(CURLMcode, curl_multi_wait, CURLM_INTERNAL_ERROR,
              (CURLM * m, struct curl_waitfd* fds, unsigned int n, int timeout_ms, int* numfds),
              (m, fds, n, timeout_ms, numfds))
VOUCH_CURL_FN(CURLMcode, curl_multi_wakeup, CURLM_INTERNAL_ERROR, (CURLM * m), (m))
VOUCH_CURL_FN(CURLMsg*, curl_multi_info_read, nullptr, (CURLM * m, int* queued), (m, queued))
VOUCH_CURL_FN(const char*, curl_multi_strerror, "libcurl unavailable", (CURLMcode code), (code))

VOUCH_CURL_FN(CURLU*, curl_url, nullptr, (void), ())
VOUCH_CURL_VOID_FN(curl_url_cleanup, (CURLU * u), (u))
VOUCH_CURL_FN(CURLU*, curl_url_dup, nullptr, (CURLU * u), (u))
VOUCH_CURL_FN(CURLUcode, curl_url_get, CURLUE_OUT_OF_MEMORY, (CURLU * u, CURLUPart what, char** part,
                                                              unsigned int flags),
              (u, what, part, flags))
VOUCH_CURL_FN(CURLUcode, curl_url_set, CURLUE_OUT_OF_MEMORY, (CURLU * u, CURLUPart what, const char* part,
                                                              unsigned int flags),
              (u, what, part, flags))

#undef VOUCH_CURL_FN
#undef VOUCH_CURL_VOID_FN

// va_start after an enum parameter (CURLoption, CURLMoption, CURLINFO, as <curl/curl.h> declares
// them): these enums are int-sized and not promoted, so this is well defined; clang warns anyway.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wvarargs"
#endif

// The variadic setters take exactly one argument whose type the option number encodes
// (CURLOPTTYPE_* ranges); read it with that type and pass it on with that type.
namespace {
template <typename Handle, typename Option, typename Result>
Result ForwardOption(Result (*fn)(Handle*, Option, ...), Handle* h, Option option, va_list ap) {
  const long o = static_cast<long>(option);
  if (o < CURLOPTTYPE_OBJECTPOINT) return fn(h, option, va_arg(ap, long));
  if (o < CURLOPTTYPE_FUNCTIONPOINT) return fn(h, option, va_arg(ap, void*));
  if (o < CURLOPTTYPE_OFF_T) return fn(h, option, va_arg(ap, void (*)(void)));
  if (o < CURLOPTTYPE_BLOB) return fn(h, option, va_arg(ap, curl_off_t));
  return fn(h, option, va_arg(ap, void*));
}
}  // namespace

extern "C" CURLcode curl_easy_setopt(CURL* c, CURLoption option, ...) {
  using Fn = CURLcode (*)(CURL*, CURLoption, ...);
  static const Fn fn = vouch::lazy::Resolve<Fn>(Library(), "curl_easy_setopt");
  if (fn == nullptr) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, option);
  CURLcode rc = ForwardOption(fn, c, option, ap);
  va_end(ap);
  return rc;
}

extern "C" CURLMcode curl_multi_setopt(CURLM* m, CURLMoption option, ...) {
  using Fn = CURLMcode (*)(CURLM*, CURLMoption, ...);
  static const Fn fn = vouch::lazy::Resolve<Fn>(Library(), "curl_multi_setopt");
  if (fn == nullptr) return CURLM_INTERNAL_ERROR;
  va_list ap;
  va_start(ap, option);
  CURLMcode rc = ForwardOption(fn, m, option, ap);
  va_end(ap);
  return rc;
}

// Every CURLINFO result is written through a pointer.
extern "C" CURLcode curl_easy_getinfo(CURL* c, CURLINFO info, ...) {
  using Fn = CURLcode (*)(CURL*, CURLINFO, ...);
  static const Fn fn = vouch::lazy::Resolve<Fn>(Library(), "curl_easy_getinfo");
  if (fn == nullptr) return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  void* out = va_arg(ap, void*);
  va_end(ap);
  return fn(c, info, out);
}
