#include "api/session_cookie.h"

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/secret.h"

namespace vouch::api {

std::string CookieValue(std::string_view header, std::string_view name) {
  // RFC 6265 section 5.4: "name=value" pairs separated by "; ". Be lenient about spaces.
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
    pos = end + 1;
  }
  return "";
}

std::string SessionSetCookie(std::string_view token, int64_t max_age_seconds) {
  return std::string(kSessionCookie) + "=" + std::string(token) + "; Path=/; Max-Age=" +
         std::to_string(max_age_seconds < 0 ? 0 : max_age_seconds) + "; Secure; HttpOnly; SameSite=Strict";
}

std::string ClearSessionSetCookie() {
  return std::string(kSessionCookie) + "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict";
}

std::string CsrfTokenFor(std::string_view session_token) {
  std::string input("vouch-csrf-v1");
  input.push_back('\0');
  input.append(session_token);
  crypto::Sha256Digest d = crypto::Sha256(input);
  return Base64UrlEncode(d);
}

bool CsrfTokenMatches(std::string_view session_token, std::string_view presented) {
  if (presented.empty()) return false;
  return crypto::ConstantTimeEquals(CsrfTokenFor(session_token), presented);
}

bool IsSafeMethod(std::string_view method) { return method == "GET" || method == "HEAD"; }

bool SameOrigin(std::string_view origin, std::string_view host) {
  if (host.empty()) return false;
  std::string want = "https://" + std::string(host);
  if (origin == want) return true;
  // A browser omits the default port from Origin; Host may carry it.
  if (host.size() > 4 && host.substr(host.size() - 4) == ":443") {
    return origin == "https://" + std::string(host.substr(0, host.size() - 4));
  }
  return false;
}

}  // namespace vouch::api
