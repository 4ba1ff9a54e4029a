#include "client/api_client.h"

#include "base/http_status.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

namespace vouch::client {
namespace {

CURL* H(void* p) { return static_cast<CURL*>(p); }

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Sink {
  std::string* out;
  size_t max;
  bool overflow = false;
};

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * nmemb;
  if (sink->out->size() + n > sink->max) {
    sink->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  sink->out->append(data, n);
  return n;
}

// The request certainly never reached a server: safe to try the next URL for any method.
bool NotDelivered(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return true;
    default:
      return false;
  }
}

// The connection broke or timed out; the server may have acted on the request.
bool MaybeDelivered(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

Status TransportStatus(CURLcode rc, const std::string& detail) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status(StatusCode::kDeadlineExceeded, detail, "timeout");
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Status(StatusCode::kUnavailable, detail, "tls_error");
    default:
      return Status(StatusCode::kUnavailable, detail, "connection_failed");
  }
}

std::once_flag g_curl_init;

// VOUCH_RECORD_API=FILE (a testing aid, docs/cli.md): appends one JSON line per response received,
// {method, path (without query), status, content_type, body (when JSON)}, so the e2e tests can check
// every answer against docs/api/openapi.json. One write(2) per line on an O_APPEND descriptor: lines
// of concurrent CLI processes do not interleave. Best effort: a failure to record is ignored.
void RecordResponse(std::string_view method, std::string_view path, long status, const std::string& content_type,
                    const std::string& body) {
  const char* file = std::getenv("VOUCH_RECORD_API");
  if (file == nullptr || *file == '\0') return;
  nlohmann::json line = {{"method", std::string(method)},
                         {"path", std::string(path.substr(0, path.find('?')))},
                         {"status", status},
                         {"content_type", content_type}};
  if (content_type.rfind("application/json", 0) == 0) {
    nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) line["body"] = std::move(parsed);
  }
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const int fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t n;
  do {
    n = ::write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  ::close(fd);
}

constexpr std::chrono::milliseconds kFirstBackoff{1000};
constexpr std::chrono::milliseconds kMaxBackoff{30000};

// A server answer that another equivalent server may not give: overloaded, draining, a gateway
// error, a store it cannot reach. 501 (not implemented) would be the same everywhere.
bool ServerSideFailure(long status) { return status >= 500 && status <= 599 && status != 501; }

// Keeps the value of a Retry-After header line (CURLOPT_HEADERFUNCTION; `user` is a std::string).
size_t HeaderCallback(char* data, size_t size, size_t nmemb, void* user) {
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      std::equal(kName.begin(), kName.end(), line.begin(), [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    line.remove_prefix(kName.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
    static_cast<std::string*>(user)->assign(line.substr(0, 32));
  }
  return n;
}

// A Retry-After value in seconds (the delay form; an HTTP date or a malformed value: none).
std::optional<std::chrono::seconds> RetryAfterSeconds(std::string_view v) {
  if (v.empty() || v.size() > 6 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stol(std::string(v)));
}

}  // namespace

ServerSet::ServerSet(size_t n) : retry_at_(n), backoff_(n, kFirstBackoff) {}

std::vector<size_t> ServerSet::Order() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = retry_at_.size();
  const auto now = std::chrono::steady_clock::now();
  std::vector<size_t> ready, waiting;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (current_ + k) % n;
    (retry_at_[i] <= now ? ready : waiting).push_back(i);
  }
  ready.insert(ready.end(), waiting.begin(), waiting.end());
  return ready;
}

void ServerSet::Succeeded(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= retry_at_.size()) return;
  current_ = index;
  retry_at_[index] = {};
  backoff_[index] = kFirstBackoff;
}

void ServerSet::Failed(size_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= retry_at_.size()) return;
  retry_at_[index] = std::chrono::steady_clock::now() + backoff_[index];
  backoff_[index] = std::min(backoff_[index] * 2, kMaxBackoff);
  // Leave a failed server: the next call starts with the one after it.
  if (current_ == index && retry_at_.size() > 1) current_ = (index + 1) % retry_at_.size();
}

size_t ServerSet::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

StatusCode HttpStatusToCode(long http_status, std::string_view reason) {
  return StatusCodeForHttp(http_status, reason);
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

Status ErrorFromResponse(long http_status, std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    std::string code = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : "";
    std::string message =
        e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    if (code.empty()) code = "http_" + std::to_string(http_status);
    if (message.empty()) message = code;
    const StatusCode status_code = HttpStatusToCode(http_status, code);
    return Status(status_code, std::move(message), std::move(code));
  }
  // Not our error shape (a proxy, a plain-text 503): keep a short, printable excerpt.
  std::string excerpt;
  for (char c : body.substr(0, 200)) excerpt.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  std::string message = "HTTP " + std::to_string(http_status);
  if (!excerpt.empty()) message += ": " + excerpt;
  return Status(HttpStatusToCode(http_status), std::move(message), "http_" + std::to_string(http_status));
}

Result<std::unique_ptr<ApiClient>> ApiClient::Create(ClientOptions options) {
  if (options.base_urls.empty()) return InvalidArgument("no server URL given", "no_server");
  for (auto& url : options.base_urls) {
    if (url.rfind("https://", 0) != 0) {
      return InvalidArgument("server URL \"" + url + "\" must start with https://", "invalid_url");
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.size() <= 8) return InvalidArgument("server URL has no host", "invalid_url");
  }
  auto readable = [](const std::string& path, const char* what) -> Status {
    if (!path.empty() && ::access(path.c_str(), R_OK) != 0) {
      return InvalidArgument(std::string(what) + " \"" + path + "\" is not readable", "file_not_readable");
    }
    return Status::Ok();
  };
  if (!options.servers) options.servers = std::make_shared<ServerSet>(options.base_urls.size());
  if (options.servers->size() != options.base_urls.size()) {
    return InvalidArgument("the shared server set does not match the URL list", "invalid_argument");
  }
  VOUCH_RETURN_IF_ERROR(readable(options.ca_file, "CA file"));
  VOUCH_RETURN_IF_ERROR(readable(options.client_cert_file, "client certificate"));
  VOUCH_RETURN_IF_ERROR(readable(options.client_key_file, "client key"));
  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return InvalidArgument("a client certificate needs its key and vice versa", "invalid_argument");
  }
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<ApiClient> client(new ApiClient(std::move(options)));
  if (client->curl_ == nullptr) return Internal("curl_easy_init failed");
  return client;
}

ApiClient::ApiClient(ClientOptions options) : options_(std::move(options)), curl_(curl_easy_init()) {}

ApiClient::~ApiClient() {
  if (curl_ != nullptr) curl_easy_cleanup(H(curl_));
}

Result<ApiClient::Response> ApiClient::Perform(std::string_view method, std::string_view path,
                                               const std::string* body, std::string_view accept,
                                               Idempotent idem) {
  if (path.empty() || path.front() != '/') return InvalidArgument("request path must start with '/'");
  const bool idempotent = method == "GET" || idem == Idempotent::kYes;
  std::string failures;
  Status last;
  const std::vector<size_t> order = options_.servers->Order();
  std::chrono::seconds waited{0};  // Retry-After waits so far (ClientOptions::max_retry_after)
  for (size_t attempt = 0; attempt < order.size(); ++attempt) {
    const size_t index = order[attempt];
    const bool more = attempt + 1 < order.size();
    const std::string url = options_.base_urls[index] + std::string(path);
    CURL* h = H(curl_);
    curl_easy_reset(h);  // keeps the connection cache: keep-alive across calls

    Response response;
    Sink sink{&response.body, options_.max_response_bytes};
    char errbuf[CURL_ERROR_SIZE] = {0};
    SlistPtr headers;
    auto add_header = [&headers](const std::string& line) {
      headers.reset(curl_slist_append(headers.release(), line.c_str()));
    };
    add_header("Accept: " + std::string(accept));
    if (body != nullptr) add_header("Content-Type: application/json");
    if (!options_.token.empty()) add_header("Authorization: Bearer " + options_.token);
    add_header("Expect:");  // no 100-continue round trip

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.client_cert_file.empty()) {
      curl_easy_setopt(h, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLKEY, options_.client_key_file.c_str());
      curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteCallback);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    std::string retry_after;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &HeaderCallback);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    if (method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
    }
    if (body != nullptr) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else if (method != "GET") {
      // Without POSTFIELDS curl would read a body from stdin.
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    }

    const CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
      const char* ct = nullptr;
      if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != nullptr) {
        response.content_type = ct;
      }
      RecordResponse(method, path, response.status, response.content_type, response.body);
      if (response.status == 429) {
        const std::optional<std::chrono::seconds> wait = RetryAfterSeconds(retry_after);
        if (wait && waited + *wait <= options_.max_retry_after) {
          std::this_thread::sleep_for(*wait);
          waited += *wait;
          --attempt;  // the same server again (unsigned wrap-around is undone by ++attempt)
          continue;
        }
      }
      if (idempotent && more && ServerSideFailure(response.status)) {
        options_.servers->Failed(index);
        std::string detail = options_.base_urls[index] + ": HTTP " + std::to_string(response.status);
        failures += failures.empty() ? detail : "; " + detail;
        continue;
      }
      if (ServerSideFailure(response.status)) {
        options_.servers->Failed(index);
      } else {
        options_.servers->Succeeded(index);
      }
      return response;
    }
    if (sink.overflow) {
      return ResourceExhausted("response from " + options_.base_urls[index] + " exceeds " +
                                   std::to_string(options_.max_response_bytes) + " bytes",
                               "response_too_large");
    }
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    detail = options_.base_urls[index] + ": " + detail;
    last = TransportStatus(rc, detail);
    failures += failures.empty() ? detail : "; " + detail;
    const bool not_delivered = NotDelivered(rc);
    if (not_delivered || MaybeDelivered(rc)) options_.servers->Failed(index);
    const bool retry = not_delivered || (idempotent && MaybeDelivered(rc));
    if (!retry) return last;
  }
  return Status(last.code(), failures, last.reason());
}

Result<json> ApiClient::JsonCall(std::string_view method, std::string_view path, const json& body,
                                 Idempotent idem) {
  std::string encoded;
  const std::string* body_ptr = nullptr;
  if (!body.is_null()) {
    encoded = body.dump();
    body_ptr = &encoded;
  }
  VOUCH_ASSIGN_OR_RETURN(Response r, Perform(method, path, body_ptr, "application/json", idem));
  if (r.status < 200 || r.status >= 300) return ErrorFromResponse(r.status, r.body);
  if (r.body.empty()) return json(nullptr);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Internal("server sent a response that is not JSON (HTTP " + std::to_string(r.status) + ")",
                    "invalid_response");
  }
  return j;
}

Result<json> ApiClient::Get(std::string_view path, const json& body) { return JsonCall("GET", path, body); }
Result<json> ApiClient::Post(std::string_view path, const json& body, Idempotent idem) {
  return JsonCall("POST", path, body, idem);
}
Result<json> ApiClient::Patch(std::string_view path, const json& body) {
  return JsonCall("PATCH", path, body);
}
Result<json> ApiClient::Delete(std::string_view path, const json& body) {
  return JsonCall("DELETE", path, body);
}

Result<std::string> ApiClient::GetRaw(std::string_view path) {
  VOUCH_ASSIGN_OR_RETURN(Response r, Perform("GET", path, nullptr, "*/*"));
  if (r.status < 200 || r.status >= 300) return ErrorFromResponse(r.status, r.body);
  return std::move(r.body);
}

Result<std::string> ApiClient::PostJsonRaw(std::string_view path, const std::string& json_body, Idempotent idem) {
  VOUCH_ASSIGN_OR_RETURN(Response r, Perform("POST", path, &json_body, "application/json", idem));
  if (r.status < 200 || r.status >= 300) return ErrorFromResponse(r.status, r.body);
  if (r.content_type.rfind("application/json", 0) != 0) {
    return Internal("server sent a response that is not JSON (HTTP " + std::to_string(r.status) + ")",
                    "invalid_response");
  }
  return std::move(r.body);
}

Result<json> ApiClient::ListAll(std::string_view path, size_t max_items, size_t page_size) {
  if (page_size == 0) page_size = 100;
  json items = json::array();
  std::string cursor;
  const char sep = path.find('?') == std::string_view::npos ? '?' : '&';
  for (size_t pages = 0;; ++pages) {
    size_t want = page_size;
    if (max_items > 0) want = std::min(want, max_items - items.size());
    std::string url = std::string(path) + sep + "limit=" + std::to_string(want);
    if (!cursor.empty()) url += "&cursor=" + PercentEncode(cursor);
    VOUCH_ASSIGN_OR_RETURN(json page, Get(url));
    if (!page.is_object() || !page.contains("items") || !page["items"].is_array()) {
      return Internal("list response from " + std::string(path) + " has no \"items\" array",
                      "invalid_response");
    }
    for (auto& item : page["items"]) {
      items.push_back(std::move(item));
      if (max_items > 0 && items.size() >= max_items) return items;
    }
    const json next = page.value("next_cursor", json(nullptr));
    if (!next.is_string() || next.get<std::string>().empty()) return items;
    if (next.get<std::string>() == cursor) {
      return Internal("server returned the same cursor twice for " + std::string(path), "invalid_response");
    }
    cursor = next.get<std::string>();
    if (pages > 1000000) return Internal("too many pages", "invalid_response");
  }
}

}  // namespace vouch::client
