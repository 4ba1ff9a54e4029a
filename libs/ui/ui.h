#pragma once

#include <string_view>

#include "http/router.h"
#include "ui/assets.h"

namespace vouch::ui {

// The web console served by vouchd. It uses only the public REST API (same origin), so this
// library only serves files: GET / (index.html) and GET /ui/{file} (scripts, styles, icons).
//
// Every answer carries a strict Content-Security-Policy (kContentSecurityPolicy: scripts and
// styles from this origin only, no inline code, no framing), Referrer-Policy: no-referrer and
// X-Frame-Options: DENY; the Server adds X-Content-Type-Options: nosniff. Files are revalidated
// on each use (Cache-Control: no-cache) against a strong ETag, so If-None-Match gets a 304 and an
// upgraded vouchd is picked up at once.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'";

// The asset at `path` (relative to ui/), nullptr when there is none.
const Asset* FindAsset(std::string_view path);

// Registers GET / and GET /ui/{file...}. The router must not already hold those patterns.
void AddRoutes(http::Router& router);

// The response for `asset` to a request (a 304 when If-None-Match matches its ETag).
http::Response ServeAsset(const Asset& asset, const http::Request& req);

}  // namespace vouch::ui
