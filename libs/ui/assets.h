#pragma once

#include <span>
#include <string_view>

namespace vouch::ui {

// One file of the web UI, embedded at build time from ui/ (see CMakeLists.txt). Static storage.
struct Asset {
  std::string_view path;          // relative to ui/: "index.html", "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
  std::string_view etag;  // strong validator, quoted: "\"<first 128 bits of SHA-256, hex>\""
};

// Every embedded asset, sorted by path.
std::span<const Asset> Assets();

}  // namespace vouch::ui
