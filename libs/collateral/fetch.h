#pragma once

// HTTPS GET for the collateral sources (libcurl, loaded on first use by libs/curl), and the pacing
// of AMD KDS requests. Internal to libs/collateral.
//
// Thread safety: HttpsGet is reentrant (one easy handle per call). Pacer is thread-safe: callers
// queue on its mutex and leave it in order, at most one per interval.

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "base/result.h"

namespace vouch::collateral::internal {

struct HttpAnswer {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; the last value of a repeated name
  std::string Header(const std::string& lower_name) const;
};

struct FetchOptions {
  std::string ca_file;  // "": system store
  std::chrono::milliseconds timeout{30000};
  size_t max_body = 4 << 20;
};

// GET `url` (https only). A transport failure (DNS, connect, TLS, timeout, oversized body) is
// Unavailable with reason collateral_fetch_failed; any HTTP status is an answer.
Result<HttpAnswer> HttpsGet(const std::string& url, const FetchOptions& options);

// At most one request per `interval`, and none before a back-off deadline. Wait() blocks the
// caller until its turn (or returns RESOURCE_EXHAUSTED "collateral_rate_limited" at once when a
// back-off set by a 429/5xx lasts longer than `max_wait`).
class Pacer {
 public:
  explicit Pacer(std::chrono::milliseconds interval) : interval_(interval) {}
  Status Wait(std::chrono::milliseconds max_wait);
  // After an answer: 429 honours Retry-After (seconds; default 10 s), 5xx backs off 10 s doubling
  // up to 5 min; a success resets the back-off.
  void Record(long status, const std::string& retry_after);
  std::chrono::steady_clock::time_point not_before() const;

 private:
  mutable std::mutex mu_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point next_{};
  std::chrono::seconds backoff_{0};
};

}  // namespace vouch::collateral::internal
