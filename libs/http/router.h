#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace vouch::http {

using Handler = std::function<Response(Request&)>;

struct RouteInfo {
  std::string method;
  std::string pattern;
  std::string name;  // "GET /api/v1/zones/{id}"
};

// Maps (method, path) to a handler. Patterns are absolute paths whose segments are literals,
// "{name}" (one non-empty segment, percent-decoded, stored in Request::path_params[name]) or,
// as the last segment only, "{name...}" (the rest of the path, possibly empty, decoded per
// segment and re-joined with '/').
// When several patterns match, the one with a literal earlier wins ("/audit/verify" beats
// "/audit/{id}"). HEAD falls back to the GET route (the Server sends no body for HEAD).
//
// Build the Router completely before handing it to a Server; after that it is only read, so
// concurrent Dispatch calls are safe.
class Router {
 public:
  // Registers `handler`. A duplicate (method, pattern) or a malformed pattern is a programming
  // error: it is logged and the later registration is ignored (AddChecked reports it).
  void Add(std::string method, std::string pattern, Handler handler);
  Status AddChecked(std::string method, std::string pattern, Handler handler);

  // Matches req.path (re-split from req.target so that "%2F" stays inside a segment), fills
  // req.path_params and req.route, and runs the handler. Unknown path: 404 "not_found" JSON.
  // Path known for other methods: 405 "method_not_allowed" with an Allow header. A bad target:
  // 400 "invalid_target". Handler exceptions are NOT caught here (the Server does that).
  Response Dispatch(Request& req) const;

  // Every registered route, in registration order.
  std::vector<RouteInfo> Routes() const;

 private:
  struct Segment {
    enum Kind { kLiteral, kParam, kRest } kind;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  // Fills `params` and returns true when `route` matches the decoded path segments.
  static bool Match(const Route& route, const std::vector<std::string_view>& decoded_segments,
                    std::map<std::string, std::string>* params);
  static bool MoreSpecific(const Route& a, const Route& b);

  std::vector<Route> routes_;
};

}  // namespace vouch::http
