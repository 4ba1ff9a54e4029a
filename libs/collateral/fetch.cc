#include "collateral/fetch.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <thread>

#include "collateral/service.h"

namespace vouch::collateral::internal {

namespace {

struct Sink {
  std::string* body;
  size_t max;
  bool overflow = false;
};

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t len = size * n;
  if (sink->body->size() + len > sink->max) {
    sink->overflow = true;
    return 0;
  }
  sink->body->append(data, len);
  return len;
}

size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  const size_t len = size * n;
  std::string line(data, len);
  auto colon = line.find(':');
  if (colon == std::string::npos) {
    if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after 100 Continue)
    return len;
  }
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string value = line.substr(colon + 1);
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  value.erase(value.begin(), std::find_if(value.begin(), value.end(), not_space));
  value.erase(std::find_if(value.rbegin(), value.rend(), not_space).base(), value.end());
  (*headers)[name] = value;
  return len;
}

}  // namespace

std::string HttpAnswer::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpAnswer> HttpsGet(const std::string& url, const FetchOptions& options) {
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h)
    return Unavailable("curl_easy_init failed (is libcurl installed?)", std::string(kFetchFailed));
  HttpAnswer answer;
  Sink sink{&answer.body, options.max_body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h.get(), CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) curl_easy_setopt(h.get(), CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(options.timeout.count(), 10000)));
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(h.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h.get(), CURLOPT_USERAGENT, "vouchd-collateral/1");
  curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &answer.headers);
  curl_easy_setopt(h.get(), CURLOPT_HTTPGET, 1L);
  const CURLcode rc = curl_easy_perform(h.get());
  if (sink.overflow) {
    return Unavailable(
        "GET " + url + ": body larger than " + std::to_string(options.max_body) + " bytes",
        std::string(kFetchFailed));
  }
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    return Unavailable("GET " + url + ": " + detail, std::string(kFetchFailed));
  }
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

Status Pacer::Wait(std::chrono::milliseconds max_wait) {
  std::unique_lock<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (next_ > now && next_ - now > max_wait) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(next_ - now).count() + 1;
    return ResourceExhausted("AMD KDS: next request allowed in " + std::to_string(secs) + " s",
                             std::string(kRateLimited));
  }
  // Holding the mutex while sleeping is the queue: the next caller waits for this one's turn.
  if (next_ > now) std::this_thread::sleep_until(next_);
  next_ = std::chrono::steady_clock::now() + interval_;
  return Status::Ok();
}

void Pacer::Record(long status, const std::string& retry_after) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (status == 429) {
    int64_t secs = 10;
    if (!retry_after.empty() && retry_after.size() <= 6 &&
        std::all_of(retry_after.begin(), retry_after.end(), [](unsigned char c) { return std::isdigit(c); })) {
      secs = std::stoll(retry_after);
    }
    next_ = std::max(next_, now + std::chrono::seconds(secs));
  } else if (status >= 500) {
    backoff_ = backoff_.count() == 0 ? std::chrono::seconds(10) : std::min(backoff_ * 2, std::chrono::seconds(300));
    next_ = std::max(next_, now + backoff_);
  } else if (status > 0) {
    backoff_ = std::chrono::seconds(0);
  }
}

std::chrono::steady_clock::time_point Pacer::not_before() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_;
}

}  // namespace vouch::collateral::internal
