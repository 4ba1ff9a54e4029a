#include "ui/ui.h"

#include <algorithm>

namespace vouch::ui {
namespace {

void AddSecurityHeaders(http::Response& r) {
  r.AddHeader("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.AddHeader("Referrer-Policy", "no-referrer");
  r.AddHeader("X-Frame-Options", "DENY");
  r.AddHeader("Cross-Origin-Opener-Policy", "same-origin");
  r.AddHeader("Cross-Origin-Resource-Policy", "same-origin");
}

// If-None-Match holds `etag` (a list of validators, or "*").
bool EtagMatches(std::string_view header, std::string_view etag) {
  if (header.empty()) return false;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view v = header.substr(pos, end - pos);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    if (v.substr(0, 2) == "W/") v.remove_prefix(2);  // weak comparison (RFC 9110 13.1.2)
    if (v == "*" || v == etag) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

const Asset* FindAsset(std::string_view path) {
  auto assets = Assets();
  auto it = std::find_if(assets.begin(), assets.end(), [&](const Asset& a) { return a.path == path; });
  return it == assets.end() ? nullptr : &*it;
}

http::Response ServeAsset(const Asset& asset, const http::Request& req) {
  http::Response r;
  if (EtagMatches(req.Header("If-None-Match"), asset.etag)) {
    r.status = 304;
    r.content_type.clear();
  } else {
    r = http::Response::Text(std::string(asset.body), std::string(asset.content_type));
  }
  r.AddHeader("ETag", std::string(asset.etag));
  r.AddHeader("Cache-Control", "no-cache");
  AddSecurityHeaders(r);
  return r;
}

void AddRoutes(http::Router& router) {
  router.Add("GET", "/", [](http::Request& req) {
    const Asset* index = FindAsset("index.html");
    if (index == nullptr) return http::Response::Error(404, "not_found", "this vouchd was built without the web UI");
    return ServeAsset(*index, req);
  });
  router.Add("GET", "/ui/{file...}", [](http::Request& req) {
    auto it = req.path_params.find("file");
    const Asset* a = it == req.path_params.end() ? nullptr : FindAsset(it->second);
    if (a == nullptr) {
      http::Response r = http::Response::Error(404, "not_found", "no such UI file");
      AddSecurityHeaders(r);
      return r;
    }
    return ServeAsset(*a, req);
  });
}

}  // namespace vouch::ui
