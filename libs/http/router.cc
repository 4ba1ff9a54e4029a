#include "http/router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace vouch::http {
namespace {

// Splits "/a/b/" into {"a", "b", ""}; "/" into {""}. `path` starts with '/'.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  std::string_view rest = path.substr(1);
  while (true) {
    size_t slash = rest.find('/');
    out.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

bool ValidParamName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  Status s = AddChecked(std::move(method), std::move(pattern), std::move(handler));
  if (!s.ok()) spdlog::error("http router: {}", s.ToString());
}

Status Router::AddChecked(std::string method, std::string pattern, Handler handler) {
  if (method.empty() ||
      !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return InvalidArgument(fmt::format("route method '{}' must be upper-case letters", method));
  }
  if (!handler) return InvalidArgument(fmt::format("route {} {} has no handler", method, pattern));
  if (pattern.empty() || pattern[0] != '/') {
    return InvalidArgument(fmt::format("route pattern '{}' must start with '/'", pattern));
  }
  Route route{method, pattern, {}, std::move(handler)};
  std::set<std::string> names;
  std::vector<std::string_view> parts = SplitPath(pattern);
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view part = parts[i];
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      std::string_view name = part.substr(1, part.size() - 2);
      Segment::Kind kind = Segment::kParam;
      if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
        name = name.substr(0, name.size() - 3);
        kind = Segment::kRest;
        if (i + 1 != parts.size()) {
          return InvalidArgument(fmt::format(
              "route pattern '{}': '{{{}...}}' must be the last segment", pattern, name));
        }
      }
      if (!ValidParamName(name) || !names.insert(std::string(name)).second) {
        return InvalidArgument(
            fmt::format("route pattern '{}': bad or duplicate parameter '{}'", pattern, name));
      }
      route.segments.push_back({kind, std::string(name)});
    } else {
      if (part.find_first_of("{}") != std::string_view::npos) {
        return InvalidArgument(
            fmt::format("route pattern '{}': stray brace in '{}'", pattern, part));
      }
      route.segments.push_back({Segment::kLiteral, std::string(part)});
    }
  }
  for (const Route& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      return AlreadyExists(fmt::format("route {} {} registered twice", method, pattern));
    }
  }
  routes_.push_back(std::move(route));
  return Status::Ok();
}

bool Router::Match(const Route& route, const std::vector<std::string_view>& decoded,
                   std::map<std::string, std::string>* params) {
  params->clear();
  size_t i = 0;
  for (; i < route.segments.size(); ++i) {
    const Segment& seg = route.segments[i];
    if (seg.kind == Segment::kRest) {
      std::string rest;
      for (size_t j = i; j < decoded.size(); ++j) {
        if (j > i) rest.push_back('/');
        rest.append(decoded[j]);
      }
      (*params)[seg.text] = std::move(rest);
      return true;
    }
    if (i >= decoded.size()) return false;
    if (seg.kind == Segment::kLiteral) {
      if (decoded[i] != seg.text) return false;
    } else {
      if (decoded[i].empty()) return false;
      (*params)[seg.text] = std::string(decoded[i]);
    }
  }
  return i == decoded.size();
}

bool Router::MoreSpecific(const Route& a, const Route& b) {
  size_t n = std::min(a.segments.size(), b.segments.size());
  for (size_t i = 0; i < n; ++i) {
    // kLiteral < kParam < kRest: a smaller kind is more specific.
    if (a.segments[i].kind != b.segments[i].kind) return a.segments[i].kind < b.segments[i].kind;
  }
  return a.segments.size() > b.segments.size();
}

Response Router::Dispatch(Request& req) const {
  req.route.clear();
  req.path_params.clear();
  std::string_view raw_path;
  if (!req.target.empty()) {
    raw_path = std::string_view(req.target).substr(0, req.target.find_first_of("?#"));
  } else {
    raw_path = req.path;
  }
  if (raw_path.empty() || raw_path[0] != '/') {
    return Response::Error(400, "invalid_target", "request target must start with '/'");
  }
  // Decode each raw segment once, so "%2F" stays inside its segment.
  std::vector<std::string> decoded_storage;
  for (std::string_view raw : SplitPath(raw_path)) {
    Result<std::string> d = PercentDecode(raw);
    if (!d.ok()) return Response::Error(d.status());
    decoded_storage.push_back(std::move(d).value());
  }
  std::vector<std::string_view> decoded(decoded_storage.begin(), decoded_storage.end());

  const Route* best = nullptr;
  const Route* best_get = nullptr;  // for HEAD without an explicit HEAD route
  std::map<std::string, std::string> best_params, best_get_params, params;
  std::set<std::string> allowed;
  for (const Route& route : routes_) {
    if (!Match(route, decoded, &params)) continue;
    allowed.insert(route.method);
    if (route.method == req.method) {
      if (best == nullptr || MoreSpecific(route, *best)) {
        best = &route;
        best_params = params;
      }
    } else if (req.method == "HEAD" && route.method == "GET") {
      if (best_get == nullptr || MoreSpecific(route, *best_get)) {
        best_get = &route;
        best_get_params = params;
      }
    }
  }
  if (best == nullptr && best_get != nullptr) {
    best = best_get;
    best_params = std::move(best_get_params);
  }
  if (best == nullptr) {
    if (allowed.empty()) {
      return Response::Error(404, "not_found", fmt::format("no such resource: {}", raw_path));
    }
    if (allowed.count("GET")) allowed.insert("HEAD");
    std::string allow;
    for (const std::string& m : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
    Response r = Response::Error(
        405, "method_not_allowed",
        fmt::format("method {} is not allowed here; allowed: {}", req.method, allow));
    r.AddHeader("Allow", allow);
    return r;
  }
  req.route = best->pattern;
  req.path_params = std::move(best_params);
  return best->handler(req);
}

std::vector<RouteInfo> Router::Routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const Route& r : routes_) out.push_back({r.method, r.pattern, r.method + " " + r.pattern});
  return out;
}

}  // namespace vouch::http
