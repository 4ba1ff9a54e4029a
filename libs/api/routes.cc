#include "api/routes.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "api/heartbeat_batch.h"
#include "api/heartbeat_keys.h"
#include "api/master_key.h"
#include "api/openapi_embedded.h"
#include "api/reasons.h"
#include "api/session_cookie.h"
#include "attest/verdict.h"
#include "base/encoding.h"
#include "base/url_component.h"
#include "collateral/service.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "http/json_body.h"
#include "http/limits.h"
#include "pki/pem.h"
#include "workload/wire.h"

namespace vouch::api {
namespace {

using http::JsonBody;
using http::Request;
using http::Response;

// An error answer; every 503 (e.g. "busy": password hashing saturated, master_key_rotated on a
// member whose key was rotated by another) says when to come back. Every error answer of the API
// goes through here.
Response ErrorResponse(const Status& st) {
  Response resp = Response::Error(st);
  if (st.code() == StatusCode::kUnavailable) resp.AddHeader("Retry-After", "1");
  return resp;
}

using AuthedFn = std::function<Result<Response>(const Principal&, Request&)>;

// The caller's session token or API key: the Authorization bearer token, else the web UI's
// session cookie (see session_cookie.h).
struct Credentials {
  std::string token;
  bool from_cookie = false;
};

Result<Credentials> RequestCredentials(const Request& req) {
  std::string auth = req.Header("Authorization");
  static constexpr std::string_view kBearer = "Bearer ";
  if (!auth.empty()) {
    if (auth.size() <= kBearer.size() || !http::EqualsIgnoreCase(auth.substr(0, kBearer.size()), kBearer)) {
      return Unauthenticated("missing bearer token (Authorization: Bearer <token>)",
                             std::string(kUnauthenticated));
    }
    return Credentials{auth.substr(kBearer.size()), false};
  }
  std::string cookie = CookieValue(req.Header("Cookie"), kSessionCookie);
  // Only session tokens live in cookies; an API key there is refused like a missing one.
  if (cookie.rfind("vt_", 0) == 0) return Credentials{cookie, true};
  return Unauthenticated("missing bearer token (Authorization: Bearer <token>)",
                         std::string(kUnauthenticated));
}

// A cookie-authenticated request that changes state must come from this origin and carry the
// session's CSRF token (bearer tokens are never sent implicitly, so they need neither).
Result<Principal> AuthenticateRequest(Manager& m, const Request& req, std::string* token_out = nullptr) {
  VOUCH_ASSIGN_OR_RETURN(Credentials c, RequestCredentials(req));
  auto authenticated = m.Authenticate(c.token);
  if (!authenticated.ok()) {
    // A presented but invalid, expired or revoked token or key: counted per source and minute.
    if (authenticated.status().code() == StatusCode::kUnauthenticated) {
      m.AuditUnauthenticated(http::SourceOf(req.remote_address), c.token.rfind("vk_", 0) == 0 ? "auth.apikey" : "auth.token",
                             "", authenticated.status());
    }
    return authenticated.status();
  }
  Principal p = std::move(*authenticated);
  if (c.from_cookie && !IsSafeMethod(req.method)) {
    if (req.HasHeader("Origin") && !SameOrigin(req.Header("Origin"), req.Header("Host"))) {
      return PermissionDenied("cross-origin request refused", std::string(kCsrfFailed));
    }
    if (!CsrfTokenMatches(c.token, req.Header(kCsrfHeader))) {
      return PermissionDenied("a cookie session needs its X-CSRF-Token header to change state",
                              std::string(kCsrfFailed));
    }
  }
  if (token_out != nullptr) *token_out = std::move(c.token);
  return p;
}

// Authenticates, then authorises BEFORE the body is looked at, so that an unauthorised caller
// learns nothing from validation errors. The Manager checks the permission again.
http::Handler Authed(Manager& m, Permission perm, AuthedFn fn) {
  return [&m, perm, fn = std::move(fn)](Request& req) -> Response {
    auto p = AuthenticateRequest(m, req);
    if (!p.ok()) return ErrorResponse(p.status());
    Status allowed = Authorize(*p, perm);
    if (!allowed.ok()) {
      if (req.method != "GET") m.AuditRefusal(*p, req.method + " " + req.route, req.path.substr(0, 200), allowed);
      return ErrorResponse(allowed);
    }
    auto r = fn(*p, req);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kPermissionDenied && req.method != "GET") {
        m.AuditRefusal(*p, req.method + " " + req.route, req.path, r.status());
      }
      return ErrorResponse(r.status());
    }
    return std::move(*r);
  };
}

// Agent-only routes: the caller is a node authenticated by its client certificate (mutual TLS,
// verified against the node CA by the server). A bearer-token caller gets 403; no credentials 401.
using NodeFn = std::function<Result<Response>(const Principal&, Request&)>;
http::Handler NodeAuthed(Manager& m, NodeFn fn) {
  return [&m, fn = std::move(fn)](Request& req) -> Response {
    if (req.peer_cert_chain_der.empty()) {
      if (!req.Header("Authorization").empty()) {
        auto p = AuthenticateRequest(m, req);
        if (!p.ok()) return ErrorResponse(p.status());
        Status st =
            PermissionDenied("only node agents (mutual TLS with a node certificate) may call this",
                             std::string(kNodeIdentityRequired));
        m.AuditRefusal(*p, req.method + " " + req.route, req.path.substr(0, 200), st);
        return ErrorResponse(st);
      }
      return ErrorResponse(
          Unauthenticated("a node client certificate is required", std::string(kUnauthenticated)));
    }
    auto p = m.AuthenticateNode(req.peer_cert_chain_der.front());
    if (!p.ok()) return ErrorResponse(p.status());
    auto r = fn(*p, req);
    if (!r.ok()) return ErrorResponse(r.status());
    return std::move(*r);
  };
}

Result<std::vector<uint8_t>> Base64Field(JsonBody& b, std::string_view key, size_t max_len) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, b.RequiredString(key, max_len));
  auto bytes = Base64Decode(text);
  if (!bytes.ok())
    return InvalidArgument(std::string(key) + " is not valid base64", std::string(kInvalidBase64));
  return std::move(*bytes);
}

Result<NodeEnrollment> EnrollmentFrom(JsonBody& b, bool with_token) {
  NodeEnrollment e;
  if (with_token) {
    VOUCH_ASSIGN_OR_RETURN(e.join_token, b.RequiredString("join_token", 256));
  }
  VOUCH_ASSIGN_OR_RETURN(e.nonce_hex, b.RequiredString("nonce", 128));
  VOUCH_ASSIGN_OR_RETURN(e.public_key_der, Base64Field(b, "public_key", 4096));
  VOUCH_ASSIGN_OR_RETURN(auto platform, b.OptionalString("platform", 16));
  e.platform = platform.value_or("sgx");
  VOUCH_ASSIGN_OR_RETURN(e.evidence, Base64Field(b, "evidence", 128 * 1024));
  const nlohmann::json* info = b.Raw("info");
  if (info != nullptr && !info->is_null()) {
    if (!info->is_object() || info->dump().size() > 4096) {
      return InvalidArgument("info must be an object of at most 4 KiB", std::string(kInvalidInfo));
    }
    e.info = *info;
  }
  VOUCH_RETURN_IF_ERROR(b.Finish());
  return e;
}


// Routes callers reach without credentials: rate limited per source before anything else runs,
// and the source is known to the Manager for auditing refusals (ScopedRequestSource).
http::Handler Unauthenticated(Manager& m, std::shared_ptr<http::RateLimiter> limiter, http::Metrics* metrics,
                              http::Handler fn) {
  return [&m, limiter = std::move(limiter), metrics, fn = std::move(fn)](Request& req) -> Response {
    std::string source = http::SourceOf(req.remote_address);
    auto d = limiter->Take(http::RateLimitKey(source));
    if (!d.allowed) {
      Status st = ResourceExhausted("too many requests from " + source + "; retry after " +
                                        std::to_string(d.retry_after.count()) + " s",
                                    std::string(http::kRateLimited));
      m.AuditUnauthenticated(source, req.method + " " + req.route, "", st);
      if (metrics != nullptr) metrics->Increment("vouch_unauth_rate_limited_total", {{"route", req.route}});
      Response resp = ErrorResponse(st);
      resp.AddHeader("Retry-After", std::to_string(d.retry_after.count()));
      return resp;
    }
    ScopedRequestSource scope(std::move(source));
    return fn(req);
  };
}

// Bodies of POSTs that take no fields may be empty.
Result<JsonBody> Body(const Request& req) {
  if (req.body.empty()) return JsonBody::Parse("{}");
  return JsonBody::Parse(req.body);
}

Result<ListQuery> ListParams(const Request& req, std::initializer_list<const char*> filters) {
  ListQuery q;
  std::string limit = req.Query("limit");
  if (!limit.empty()) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(limit.c_str(), &end, 10);
    if (errno != 0 || end == limit.c_str() || *end != '\0' || v < 1 || v > 1000) {
      return InvalidArgument("limit must be an integer between 1 and 1000",
                             std::string(kInvalidLimit));
    }
    q.limit = v;
  }
  q.cursor = req.Query("cursor");
  for (const char* f : filters) {
    std::string v = req.Query(f);
    if (v.size() > 256)
      return InvalidArgument(std::string(f) + " filter is too long", std::string(kInvalidFilter));
    if (!v.empty()) q.filters[f] = v;
  }
  return q;
}

Result<Response> JsonOr(Result<json> r, unsigned status = 200) {
  if (!r.ok()) return r.status();
  return Response::Json(*r, status);
}

const std::string& Param(const Request& req, const char* name) {
  static const std::string kEmpty;
  auto it = req.path_params.find(name);
  return it == req.path_params.end() ? kEmpty : it->second;
}

Result<ZoneSpec> ZoneSpecFrom(JsonBody& b, bool with_name) {
  ZoneSpec s;
  if (with_name) {
    VOUCH_ASSIGN_OR_RETURN(s.name, b.RequiredString("name", 63));
  }
  VOUCH_ASSIGN_OR_RETURN(s.allow_sim, b.OptionalBool("allow_sim"));
  VOUCH_ASSIGN_OR_RETURN(s.min_tcb, b.OptionalString("min_tcb", 64));
  VOUCH_ASSIGN_OR_RETURN(s.tolerated_advisories, b.OptionalStringArray("tolerated_advisories", 100, 64));
  VOUCH_ASSIGN_OR_RETURN(auto approvals, b.OptionalInt("approvals_required", 1, 10));
  if (approvals) s.approvals_required = static_cast<int>(*approvals);
  VOUCH_ASSIGN_OR_RETURN(auto validity, b.OptionalInt("cert_validity_hours", 1, 24 * 397));
  if (validity) s.cert_validity_hours = static_cast<int>(*validity);
  VOUCH_ASSIGN_OR_RETURN(s.allow_debug, b.OptionalBool("allow_debug"));
  VOUCH_RETURN_IF_ERROR(b.Finish());
  return s;
}

bool IsLoopback(const std::string& remote) {
  return remote.rfind("127.", 0) == 0 || remote.rfind("[::1]", 0) == 0 || remote == "unix";
}

// ---- collateral (issue 14; docs/collateral.md)

// One PCCS v4 answer from the collateral service's cache (fetched on a miss): the body as the
// vendor served it, its issuer chain header, a Request-ID. Errors are vouch's JSON errors.
Response PccsAnswer(Manager& m, std::string_view kind, const std::string& key, const char* chain_header,
                    bool crl_as_pem = false) {
  collateral::Service* svc = m.collateral_service();
  if (svc == nullptr) {
    return ErrorResponse(NotFound("the collateral service is not enabled on this manager",
                                    std::string(kCollateralDisabled)));
  }
  auto item = svc->GetForServing(kind, key, /*fetch=*/true);
  if (!item.ok()) return ErrorResponse(item.status());
  Response r;
  r.content_type = item->content_type;
  r.body = std::move(item->body);
  if (crl_as_pem) {
    auto crl = crypto::CrlFromDerOrPem(AsBytes(r.body));
    auto pem = crl.ok() ? crypto::CrlToPem(crl->get()) : Result<std::string>(crl.status());
    if (!pem.ok())
      return ErrorResponse(Internal("stored CRL cannot be re-encoded", std::string(kInternal)));
    r.body = std::move(*pem);
    r.content_type = "application/x-pem-file";
  }
  if (chain_header != nullptr && !item->issuer_chain_pem.empty()) {
    r.AddHeader(chain_header, UrlEncodeComponent(item->issuer_chain_pem));
  }
  r.AddHeader("Request-ID", HexEncode(crypto::RandomBytes(16)));
  return r;
}

// PCCS parameter checks: update=early|standard (the service's own setting decides which is
// fetched); tcbEvaluationDataNumber is not supported by a PCCS either.
Status CheckPccsUpdate(const Request& req) {
  auto u = req.query.find("update");
  if (u != req.query.end() && u->second != "early" && u->second != "standard") {
    return InvalidArgument("update must be early or standard", std::string(kInvalidUpdate));
  }
  return Status();
}

Result<std::string> PccsFmspc(const Request& req) {
  std::string fmspc = req.Query("fmspc");
  if (fmspc.size() != 12 || !std::all_of(fmspc.begin(), fmspc.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    return InvalidArgument("fmspc must be 12 hex digits", std::string(kInvalidFmspc));
  }
  std::transform(fmspc.begin(), fmspc.end(), fmspc.begin(), [](unsigned char c) { return std::tolower(c); });
  VOUCH_RETURN_IF_ERROR(CheckPccsUpdate(req));
  return fmspc;
}

// What a PCCS `crl?uri=` may name (DCAP pccs crlController's rule): "root" for
// https://*certificates.trustedservices.intel.com/IntelSGXRootCA.*, "processor" / "platform" for
// https://*api.trustedservices.intel.com/sgx/certification/vN/pckcrl?ca=...; nothing else.
std::optional<std::string> PccsCrlUriTarget(std::string_view uri) {
  static constexpr std::string_view kHttps = "https://";
  if (uri.size() > 2048 || uri.substr(0, kHttps.size()) != kHttps) return std::nullopt;
  uri.remove_prefix(kHttps.size());
  const size_t slash = uri.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string host(uri.substr(0, slash));
  std::string path(uri.substr(slash));
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  std::transform(path.begin(), path.end(), path.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!std::all_of(host.begin(), host.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; })) {
    return std::nullopt;
  }
  auto ends_with = [&host](std::string_view suffix) {
    return host.size() >= suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("certificates.trustedservices.intel.com") && path.rfind("/intelsgxrootca.", 0) == 0) return "root";
  static constexpr std::string_view kPck = "/sgx/certification/v";
  if (!ends_with("api.trustedservices.intel.com") || path.rfind(kPck, 0) != 0) return std::nullopt;
  const size_t q = path.find("/pckcrl?", kPck.size());
  if (q == std::string::npos || q == kPck.size() ||
      !std::all_of(path.begin() + static_cast<long>(kPck.size()), path.begin() + static_cast<long>(q),
                   [](unsigned char c) { return std::isdigit(c); })) {
    return std::nullopt;
  }
  for (const char* ca : {"processor", "platform"}) {
    if (path.find(std::string("ca=") + ca, q) != std::string::npos) return std::string(ca);
  }
  return std::nullopt;
}

// POST /api/v1/collateral/import: {"files": {name: base64}, "origin"?}. Names are plain file
// names; a sim vendor's private file is refused, never stored.
constexpr size_t kMaxImportFiles = 2048;
Status ImportFilesFrom(const json& body, std::map<std::string, std::string>* files, std::string* origin) {
  if (!body.is_object())
    return InvalidArgument("the body must be a JSON object", std::string(kInvalidJson));
  for (const auto& [k, v] : body.items()) {
    if (k == "origin") {
      if (!v.is_string() || v.get<std::string>().size() > 256) {
        return InvalidArgument("origin must be a string of at most 256 characters",
                               std::string(kInvalidOrigin));
      }
      *origin = v.get<std::string>();
    } else if (k != "files") {
      return InvalidArgument("unknown field '" + k.substr(0, 64) + "'", std::string(kUnknownField));
    }
  }
  auto f = body.find("files");
  if (f == body.end() || !f->is_object() || f->empty() || f->size() > kMaxImportFiles) {
    return InvalidArgument(
        "files must be an object of 1.." + std::to_string(kMaxImportFiles) + " {name: base64}",
        std::string(kInvalidFiles));
  }
  for (const auto& [name, v] : f->items()) {
    bool ok_name = !name.empty() && name.size() <= 255 && name[0] != '.' &&
                   std::all_of(name.begin(), name.end(), [](unsigned char c) {
                     return std::isalnum(c) || c == '.' || c == '_' || c == '-';
                   });
    if (!ok_name)
      return InvalidArgument("file names are plain names ([A-Za-z0-9._-], at most 255)",
                             std::string(kInvalidFileName));
    if (name == "sim-secrets.json") {
      return InvalidArgument(
          "sim-secrets.json holds a sim vendor's private keys: not collateral, never imported",
          std::string(kSecretFileRefused));
    }
    if (!v.is_string())
      return InvalidArgument("files." + name + " must be a base64 string",
                             std::string(kInvalidFiles));
    auto bytes = Base64Decode(v.get<std::string>());
    if (!bytes.ok())
      return InvalidArgument("files." + name + " is not valid base64", std::string(kInvalidFiles));
    (*files)[name] = ToString(*bytes);
  }
  return Status();
}

// POST /api/v1/evidence/verify: {"evidence": base64, "platform"?, "at"?}.
struct VerifyRequest {
  std::vector<uint8_t> evidence;
  std::string platform;
  std::optional<TimePoint> at;
};
Result<VerifyRequest> VerifyRequestFrom(JsonBody& b) {
  VerifyRequest v;
  VOUCH_ASSIGN_OR_RETURN(std::string evidence, b.RequiredString("evidence", 4 * 128 * 1024 / 3 + 4));
  auto bytes = Base64Decode(evidence);
  if (!bytes.ok() || bytes->empty()) {
    return InvalidArgument("evidence must be non-empty standard base64",
                           std::string(kInvalidEvidence));
  }
  v.evidence = std::move(*bytes);
  VOUCH_ASSIGN_OR_RETURN(auto platform, b.OptionalString("platform", 16));
  if (platform) {
    if (*platform != "sgx" && *platform != "tdx" && *platform != "sev-snp") {
      return InvalidArgument("platform must be sgx, tdx or sev-snp", std::string(kInvalidPlatform));
    }
    v.platform = *platform;
  }
  VOUCH_ASSIGN_OR_RETURN(auto at, b.OptionalString("at", 64));
  if (at) {
    auto t = ParseRfc3339(*at);
    if (!t.ok()) return InvalidArgument("at must be an RFC 3339 time", std::string(kInvalidAt));
    v.at = *t;
  }
  VOUCH_RETURN_IF_ERROR(b.Finish());
  return v;
}

// A string field that may also be null (PATCH: absent = unchanged, null = clear): the outer
// optional says whether it was given, the inner one holds the string or nothing (null).
Result<std::optional<std::optional<std::string>>> NullableString(JsonBody& b, const char* key, size_t max_len) {
  const bool is_null = b.json().contains(key) && b.json().at(key).is_null();
  VOUCH_ASSIGN_OR_RETURN(auto v, b.OptionalString(key, max_len));
  using Out = std::optional<std::optional<std::string>>;
  if (is_null) return Out(std::optional<std::string>());
  if (!v) return Out();
  return Out(std::move(v));
}

// POST and PATCH /api/v1/registries: the secret travels in the body only (never in a URL).
Result<RegistrySpec> RegistrySpecFrom(JsonBody& b, bool create) {
  RegistrySpec s;
  if (create) {
    VOUCH_ASSIGN_OR_RETURN(s.name, b.RequiredString("name", 63));
    VOUCH_ASSIGN_OR_RETURN(s.url, b.RequiredString("url", 2048));
  } else {
    VOUCH_ASSIGN_OR_RETURN(s.name, b.OptionalString("name", 63));
    VOUCH_ASSIGN_OR_RETURN(s.url, b.OptionalString("url", 2048));
  }
  VOUCH_ASSIGN_OR_RETURN(s.ca_pem, NullableString(b, "ca_pem", 256 * 1024));
  VOUCH_ASSIGN_OR_RETURN(s.username, NullableString(b, "username", 256));
  VOUCH_ASSIGN_OR_RETURN(s.password, NullableString(b, "password", 8192));
  VOUCH_ASSIGN_OR_RETURN(s.token, NullableString(b, "token", 8192));
  VOUCH_ASSIGN_OR_RETURN(s.insecure, b.OptionalBool("insecure"));
  VOUCH_RETURN_IF_ERROR(b.Finish());
  return s;
}

}  // namespace

std::string_view OpenApiDocument() { return kOpenApiJson; }

http::Router BuildRouter(Manager& m, http::Metrics* metrics, const RouterOptions& options) {
  http::Router r;
  auto limiter = std::make_shared<http::RateLimiter>(http::RateLimiter::Options{
      options.unauth_rate_per_second, options.unauth_burst, options.unauth_max_sources});
  auto limited = [&m, limiter, metrics](http::Handler fn) { return Unauthenticated(m, limiter, metrics, std::move(fn)); };
  if (metrics != nullptr) {
    metrics->DeclareCounter("vouch_unauth_rate_limited_total",
                            "Requests to unauthenticated routes refused with 429 rate_limited, by route");
    metrics->AddCounterCallback("vouch_certificates_issued_total", "Certificates issued by this instance", {},
                              [&m] { return static_cast<double>(m.GetStats().certificates_issued); });
    metrics->AddCounterCallback("vouch_instances_pruned_total",
                                "Stopped instances deleted after the retention period by this process", {},
                                [&m] { return static_cast<double>(m.InstancesPruned()); });
    metrics->AddGaugeCallback("vouch_tasks_pending", "Approval tasks waiting for a decision", {},
                              [&m] { return static_cast<double>(m.GetStats().pending_tasks); });
    // Heartbeats (docs/agent.md "Heartbeats"): every rejection reason listed from the start.
    metrics->DeclareCounter("vouch_heartbeats_accepted_total", "Workload heartbeats recorded");
    metrics->Increment("vouch_heartbeats_accepted_total", {}, 0);
    metrics->DeclareCounter("vouch_heartbeats_rejected_total",
                            "Workload heartbeats refused, by reason (bad_mac, bad_signature, replayed, ...)");
    for (std::string_view reason : kHeartbeatRejections) {
      metrics->Increment("vouch_heartbeats_rejected_total", {{"reason", std::string(reason)}}, 0);
    }
    metrics->AddGaugeCallback("vouch_heartbeat_key_cache_entries", "Instances whose heartbeat MAC key is cached", {},
                              [&m] { return static_cast<double>(m.HeartbeatKeysCached()); });
    if (m.BackupsEnabled()) {
      // docs/operations.md "Backups taken by the server": -1 while no verified backup is known.
      metrics->AddGaugeCallback("vouch_backup_newest_age_seconds",
                                "Seconds since the newest verified backup in the backup folder was taken (-1: none)", {},
                                [&m] {
                                  const auto s = m.GetBackupStats();
                                  if (!s.newest_good) return -1.0;
                                  const auto age = m.clock().Now() - *s.newest_good;
                                  return std::max(0.0, std::chrono::duration<double>(age).count());
                                });
      for (const char* result : {"ok", "failed"}) {
        metrics->AddCounterCallback("vouch_backups_total", "Backups taken by this process into the backup folder, by result",
                                    {{"result", result}}, [&m, ok = std::string(result) == "ok"] {
                                      const auto s = m.GetBackupStats();
                                      return static_cast<double>(ok ? s.ok : s.failed);
                                    });
      }
    }
    // One series per collateral folder: alert well before it (docs/agent.md "Collateral refresh").
    // The folders are fixed for the process's life; only their contents are reloaded.
    const auto folders = m.CollateralValidUntil();
    for (size_t i = 0; i < folders.size(); ++i) {
      metrics->AddGaugeCallback(
          "vouch_collateral_valid_until_seconds",
          "Unix time at which the first piece of a collateral folder (TCB Info, QE Identity, CRLs) expires",
          {{"dir", folders[i].first}}, [&m, i] {
            const auto now = m.CollateralValidUntil();
            if (i >= now.size()) return 0.0;
            const TimePoint t = now[i].second;
            return t == TimePoint::max() || t == TimePoint::min() ? 0.0 : static_cast<double>(ToUnixSeconds(t));
          });
    }
  }

  // ---- service endpoints
  r.Add("GET", "/healthz", [](Request&) { return Response::Text("ok\n"); });
  r.Add("GET", "/readyz", [&m](Request&) {
    Status st = m.db().Ping();
    if (!st.ok())
      return ErrorResponse(
          Unavailable("store not ready: " + st.message(), std::string(kNotReady)));
    // Another member rotated the master key and this one does not hold the new key yet
    // (docs/custody.md "Online rotation"): sealing and unsealing answer 503 until it does.
    auto current = m.MasterKeyCurrent();
    if (current.ok() && !*current) {
      return ErrorResponse(Unavailable("this member does not hold the store's master key (rotated by another member)",
                                       std::string(kMasterKeyRotated)));
    }
    return Response::Text("ready\n");
  });
  r.Add("GET", "/metrics", [&m, metrics](Request& req) {
    if (!IsLoopback(req.remote_address)) {
      auto p = AuthenticateRequest(m, req);
      if (!p.ok()) return ErrorResponse(p.status());
    }
    if (metrics == nullptr) return Response::Text("");
    return Response::Text(metrics->Render(), std::string(http::Metrics::kContentType));
  });
  r.Add("GET", "/api/v1/openapi.json", [](Request&) {
    return Response::Text(std::string(OpenApiDocument()), "application/json");
  });

  // ---- auth
  r.Add("POST", "/api/v1/sys/auth", limited([&m](Request& req) -> Response {
    auto run = [&]() -> Result<Response> {
      VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
      VOUCH_ASSIGN_OR_RETURN(std::string user, b.RequiredString("username", 256));
      VOUCH_ASSIGN_OR_RETURN(std::string password, b.RequiredString("password", 1024));
      VOUCH_ASSIGN_OR_RETURN(auto cookie, b.OptionalBool("cookie"));
      VOUCH_RETURN_IF_ERROR(b.Finish());
      VOUCH_ASSIGN_OR_RETURN(json session, m.Login(user, password));
      if (!cookie.value_or(false)) return Response::Json(session);
      // Browser login: the token goes into an HttpOnly cookie, never into the body.
      std::string token = session["token"].get<std::string>();
      session.erase("token");
      session["csrf_token"] = CsrfTokenFor(token);
      Response resp = Response::Json(session);
      resp.AddHeader("Set-Cookie", SessionSetCookie(token, m.options().session_ttl.count()));
      return resp;
    };
    auto res = run();
    return res.ok() ? std::move(*res) : ErrorResponse(res.status());
  }));
  r.Add("DELETE", "/api/v1/sys/auth", [&m](Request& req) -> Response {
    std::string token;
    auto p = AuthenticateRequest(m, req, &token);
    if (!p.ok()) return ErrorResponse(p.status());
    Status st = m.Logout(*p, token);
    if (!st.ok()) return ErrorResponse(st);
    Response resp = Response::NoContent();
    if (!req.HasHeader("Authorization")) resp.AddHeader("Set-Cookie", ClearSessionSetCookie());
    return resp;
  });
  r.Add("GET", "/api/v1/sys/whoami", [&m](Request& req) -> Response {
    std::string token;
    auto p = AuthenticateRequest(m, req, &token);
    if (!p.ok()) return ErrorResponse(p.status());
    json who = m.WhoAmI(*p);
    // A reloaded UI page gets its CSRF token back here (same-origin reads only: no CORS).
    if (!req.HasHeader("Authorization")) who["csrf_token"] = CsrfTokenFor(token);
    return Response::Json(who);
  });

  // ---- zones
  r.Add("POST", "/api/v1/zones", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(ZoneSpec spec, ZoneSpecFrom(b, true));
          return JsonOr(m.CreateZone(p, spec), 201);
        }));
  r.Add("GET", "/api/v1/zones", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {}));
          return JsonOr(m.ListZones(p, q));
        }));
  r.Add("GET", "/api/v1/zones/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetZone(p, Param(req, "id")));
        }));
  r.Add("PATCH", "/api/v1/zones/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(ZoneSpec spec, ZoneSpecFrom(b, false));
          return JsonOr(m.UpdateZone(p, Param(req, "id"), spec));
        }));
  // The CA certificate and CRL are public: relying parties fetch them without credentials.
  r.Add("GET", "/api/v1/zones/{id}/ca", [&m](Request& req) {
    auto pem = m.ZoneCaPem(Param(req, "id"));
    if (!pem.ok()) return ErrorResponse(pem.status());
    Response resp = Response::Text(*pem, "application/x-pem-file");
    resp.headers.emplace_back("Cache-Control", "public, max-age=300");
    return resp;
  });
  // Zone CA rotation (manager_ca_rotation.cc): the bundle of roots to trust across a switch is
  // public like the CA; ?ca=<zone CA id> on the CRL route serves that root's CRL (retired or next).
  r.Add("GET", "/api/v1/zones/{id}/ca/bundle", [&m](Request& req) {
    auto pem = m.ZoneCaBundlePem(Param(req, "id"));
    if (!pem.ok()) return ErrorResponse(pem.status());
    Response resp = Response::Text(*pem, "application/x-pem-file");
    resp.headers.emplace_back("Cache-Control", "public, max-age=300");
    return resp;
  });
  r.Add("GET", "/api/v1/zones/{id}/cas", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.ListZoneCas(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/zones/{id}/ca/rotate", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.RotateZoneCa(p, Param(req, "id")), 202);
        }));
  r.Add("POST", "/api/v1/zones/{id}/ca/activate", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.ActivateZoneCa(p, Param(req, "id")));
        }));
  r.Add("GET", "/api/v1/zones/{id}/crl", [&m](Request& req) {
    std::string format = req.Query("format");
    if (!format.empty() && format != "der" && format != "pem") {
      return ErrorResponse(
          InvalidArgument("format must be der or pem", std::string(kInvalidFormat)));
    }
    std::string ca = req.Query("ca");
    if (ca.size() > 64) {
      return ErrorResponse(InvalidArgument("ca must be a zone CA id", std::string(kInvalidFormat)));
    }
    auto der = ca.empty() ? m.ZoneCrl(Param(req, "id")) : m.ZoneCaCrl(Param(req, "id"), ca);
    if (!der.ok()) return ErrorResponse(der.status());
    Response resp;
    if (format == "pem") {
      resp = Response::Text(pki::DerToPem("X509 CRL", *der), "application/x-pem-file");
    } else {
      resp = Response::Text(std::string(der->begin(), der->end()), "application/pkix-crl");
    }
    resp.headers.emplace_back("Cache-Control", "no-cache");
    return resp;
  });
  r.Add("POST", "/api/v1/zones/{id}/join-tokens", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_ASSIGN_OR_RETURN(auto ttl, b.OptionalInt("ttl_seconds", 60, 30 * 86400));
          VOUCH_ASSIGN_OR_RETURN(auto uses, b.OptionalInt("uses", 1, 10000));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.CreateJoinToken(p, Param(req, "id"), ttl.value_or(3600), uses.value_or(1)), 201);
        }));
  r.Add("GET", "/api/v1/zones/{id}/join-tokens", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {}));
          return JsonOr(m.ListJoinTokens(p, Param(req, "id"), q));
        }));
  // Node identities (docs/policy.md, "Node identity"): adding one opens an approval task.
  r.Add("GET", "/api/v1/zones/{id}/node-identities", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.ListNodeIdentities(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/zones/{id}/node-identities", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          const nlohmann::json* rule = b.Raw("rule");
          if (rule == nullptr || !rule->is_object()) {
            return InvalidArgument(
                "rule must be an object, e.g. {\"platform\": \"sgx\", \"mrenclave\": \"...\"}",
                std::string(policy::kInvalidRule));
          }
          nlohmann::json copy = *rule;
          VOUCH_ASSIGN_OR_RETURN(auto note, b.OptionalString("note", 200));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.AddNodeIdentity(p, Param(req, "id"), copy, note.value_or("")), 201);
        }));
  r.Add("DELETE", "/api/v1/zones/{id}/node-identities/{identity}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.RemoveNodeIdentity(p, Param(req, "id"), Param(req, "identity")));
        }));

  // ---- users and API keys
  r.Add("POST", "/api/v1/users", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(std::string name, b.RequiredString("name", 63));
          VOUCH_ASSIGN_OR_RETURN(std::string role, b.RequiredString("role", 16));
          VOUCH_ASSIGN_OR_RETURN(std::string password, b.RequiredString("password", 1024));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.CreateUser(p, name, role, password), 201);
        }));
  r.Add("GET", "/api/v1/users", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {}));
          return JsonOr(m.ListUsers(p, q));
        }));
  r.Add("GET", "/api/v1/users/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetUser(p, Param(req, "id")));
        }));
  r.Add("PATCH", "/api/v1/users/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(auto role, b.OptionalString("role", 16));
          VOUCH_ASSIGN_OR_RETURN(auto password, b.OptionalString("password", 1024));
          VOUCH_ASSIGN_OR_RETURN(auto disabled, b.OptionalBool("disabled"));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.UpdateUser(p, Param(req, "id"), role, password, disabled));
        }));
  r.Add("DELETE", "/api/v1/users/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_RETURN_IF_ERROR(m.DeleteUser(p, Param(req, "id")));
          return Response::NoContent();
        }));
  r.Add("POST", "/api/v1/apikeys", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(std::string name, b.RequiredString("name", 63));
          VOUCH_ASSIGN_OR_RETURN(auto days, b.OptionalInt("expires_in_days", 1, 3650));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.CreateApiKey(p, name, days), 201);
        }));
  r.Add("GET", "/api/v1/apikeys", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {}));
          return JsonOr(m.ListApiKeys(p, q));
        }));
  r.Add("DELETE", "/api/v1/apikeys/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_RETURN_IF_ERROR(m.DeleteApiKey(p, Param(req, "id")));
          return Response::NoContent();
        }));

  // ---- apps
  r.Add("POST", "/api/v1/apps", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(std::string name, b.RequiredString("name", 63));
          VOUCH_ASSIGN_OR_RETURN(std::string zone, b.RequiredString("zone", 128));
          VOUCH_ASSIGN_OR_RETURN(auto domains, b.OptionalStringArray("domains", 100, 253));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.CreateApp(p, name, zone, domains.value_or(std::vector<std::string>{})), 201);
        }));
  r.Add("GET", "/api/v1/apps", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"zone"}));
          return JsonOr(m.ListApps(p, q));
        }));
  r.Add("GET", "/api/v1/apps/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetApp(p, Param(req, "id")));
        }));
  r.Add("DELETE", "/api/v1/apps/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_RETURN_IF_ERROR(m.DeleteApp(p, Param(req, "id")));
          return Response::NoContent();
        }));
  r.Add("POST", "/api/v1/apps/{id}/domains", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(std::string domain, b.RequiredString("domain", 253));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.AddAppDomain(p, Param(req, "id"), domain), 202);
        }));
  r.Add("DELETE", "/api/v1/apps/{id}/domains/{domain}", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.RemoveAppDomain(p, Param(req, "id"), Param(req, "domain")));
        }));
  r.Add("PATCH", "/api/v1/apps/{id}", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          AppUpdate u;
          VOUCH_ASSIGN_OR_RETURN(u.input_registry, NullableString(b, "input_registry", 128));
          VOUCH_ASSIGN_OR_RETURN(u.output_registry, NullableString(b, "output_registry", 128));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.UpdateApp(p, Param(req, "id"), u));
        }));
  r.Add("POST", "/api/v1/apps/{id}/signing-key/rotate", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.RotateAppSigningKey(p, Param(req, "id")), 202);
        }));

  // ---- registries (admin manages; members and approvers read: the Manager refuses viewers)
  r.Add("POST", "/api/v1/registries", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(RegistrySpec spec, RegistrySpecFrom(b, true));
          return JsonOr(m.CreateRegistry(p, spec), 201);
        }));
  r.Add("GET", "/api/v1/registries", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {}));
          return JsonOr(m.ListRegistries(p, q));
        }));
  r.Add("GET", "/api/v1/registries/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetRegistry(p, Param(req, "id")));
        }));
  r.Add("PATCH", "/api/v1/registries/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(RegistrySpec spec, RegistrySpecFrom(b, false));
          return JsonOr(m.UpdateRegistry(p, Param(req, "id"), spec));
        }));
  r.Add("DELETE", "/api/v1/registries/{id}", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_RETURN_IF_ERROR(m.DeleteRegistry(p, Param(req, "id")));
          return Response::NoContent();
        }));

  // ---- conversion jobs (docs/convert.md "Server-side conversion"; members create and cancel)
  r.Add("POST", "/api/v1/conversions", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          ConversionSpec s;
          VOUCH_ASSIGN_OR_RETURN(s.app, b.RequiredString("app", 128));
          VOUCH_ASSIGN_OR_RETURN(s.input_image, b.RequiredString("input_image", 512));
          VOUCH_ASSIGN_OR_RETURN(s.output_image, b.RequiredString("output_image", 512));
          VOUCH_ASSIGN_OR_RETURN(auto input_registry, b.OptionalString("input_registry", 128));
          VOUCH_ASSIGN_OR_RETURN(auto output_registry, b.OptionalString("output_registry", 128));
          const nlohmann::json* conversion_options = b.Raw("options");  // checked by convert::SettingsFromJson
          VOUCH_RETURN_IF_ERROR(b.Finish());
          s.input_registry = input_registry.value_or("");
          s.output_registry = output_registry.value_or("");
          if (conversion_options != nullptr) s.options = *conversion_options;
          return JsonOr(m.CreateConversion(p, s), 202);
        }));
  r.Add("GET", "/api/v1/conversions", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"state", "app"}));
          return JsonOr(m.ListConversions(p, q));
        }));
  r.Add("GET", "/api/v1/conversions/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetConversion(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/conversions/{id}/cancel", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.CancelConversion(p, Param(req, "id")), 202);
        }));

  // ---- builds and tasks
  r.Add("POST", "/api/v1/builds", Authed(m, Permission::kWrite, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          BuildSpec s;
          VOUCH_ASSIGN_OR_RETURN(s.app, b.RequiredString("app", 128));
          VOUCH_ASSIGN_OR_RETURN(s.mrenclave, b.RequiredString("mrenclave", 64));
          VOUCH_ASSIGN_OR_RETURN(s.mrsigner, b.RequiredString("mrsigner", 64));
          VOUCH_ASSIGN_OR_RETURN(s.isvprodid, b.RequiredInt("isvprodid", 0, 65535));
          VOUCH_ASSIGN_OR_RETURN(s.isvsvn, b.RequiredInt("isvsvn", 0, 65535));
          VOUCH_ASSIGN_OR_RETURN(auto debug, b.OptionalBool("debug"));
          VOUCH_ASSIGN_OR_RETURN(auto image_ref, b.OptionalString("image_ref", 512));
          VOUCH_ASSIGN_OR_RETURN(auto image_digest, b.OptionalString("image_digest", 128));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          s.debug = debug.value_or(false);
          s.image_ref = image_ref.value_or("");
          s.image_digest = image_digest.value_or("");
          return JsonOr(m.CreateBuild(p, s), 201);
        }));
  r.Add("GET", "/api/v1/builds", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"app", "status"}));
          return JsonOr(m.ListBuilds(p, q));
        }));
  r.Add("GET", "/api/v1/builds/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetBuild(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/builds/{id}/revoke", Authed(m, Permission::kApprove, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_ASSIGN_OR_RETURN(auto reason, b.OptionalString("reason", 1000));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.RevokeBuild(p, Param(req, "id"), reason.value_or("")));
        }));
  r.Add("GET", "/api/v1/tasks", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"status"}));
          return JsonOr(m.ListTasks(p, q));
        }));
  r.Add("GET", "/api/v1/tasks/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetTask(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/tasks/{id}/approve", Authed(m, Permission::kApprove, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.ApproveTask(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/tasks/{id}/deny", Authed(m, Permission::kApprove, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(std::string reason, b.RequiredString("reason", 1000));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.DenyTask(p, Param(req, "id"), reason));
        }));

  // ---- certificates
  // Agents (mTLS, CSR + locally verified report body) or, without a client certificate, an admin
  // issuing by hand for an approved build.
  http::Handler manual = Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
    VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
    VOUCH_ASSIGN_OR_RETURN(std::string build, b.RequiredString("build_id", 128));
    VOUCH_ASSIGN_OR_RETURN(std::string csr, b.RequiredString("csr", 64 * 1024));
    VOUCH_RETURN_IF_ERROR(b.Finish());
    return JsonOr(m.IssueManual(p, build, csr), 201);
  });
  http::Handler by_agent = NodeAuthed(m, [&m](const Principal& p, Request& req) -> Result<Response> {
    VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
    VOUCH_ASSIGN_OR_RETURN(std::string csr, b.RequiredString("csr", 64 * 1024));
    VOUCH_ASSIGN_OR_RETURN(auto report, Base64Field(b, "report_body", 1024));
    VOUCH_ASSIGN_OR_RETURN(auto instance, b.OptionalString("instance_id", 64));
    VOUCH_RETURN_IF_ERROR(b.Finish());
    return JsonOr(m.IssueForWorkload(p, csr, report, instance.value_or("")), 201);
  });
  r.Add("POST", "/api/v1/certificates", [manual, by_agent](Request& req) -> Response {
    return req.peer_cert_chain_der.empty() ? manual(req) : by_agent(req);
  });
  r.Add("GET", "/api/v1/certificates", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"app", "zone", "status"}));
          return JsonOr(m.ListCertificates(p, q));
        }));
  r.Add("GET", "/api/v1/certificates/counts", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          int64_t days = 7;
          if (std::string d = req.Query("expiring_within_days"); !d.empty()) {
            auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), days);
            if (ec != std::errc() || end != d.data() + d.size()) {
              return InvalidArgument("expiring_within_days must be an integer between 1 and 365",
                                     std::string(kInvalidFilter));
            }
          }
          return JsonOr(m.CertificateCounts(p, days));
        }));
  r.Add("GET", "/api/v1/certificates/{serial}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetCertificate(p, Param(req, "serial")));
        }));
  r.Add("POST", "/api/v1/certificates/{serial}/revoke", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_ASSIGN_OR_RETURN(auto reason, b.OptionalString("reason", 1000));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.RevokeCertificate(p, Param(req, "serial"), reason.value_or("")));
        }));

  // ---- nodes and instances
  r.Add("GET", "/api/v1/nodes", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"zone"}));
          return JsonOr(m.ListNodes(p, q));
        }));
  r.Add("GET", "/api/v1/nodes/{id}", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          return JsonOr(m.GetNode(p, Param(req, "id")));
        }));
  r.Add("POST", "/api/v1/nodes/{id}/deactivate", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.DeactivateNode(p, Param(req, "id")));
        }));
  // Node provisioning: a fresh nonce, then evidence bound to the node key and that nonce.
  r.Add("POST", "/api/v1/nodes/nonce", limited([&m](Request&) -> Response {
    auto n = m.CreateNodeNonce();
    if (!n.ok()) return ErrorResponse(n.status());
    return Response::Json(*n, 201);
  }));
  r.Add("POST", "/api/v1/nodes", limited([&m](Request& req) -> Response {
    auto run = [&]() -> Result<Response> {
      VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
      VOUCH_ASSIGN_OR_RETURN(NodeEnrollment e, EnrollmentFrom(b, true));
      return JsonOr(m.EnrollNode(nullptr, e), 201);
    };
    auto res = run();
    return res.ok() ? std::move(*res) : ErrorResponse(res.status());
  }));
  r.Add("POST", "/api/v1/nodes/renew", NodeAuthed(m, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(NodeEnrollment e, EnrollmentFrom(b, false));
          return JsonOr(m.EnrollNode(&p, e), 201);
        }));
  r.Add("POST", "/api/v1/heartbeats", NodeAuthed(m, [&m, metrics](const Principal& p, Request& req) -> Result<Response> {
          // Depth- and size-limited like every body, read from the parser's events straight into
          // heartbeats (api/heartbeat_batch.h: the same checks and answers as the document's).
          VOUCH_ASSIGN_OR_RETURN(HeartbeatBatch batch, ParseHeartbeatBatch(req.body));
          const json& node_info = batch.node_info;
          const json& refusals = batch.refusals;
          const std::vector<Heartbeat>& hbs = batch.heartbeats;
          VOUCH_ASSIGN_OR_RETURN(json answer, m.IngestHeartbeats(p, node_info, hbs));
          if (metrics != nullptr) {
            // Each heartbeat counted once, by its final result (docs/agent.md "Heartbeats").
            metrics->Increment("vouch_heartbeats_accepted_total", {}, static_cast<double>(answer.value("accepted", int64_t{0})));
            for (const json& rj : answer.value("rejected", json::array())) {
              metrics->Increment("vouch_heartbeats_rejected_total", {{"reason", rj.value("code", std::string())}});
            }
          }
          VOUCH_RETURN_IF_ERROR(m.RecordAgentRefusals(p, refusals));
          return Response::Json(answer);
        }));
  r.Add("GET", "/api/v1/instances", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"app", "node", "status"}));
          return JsonOr(m.ListInstances(p, q));
        }));
  // The dashboard's counts (api/instance_counts.h), reused for up to 5 s.
  r.Add("GET", "/api/v1/instances/counts", Authed(m, Permission::kRead, [&m](const Principal& p, Request&) -> Result<Response> {
          return JsonOr(m.InstanceCounts(p));
        }));

  // ---- audit
  r.Add("GET", "/api/v1/audit", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"actor", "action"}));
          return JsonOr(m.ListAudit(p, q));
        }));
  r.Add("GET", "/api/v1/audit/verify", Authed(m, Permission::kRead, [&m](const Principal& p, Request&) -> Result<Response> {
          return JsonOr(m.VerifyAudit(p));
        }));

  // ---- cluster join (docs/cluster.md): public, the joiner's TEE evidence is its credential
  // Refused before the body is read unless joining was enabled (vouchd serve --allow-cluster-join).
  auto join_disabled = [] {
    return ErrorResponse(
        NotFound("this instance does not accept cluster joins", std::string(kClusterJoinDisabled)));
  };
  r.Add("POST", "/api/v1/cluster/nonce", limited([&m, join_disabled](Request&) {
    if (!m.ClusterJoinEnabled()) return join_disabled();
    auto res = JsonOr(m.ClusterNonce());
    return res.ok() ? std::move(*res) : ErrorResponse(res.status());
  }));
  r.Add("POST", "/api/v1/cluster/join", limited([&m, join_disabled](Request& req) {
    if (!m.ClusterJoinEnabled()) return join_disabled();
    auto body = JsonBody::Parse(req.body);
    if (!body.ok()) return ErrorResponse(body.status());
    auto res = JsonOr(m.ClusterJoin(body->json(), req.remote_address));
    return res.ok() ? std::move(*res) : ErrorResponse(res.status());
  }));

  // ---- backups taken by the server (issue 18; docs/operations.md)
  r.Add("POST", "/api/v1/backups", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          if (!req.body.empty()) {
            VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
            VOUCH_RETURN_IF_ERROR(b.Finish());
          }
          VOUCH_ASSIGN_OR_RETURN(json out, m.CreateBackup(p));
          return Response::Json(out, 201);
        }));
  r.Add("GET", "/api/v1/backups", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request&) -> Result<Response> {
          return JsonOr(m.ListBackups(p));
        }));

  // ---- online master-key rotation (issue 18; docs/custody.md "Online rotation")
  r.Add("POST", "/api/v1/master-key/rotate",
        Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          return JsonOr(m.RotateMasterKeyOnline(p));
        }));

  // ---- collateral service (issue 14; docs/collateral.md)
  r.Add("GET", "/api/v1/collateral", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(ListQuery q, ListParams(req, {"kind", "key", "versions"}));
          return JsonOr(m.ListCollateral(p, q));
        }));
  r.Add("POST", "/api/v1/collateral/refresh", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, Body(req));
          VOUCH_ASSIGN_OR_RETURN(auto kind, b.OptionalString("kind", 64));
          VOUCH_ASSIGN_OR_RETURN(auto key, b.OptionalString("key", 256));
          VOUCH_RETURN_IF_ERROR(b.Finish());
          if (key && !kind) return InvalidArgument("key needs a kind", std::string(kInvalidKey));
          return JsonOr(m.RefreshCollateral(p, kind.value_or(""), key.value_or("")));
        }));
  r.Add("POST", "/api/v1/collateral/import", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          std::map<std::string, std::string> files;
          std::string origin;
          VOUCH_RETURN_IF_ERROR(ImportFilesFrom(b.json(), &files, &origin));
          return JsonOr(m.ImportCollateral(p, files, origin));
        }));
  r.Add("GET", "/api/v1/collateral/export", Authed(m, Permission::kAdmin, [&m](const Principal& p, Request&) -> Result<Response> {
          return JsonOr(m.ExportCollateral(p));
        }));
  r.Add("POST", "/api/v1/evidence/verify", Authed(m, Permission::kRead, [&m](const Principal& p, Request& req) -> Result<Response> {
          VOUCH_ASSIGN_OR_RETURN(JsonBody b, JsonBody::Parse(req.body));
          VOUCH_ASSIGN_OR_RETURN(VerifyRequest v, VerifyRequestFrom(b));
          VOUCH_ASSIGN_OR_RETURN(attest::Verdict verdict, m.VerifyEvidenceFor(p, v.evidence, v.platform, v.at));
          return Response::Json(verdict.ToJson());
        }));
  // PCCS v4 read side (Intel's DCAP quote provider library with pccs_url pointing here): public
  // like a PCCS, rate-limited per source like every unauthenticated route.
  auto pccs = [&](http::Handler fn) { return limited(std::move(fn)); };
  for (const char* tee : {"sgx", "tdx"}) {
    const std::string base = std::string("/") + tee + "/certification/v4";
    const bool tdx = std::string_view(tee) == "tdx";
    r.Add("GET", base + "/tcb", pccs([&m, tdx](Request& req) -> Response {
            auto fmspc = PccsFmspc(req);
            if (!fmspc.ok()) return ErrorResponse(fmspc.status());
            return PccsAnswer(m, tdx ? collateral::kTdxTcbInfo : collateral::kSgxTcbInfo, *fmspc, "TCB-Info-Issuer-Chain");
          }));
    r.Add("GET", base + "/qe/identity", pccs([&m, tdx](Request& req) -> Response {
            if (Status st = CheckPccsUpdate(req); !st.ok()) return ErrorResponse(st);
            return PccsAnswer(m, tdx ? collateral::kTdQeIdentity : collateral::kQeIdentity, tdx ? "TD_QE" : "QE",
                              "SGX-Enclave-Identity-Issuer-Chain");
          }));
  }
  r.Add("GET", "/sgx/certification/v4/pckcrl", pccs([&m](Request& req) -> Response {
          std::string ca = req.Query("ca");
          std::transform(ca.begin(), ca.end(), ca.begin(), [](unsigned char c) { return std::tolower(c); });
          if (ca != "processor" && ca != "platform") {
            return ErrorResponse(
                InvalidArgument("ca must be processor or platform", std::string(kInvalidCa)));
          }
          std::string encoding = req.Query("encoding");
          std::transform(encoding.begin(), encoding.end(), encoding.begin(), [](unsigned char c) { return std::tolower(c); });
          if (!encoding.empty() && encoding != "der" && encoding != "pem") {
            return ErrorResponse(
                InvalidArgument("encoding must be der or pem", std::string(kInvalidEncoding)));
          }
          return PccsAnswer(m, collateral::kPckCrl, ca, "SGX-PCK-CRL-Issuer-Chain", encoding != "der");
        }));
  // As a PCCS: the root CA CRL's DER in hex (QCNL with pccs_api_version 3.0), and crl?uri= with
  // the DER of Intel's root CA CRL or a PCS pckcrl URL (3.1).
  r.Add("GET", "/sgx/certification/v4/rootcacrl", pccs([&m](Request&) -> Response {
          Response resp = PccsAnswer(m, collateral::kRootCaCrl, "root", nullptr);
          if (resp.status == 200) {
            resp.body = HexEncode(AsBytes(resp.body));
            resp.content_type = "text/plain";
          }
          return resp;
        }));
  r.Add("GET", "/sgx/certification/v4/crl", pccs([&m](Request& req) -> Response {
          auto target = PccsCrlUriTarget(req.Query("uri"));
          if (!target) {
            return ErrorResponse(InvalidArgument(
                "uri must be Intel's root CA CRL "
                "(https://certificates.trustedservices.intel.com/IntelSGXRootCA.der) "
                "or a PCS pckcrl URL",
                std::string(kInvalidUri)));
          }
          return *target == "root" ? PccsAnswer(m, collateral::kRootCaCrl, "root", nullptr)
                                   : PccsAnswer(m, collateral::kPckCrl, *target, "SGX-PCK-CRL-Issuer-Chain");
        }));
  return r;
}

}  // namespace vouch::api
