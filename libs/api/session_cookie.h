#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vouch::api {

// Browser sessions (the web UI). The session token never reaches JavaScript: POST /sys/auth with
// {"cookie": true} answers with a Set-Cookie of kSessionCookie (HttpOnly; Secure; SameSite=Strict;
// the __Host- prefix pins it to this origin and Path=/) and a CSRF token in the body. A request
// authenticated by that cookie that changes state must carry the CSRF token in kCsrfHeader, and
// an Origin header, when present, must be this server's. Bearer tokens (CLI, API keys) are
// unaffected: they are never sent implicitly by a browser, so they need no CSRF check.
// All functions are pure and thread-safe.
inline constexpr std::string_view kSessionCookie = "__Host-vouch_session";
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

// Value of cookie `name` in a Cookie request header ("a=1; b=2"), "" when absent.
std::string CookieValue(std::string_view cookie_header, std::string_view name);

// Set-Cookie value that stores `token` for `max_age_seconds`.
std::string SessionSetCookie(std::string_view token, int64_t max_age_seconds);
// Set-Cookie value that deletes the session cookie.
std::string ClearSessionSetCookie();

// The CSRF token bound to a session token: base64url(SHA-256("vouch-csrf-v1\0" || token)).
// Unpredictable without the session token, which a cross-site page never sees.
std::string CsrfTokenFor(std::string_view session_token);
// Constant-time check of a presented CSRF token.
bool CsrfTokenMatches(std::string_view session_token, std::string_view presented);

// True for methods that must not change state (no CSRF token needed).
bool IsSafeMethod(std::string_view method);

// True when `origin` (an Origin header value) names the server reached through `host` (the Host
// header) over https.
bool SameOrigin(std::string_view origin, std::string_view host);

}  // namespace vouch::api
