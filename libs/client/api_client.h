#pragma once

// ApiClient: a typed-enough REST client for vouchd's /api/v1 (docs/api.md) over libcurl.
//
// - TLS always verifies the peer certificate and the host name against `ca_file` (or the system
//   store when `ca_file` is empty); there is no switch to turn verification off.
// - `base_urls` is an ordered list of equivalent managers (an HA cluster). A request goes to the
//   URL that last answered; when it cannot be delivered (connection refused, DNS failure, TLS
//   handshake failure, connect timeout) the next URL is tried. Requests that may already have
//   reached a server (the connection broke mid-response) are retried elsewhere only for GET.
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
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/status.h"

namespace vouch::client {

using json = nlohmann::json;

struct ClientOptions {
  std::vector<std::string> base_urls;  // "https://host:port", no trailing path; at least one
  std::string ca_file;                 // PEM bundle trusted for the server; empty: system store
  std::string token;                   // bearer token (vt_... or vk_...); empty: none sent
  std::string client_cert_file;        // optional PEM client certificate (mutual TLS)
  std::string client_key_file;         // its PEM private key; required with client_cert_file
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  size_t max_response_bytes = 64u << 20;  // larger responses fail with kResourceExhausted
  std::string user_agent = "vouch/0.1";
};

// HTTP status of a response, as a StatusCode (400 → kInvalidArgument, 401 → kUnauthenticated,
// 403 → kPermissionDenied, 404 → kNotFound, 409 → kAlreadyExists when `reason` says a thing
// exists, else kFailedPrecondition, 413/429 → kResourceExhausted, 422 → kFailedPrecondition,
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
  Result<json> Post(std::string_view path, const json& body = json::object());
  Result<json> Patch(std::string_view path, const json& body = json::object());
  Result<json> Delete(std::string_view path, const json& body = nullptr);

  // GET returning the raw body (PEM, DER, text); errors as above.
  Result<std::string> GetRaw(std::string_view path);

  // Follows `next_cursor` through a paginated list (`{"items": [...], "next_cursor": C|null}`),
  // adding `limit` and `cursor` to the query. Returns the concatenated items, at most `max_items`
  // of them when max_items > 0.
  Result<json> ListAll(std::string_view path, size_t max_items = 0, size_t page_size = 100);

  // Replaces the bearer token (e.g. after login).
  void SetToken(std::string token) { options_.token = std::move(token); }

  // The base URL that answered last (for messages).
  const std::string& current_base_url() const { return options_.base_urls[current_]; }

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::string content_type;
  };
  explicit ApiClient(ClientOptions options);
  Result<Response> Perform(std::string_view method, std::string_view path, const std::string* body,
                           std::string_view accept = "application/json");
  Result<json> JsonCall(std::string_view method, std::string_view path, const json& body);

  ClientOptions options_;
  size_t current_ = 0;
  void* curl_ = nullptr;  // CURL*, owned
};

// Builds the Status for a non-2xx response from its body (the error object when present).
Status ErrorFromResponse(long http_status, std::string_view body);

}  // namespace vouch::client
