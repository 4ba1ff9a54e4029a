#pragma once

// ApiClient: a typed-enough REST client for vouchd's /api/v1 (docs/api.md) over libcurl.
//
// - TLS always verifies the peer certificate and the host name against `ca_file` (or the system
//   store when `ca_file` is empty); there is no switch to turn verification off.
// - `base_urls` is an ordered list of equivalent managers (an HA cluster). A request goes to the
//   URL that last answered (sticky; the choice can be shared by several clients through
//   `ClientOptions::servers`); a URL that failed is put behind the others for a back-off (1 s,
//   doubling to 30 s) unless they fail too. The fail-over rule (docs/cluster.md):
//     * any request whose connection failed before it was sent (refused, DNS, TLS handshake,
//       connect timeout) goes to the next URL;
//     * an idempotent request (GET, or a call made with Idempotent::kYes, e.g. the agent's
//       heartbeat batches, which vouchd de-duplicates by sequence number) also goes to the next URL
//       when the connection broke after sending, timed out, or the server answered 5xx (not 501);
//     * a non-idempotent request that may have reached a server is never re-sent: its error
//       (or the 5xx answer) is returned, and the next call starts at another URL.
// - Error responses `{"error":{"code","message"}}` become a Status whose reason() is `code` and
//   message() is `message`; the HTTP status picks the StatusCode (HttpStatusToCode). Transport
//   failures are kUnavailable (reason "connection_failed" or "tls_error") or kDeadlineExceeded
//   ("timeout") with curl's message.
// - One curl handle is reused across calls, so connections are kept alive.
//
// Thread safety: thread-compatible. An ApiClient may be used from one thread at a time; use one
// client per thread for concurrency. No call throws.

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/status.h"

namespace vouch::client {

using json = nlohmann::json;

// The fail-over state of one list of equivalent servers: which answered last and which are backing
// off. Thread-safe; shared by the clients that use the same list (e.g. an agent's pool).
class ServerSet {
 public:
  explicit ServerSet(size_t n);
  // Indexes to try, in order: the current one first, then the rest in list order, with servers
  // still backing off after a failure moved to the end.
  std::vector<size_t> Order();
  void Succeeded(size_t index);
  void Failed(size_t index);
  size_t current() const;
  size_t size() const { return retry_at_.size(); }

 private:
  mutable std::mutex mu_;
  size_t current_ = 0;
  std::vector<std::chrono::steady_clock::time_point> retry_at_;
  std::vector<std::chrono::milliseconds> backoff_;
};

enum class Idempotent { kNo, kYes };

struct ClientOptions {
  std::vector<std::string> base_urls;  // "https://host:port", no trailing path; at least one
  std::shared_ptr<ServerSet> servers;  // optional; shared fail-over state (size = base_urls.size())
  std::string ca_file;                 // PEM bundle trusted for the server; empty: system store
  std::string token;                   // bearer token (vt_... or vk_...); empty: none sent
  std::string client_cert_file;        // optional PEM client certificate (mutual TLS)
  std::string client_key_file;         // its PEM private key; required with client_cert_file
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  size_t max_response_bytes = 64u << 20;  // larger responses fail with kResourceExhausted
  // A 429 answer (the server's per-source rate limit: the request was refused unprocessed, so
  // sending it again is safe even for a POST) is waited out and retried on the same server when
  // its Retry-After fits in what is left of this budget per call; 0: 429s are returned at once.
  std::chrono::seconds max_retry_after{10};
  std::string user_agent = "vouch/0.1";
};

// HTTP status of a response, as a StatusCode (400 → kInvalidArgument, 401 → kUnauthenticated,
// 403 → kPermissionDenied, 404 → kNotFound, 409 → kAlreadyExists when `reason` says a thing
// exists, else kFailedPrecondition, 413 → kPayloadTooLarge, 429 → kResourceExhausted, 422 → kFailedPrecondition,
// 501 → kUnimplemented, 503 → kUnavailable, 504 → kDeadlineExceeded, other 4xx → kInvalidArgument,
// other 5xx → kInternal).
StatusCode HttpStatusToCode(long http_status, std::string_view reason = {});

// Percent-encodes everything but RFC 3986 unreserved characters; for path segments and query values.
std::string PercentEncode(std::string_view s);

class ApiClient {
 public:
  // Validates the options (https:// URLs only, readable files, certificate and key together).
  static Result<std::unique_ptr<ApiClient>> Create(ClientOptions options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // `path` starts with '/' and may carry a query string ("/api/v1/builds?status=pending").
  // A 2xx response's JSON body is returned; an empty body (204) is returned as null.
  Result<json> Get(std::string_view path, const json& body = nullptr);
  // POST is not idempotent unless the caller says so (see the fail-over rule above).
  Result<json> Post(std::string_view path, const json& body = json::object(), Idempotent idem = Idempotent::kNo);
  Result<json> Patch(std::string_view path, const json& body = json::object());
  Result<json> Delete(std::string_view path, const json& body = nullptr);

  // GET returning the raw body (PEM, DER, text); errors as above.
  Result<std::string> GetRaw(std::string_view path);
  // POST of an already encoded JSON body; a 2xx answer's body is returned unparsed (for a relay
  // that passes it on, e.g. the agent); it must be labelled application/json. Errors as above.
  Result<std::string> PostJsonRaw(std::string_view path, const std::string& json_body, Idempotent idem = Idempotent::kNo);

  // Follows `next_cursor` through a paginated list (`{"items": [...], "next_cursor": C|null}`),
  // adding `limit` and `cursor` to the query. Returns the concatenated items, at most `max_items`
  // of them when max_items > 0.
  Result<json> ListAll(std::string_view path, size_t max_items = 0, size_t page_size = 100);

  // Replaces the bearer token (e.g. after login).
  void SetToken(std::string token) { options_.token = std::move(token); }

  // The base URL that answered last (for messages).
  const std::string& current_base_url() const { return options_.base_urls[options_.servers->current()]; }

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::string content_type;
  };
  explicit ApiClient(ClientOptions options);
  Result<Response> Perform(std::string_view method, std::string_view path, const std::string* body,
                           std::string_view accept = "application/json", Idempotent idem = Idempotent::kNo);
  Result<json> JsonCall(std::string_view method, std::string_view path, const json& body,
                        Idempotent idem = Idempotent::kNo);

  ClientOptions options_;
  void* curl_ = nullptr;  // CURL*, owned
};

// Builds the Status for a non-2xx response from its body (the error object when present).
Status ErrorFromResponse(long http_status, std::string_view body);

}  // namespace vouch::client
