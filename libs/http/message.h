#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/status.h"

namespace vouch::http {

// One HTTP request as handlers see it. Built by the Server (or by tests), routed by the Router.
// Plain value type; not thread-safe (one request is handled by one thread at a time).
struct Request {
  std::string method;                              // "GET", "POST", ... (as sent, case-sensitive)
  std::string target;                              // raw request target incl. query
  std::string path;                                // percent-decoded path without the query
  std::map<std::string, std::string> query;        // decoded query parameters (last one wins)
  std::map<std::string, std::string> path_params;  // filled by the Router from "{name}" segments
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  std::string remote_address;  // "127.0.0.1:54321", "[::1]:54321" or "unix"
  // The verified TLS client certificate chain (leaf first, DER; as built by OpenSSL's
  // verification, so it ends with the trusted root). Empty when no certificate was presented
  // or the listener is the plain Unix socket. An untrusted certificate never gets here: the
  // TLS handshake is rejected instead (see server.h).
  std::vector<std::vector<uint8_t>> peer_cert_chain_der;
  // The Router pattern that matched ("/api/v1/zones/{id}"), "" if none matched. Metrics label
  // requests by this, never by the raw path.
  std::string route;
  bool tls = false;  // true on the HTTPS listener
  // The peer process of a Unix-socket connection, as the kernel recorded it when the peer called
  // connect() (SO_PEERCRED; pid in the server's pid namespace, 0 if the peer's is not visible
  // from it). -1 on TCP listeners. `peer_pidfd` is a pidfd of that same process (SO_PEERPIDFD,
  // Linux 6.5+: it stays bound to the process even if its pid is later reused), owned by the
  // connection and valid while the handler runs; -1 where the kernel cannot give one.
  int64_t peer_pid = -1;
  int64_t peer_uid = -1;
  int64_t peer_gid = -1;
  int peer_pidfd = -1;

  // Value of the first header called `name` (ASCII case-insensitive), "" if absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // The query parameter `name`, or "" if absent.
  std::string Query(std::string_view name) const;

  // Fills path and query from target ("/a%20b?x=1&y=%2F" -> path "/a b", query {x:1, y:/}).
  // Fails with InvalidArgument (reason "invalid_target") when the target is not origin-form
  // ("/..."), holds a bad %-escape, or decodes to a NUL byte.
  Status ParseTarget();
};

// A response built by a handler. The Server adds the security headers (X-Content-Type-Options:
// nosniff; Cache-Control: no-store unless a Cache-Control header is already present),
// Content-Length and Connection.
struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";  // empty: no Content-Type header
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // `j` serialised compactly; invalid UTF-8 in strings is replaced, never throws.
  static Response Json(const nlohmann::json& j, unsigned status = 200);
  static Response Text(std::string text, std::string content_type = "text/plain; charset=utf-8",
                       unsigned status = 200);
  // {"error":{"code":status.reason(),"message":status.message()}} with HttpStatusFor(status).
  static Response Error(const Status& status);
  // An error body with an explicit HTTP status (e.g. 405, 431) that has no StatusCode.
  static Response Error(unsigned http_status, std::string_view code, std::string_view message);
  static Response NoContent();  // 204, no body, no Content-Type

  // Adds (does not replace) a header.
  Response& AddHeader(std::string name, std::string value);
  // Value of the first header called `name` (case-insensitive), "" if absent.
  std::string Header(std::string_view name) const;
};

// The ONE mapping from Status to an HTTP status code:
//   ok 200; InvalidArgument, OutOfRange 400; Unauthenticated 401; PermissionDenied 403;
//   NotFound 404; AlreadyExists, Aborted, FailedPrecondition 409; PayloadTooLarge 413;
//   ResourceExhausted 429; Unimplemented 501; Unavailable 503 (with Retry-After from the API);
//   DeadlineExceeded 504; DataLoss, Internal 500.
unsigned HttpStatusFor(const Status& status);

// Standard reason phrase ("Not Found"), "Unknown" for codes it does not know.
std::string_view HttpReasonPhrase(unsigned http_status);

// ASCII case-insensitive equality, for header names.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// RFC 3986 percent-decoding. With `plus_is_space` (query strings), '+' decodes to ' '.
// Fails on a truncated or non-hex escape.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space = false);

}  // namespace vouch::http
