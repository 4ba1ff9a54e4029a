// Registries whose credentials vouchd keeps for server-side conversion (issue 15; docs/api.md
// "Registries"). The secret (password or token) is sealed under the master key with an AAD naming
// the row (registry_access.h), is never returned (the record says has_secret), never logged and
// never written to the audit log.

#include <algorithm>
#include <cctype>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/x509.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr size_t kMaxUrl = 2048;
constexpr size_t kMaxCaPem = 256 * 1024;
constexpr size_t kMaxCaCerts = 100;
constexpr size_t kMaxUsername = 256;
constexpr size_t kMaxSecret = 8192;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Docker Hub answers under three names; image references say "docker.io".
std::string CanonicalHost(std::string host) {
  host = Lower(host);
  if (host == "index.docker.io" || host == "registry-1.docker.io") return "docker.io";
  return host;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

// "https://host[:port][/path]" (http only when `insecure`). Answers the URL as stored (scheme and
// host lower case, no trailing '/') and sets `host` to "host[:port]".
Result<std::string> CheckUrl(std::string_view url, bool insecure, std::string* host_out) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("url " + why + ": use https://host[:port][/path] (http:// only with insecure)",
                           std::string(kInvalidUrl));
  };
  if (url.empty() || url.size() > kMaxUrl) return bad("is empty or too long");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return bad("has a space or control character");
  }
  std::string lower = Lower(url);
  std::string scheme;
  if (lower.rfind("https://", 0) == 0) {
    scheme = "https";
  } else if (lower.rfind("http://", 0) == 0) {
    scheme = "http";
  } else {
    return bad("has no https:// scheme");
  }
  if (scheme == "http" && !insecure) {
    return InvalidArgument("url is plain http: set insecure to allow it (credentials would travel unencrypted)",
                           std::string(kInvalidUrl));
  }
  if (scheme == "https" && insecure) {
    return InvalidArgument("insecure is only for http:// URLs (an https registry is always verified)",
                           std::string(kInvalidUrl));
  }
  std::string_view rest = url.substr(scheme.size() + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) return bad("has a query or fragment");
  if (authority.find('@') != std::string_view::npos) return bad("carries user information (use username and password)");
  if (authority.empty()) return bad("has no host");
  std::string_view hostpart = authority;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 3) return bad("has a malformed IPv6 address");
    for (char c : authority.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return bad("has a malformed IPv6 address");
    }
    hostpart = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("has a malformed host");
      port = after.substr(1);
      if (port.empty()) return bad("has an empty port");
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      hostpart = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("has an empty port");
    }
    if (hostpart.empty() || hostpart.size() > 253 || hostpart.front() == '.' || hostpart.front() == '-' ||
        hostpart.back() == '.' || hostpart.back() == '-' || hostpart.find("..") != std::string_view::npos ||
        !std::all_of(hostpart.begin(), hostpart.end(), IsHostChar)) {
      return bad("has an invalid host name");
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        port.front() == '0') {
      return bad("has an invalid port");
    }
    int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return bad("has an invalid port");
  }
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/") path = {};
  std::string host = Lower(hostpart);
  if (!port.empty()) host += ":" + std::string(port);
  if (host_out != nullptr) *host_out = host;
  return scheme + "://" + host + std::string(path);
}

// PEM certificates only (any other block, e.g. a private key pasted by mistake, is refused);
// answers them re-encoded, one after the other.
Result<std::string> CheckCaBundle(const std::string& pem) {
  if (pem.size() > kMaxCaPem) {
    return InvalidArgument("ca_pem is larger than 256 KiB", std::string(kInvalidCa));
  }
  size_t pos = 0;
  while ((pos = pem.find("-----BEGIN ", pos)) != std::string::npos) {
    if (pem.compare(pos, 27, "-----BEGIN CERTIFICATE-----") != 0) {
      return InvalidArgument("ca_pem may hold only PEM certificates (BEGIN CERTIFICATE blocks)",
                             std::string(kInvalidCa));
    }
    pos += 11;
  }
  auto certs = crypto::CertsFromPem(pem);
  if (!certs.ok()) {
    return InvalidArgument("ca_pem is not a bundle of PEM certificates: " + certs.status().message(),
                           std::string(kInvalidCa));
  }
  if (certs->size() > kMaxCaCerts) {
    return InvalidArgument("ca_pem holds more than 100 certificates", std::string(kInvalidCa));
  }
  std::string out;
  for (const auto& c : *certs) {
    auto text = crypto::CertToPem(c.get());
    if (!text.ok()) return InvalidArgument("ca_pem: a certificate does not re-encode", std::string(kInvalidCa));
    out += *text;
  }
  return out;
}

Status CheckUsername(const std::string& u) {
  if (u.empty() || u.size() > kMaxUsername || u.find(':') != std::string::npos ||
      std::any_of(u.begin(), u.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return InvalidArgument("username must be 1-256 characters without ':' or control characters",
                           std::string(kInvalidSecret));
  }
  return Status::Ok();
}

Status CheckSecret(const std::string& s, const char* field) {
  if (s.empty() || s.size() > kMaxSecret ||
      std::any_of(s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r' || c == '\0'; })) {
    return InvalidArgument(std::string(field) + " must be 1-8192 bytes without line breaks or NUL",
                           std::string(kInvalidSecret));
  }
  return Status::Ok();
}

json NullableStr(const Row& r, std::string_view col) {
  return r.IsNull(col) || r.Str(col).empty() ? json(nullptr) : json(r.Str(col));
}

json RegistryJson(const Row& r) {
  bool has_secret = !r.IsNull("secret_sealed") && !r.Bytes("secret_sealed").empty();
  return json{{"id", r.Str("id")},
              {"name", r.Str("name")},
              {"url", r.Str("url")},
              {"username", NullableStr(r, "username")},
              {"has_secret", has_secret},
              {"secret_kind", has_secret ? NullableStr(r, "secret_kind") : json(nullptr)},
              {"has_ca", !r.IsNull("ca_pem") && !r.Str("ca_pem").empty()},
              {"insecure", r.Int("insecure") != 0},
              {"created_at", TimeJson(r.Int("created_at"))},
              {"created_by", r.Str("created_by")},
              {"updated_at", TimeJson(r.Int("updated_at"))}};
}

// What the audit log may say about a registry: never the secret.
json RegistryAuditDetail(const Row& r) {
  json j = RegistryJson(r);
  j.erase("created_at");
  j.erase("created_by");
  j.erase("updated_at");
  return j;
}

Result<Row> FindRegistry(Transaction& tx, std::string_view key) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT * FROM registries WHERE id = ? OR name = ?",
                                              {std::string(key), std::string(key)}));
  if (rows.empty()) {
    return NotFound("registry '" + std::string(key.substr(0, 80)) + "' not found", std::string(kRegistryNotFound));
  }
  return std::move(rows.front());
}

// Members, approvers and admins: a viewer (or a node) does not see registries.
Status AuthorizeRegistryRead(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (p.role == Role::kViewer) {
    return PermissionDenied("role 'viewer' may not read registries", std::string(kForbidden));
  }
  return Status::Ok();
}

// The validated secret of a spec: its kind and value; kind "" when the spec clears it.
struct SecretChange {
  std::string kind;
  std::string value;
};

Result<std::optional<SecretChange>> SecretFrom(const RegistrySpec& spec) {
  bool has_password = spec.password.has_value() && spec.password->has_value();
  bool has_token = spec.token.has_value() && spec.token->has_value();
  if (has_password && has_token) {
    return InvalidArgument("give password or token, not both", std::string(kInvalidSecret));
  }
  if (has_password) {
    VOUCH_RETURN_IF_ERROR(CheckSecret(**spec.password, "password"));
    return std::optional<SecretChange>(SecretChange{"password", **spec.password});
  }
  if (has_token) {
    VOUCH_RETURN_IF_ERROR(CheckSecret(**spec.token, "token"));
    return std::optional<SecretChange>(SecretChange{"token", **spec.token});
  }
  if (spec.password.has_value() || spec.token.has_value()) return std::optional<SecretChange>(SecretChange{});
  return std::optional<SecretChange>();
}

Result<RegistryAccess> AccessFrom(Transaction& tx, const Manager& m, const Row& r) {
  RegistryAccess a;
  a.id = r.Str("id");
  a.name = r.Str("name");
  a.url = r.Str("url");
  std::string rest = a.url.substr(a.url.find("://") + 3);
  a.host = rest.substr(0, rest.find('/'));
  a.ca_pem = r.IsNull("ca_pem") ? "" : r.Str("ca_pem");
  a.username = r.IsNull("username") ? "" : r.Str("username");
  a.insecure = r.Int("insecure") != 0;
  if (!r.IsNull("secret_sealed") && !r.Bytes("secret_sealed").empty()) {
    auto secret = m.OpenSecret(tx, r.Bytes("secret_sealed"), RegistrySecretAad(a.id));
    if (IsMasterKeyRotated(secret.status())) return secret.status();
    if (!secret.ok()) {
      return DataLoss("the secret of registry '" + a.name + "' does not open with the master key",
                      std::string(kRegistrySecretUnsealFailed));
    }
    a.secret = std::move(*secret);
    a.secret_kind = r.IsNull("secret_kind") ? "" : r.Str("secret_kind");
  }
  return a;
}

}  // namespace

// ---------------------------------------------------------------- routes' operations

Result<json> Manager::CreateRegistry(const Principal& p, const RegistrySpec& spec) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!spec.name || !IsValidName(*spec.name)) {
    return InvalidArgument("invalid registry name '" + spec.name.value_or("").substr(0, 80) + "': use a-z, 0-9 and '-'",
                           std::string(kInvalidName));
  }
  if (!spec.url) return InvalidArgument("url is required", std::string(kInvalidUrl));
  bool insecure = spec.insecure.value_or(false);
  VOUCH_ASSIGN_OR_RETURN(std::string url, CheckUrl(*spec.url, insecure, nullptr));
  std::optional<std::string> ca;
  if (spec.ca_pem && spec.ca_pem->has_value()) {
    VOUCH_ASSIGN_OR_RETURN(ca, CheckCaBundle(**spec.ca_pem));
  }
  std::optional<std::string> username;
  if (spec.username && spec.username->has_value()) {
    VOUCH_RETURN_IF_ERROR(CheckUsername(**spec.username));
    username = **spec.username;
  }
  VOUCH_ASSIGN_OR_RETURN(std::optional<SecretChange> secret, SecretFrom(spec));
  if (secret && secret->kind == "password" && !username) {
    return InvalidArgument("a password needs a username", std::string(kInvalidSecret));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    std::string id = NewId("reg");
    int64_t now = Now();
    Value sealed(nullptr), kind(nullptr);
    if (secret && !secret->kind.empty()) {
      VOUCH_ASSIGN_OR_RETURN(auto s, SealSecret(tx, AsBytes(secret->value), RegistrySecretAad(id)));
      sealed = store::Blob(std::move(s));
      kind = secret->kind;
    }
    Status st = tx.Exec("INSERT INTO registries (id, name, url, ca_pem, username, secret_kind, secret_sealed, insecure, "
                        "created_at, created_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        {id, *spec.name, url, ca ? Value(*ca) : Value(nullptr), username ? Value(*username) : Value(nullptr),
                         kind, sealed, int64_t{insecure}, now, p.Actor(), now})
                    .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("registry '" + *spec.name + "' already exists", std::string(kRegistryExists));
    }
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_ASSIGN_OR_RETURN(Row r, FindRegistry(tx, id));
    out = RegistryJson(r);
    return Audit(tx, *this, p, "registry.create", *spec.name, RegistryAuditDetail(r));
  }));
  return out;
}

Result<json> Manager::ListRegistries(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(AuthorizeRegistryRead(p));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, "SELECT * FROM registries", {}, {}, q));
    json items = json::array();
    for (const Row& r : page.rows) items.push_back(RegistryJson(r));
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetRegistry(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(AuthorizeRegistryRead(p));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindRegistry(tx, key));
    out = RegistryJson(r);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::UpdateRegistry(const Principal& p, const std::string& key, const RegistrySpec& spec) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (spec.name && !IsValidName(*spec.name)) {
    return InvalidArgument("invalid registry name '" + spec.name->substr(0, 80) + "': use a-z, 0-9 and '-'",
                           std::string(kInvalidName));
  }
  std::optional<std::string> ca;
  if (spec.ca_pem && spec.ca_pem->has_value()) {
    VOUCH_ASSIGN_OR_RETURN(ca, CheckCaBundle(**spec.ca_pem));
  }
  if (spec.username && spec.username->has_value()) VOUCH_RETURN_IF_ERROR(CheckUsername(**spec.username));
  VOUCH_ASSIGN_OR_RETURN(std::optional<SecretChange> secret, SecretFrom(spec));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindRegistry(tx, key));
    const std::string id = r.Str("id");
    bool insecure = spec.insecure.value_or(r.Int("insecure") != 0);
    // The URL and insecure are checked together: turning insecure off needs an https URL.
    VOUCH_ASSIGN_OR_RETURN(std::string url, CheckUrl(spec.url.value_or(r.Str("url")), insecure, nullptr));
    std::optional<std::string> username = r.IsNull("username") ? std::nullopt : std::optional<std::string>(r.Str("username"));
    if (spec.username) username = *spec.username;
    std::string kind = r.IsNull("secret_kind") || r.IsNull("secret_sealed") ? "" : r.Str("secret_kind");
    if (secret) kind = secret->kind;
    if (kind == "password" && !username) {
      return InvalidArgument("a password needs a username", std::string(kInvalidSecret));
    }
    json changed = json::array();
    std::string sql = "UPDATE registries SET updated_at = ?";
    std::vector<Value> params = {Now()};
    auto set = [&](const char* col, Value v) {
      sql += std::string(", ") + col + " = ?";
      params.push_back(std::move(v));
      changed.push_back(col);
    };
    if (spec.name && *spec.name != r.Str("name")) set("name", *spec.name);
    if (url != r.Str("url")) set("url", url);
    if (spec.insecure && insecure != (r.Int("insecure") != 0)) set("insecure", int64_t{insecure});
    if (spec.ca_pem) set("ca_pem", ca ? Value(*ca) : Value(nullptr));
    if (spec.username) set("username", username ? Value(*username) : Value(nullptr));
    if (secret) {
      Value sealed(nullptr);
      if (!secret->kind.empty()) {
        VOUCH_ASSIGN_OR_RETURN(auto s, SealSecret(tx, AsBytes(secret->value), RegistrySecretAad(id)));
        sealed = store::Blob(std::move(s));
      }
      set("secret_sealed", std::move(sealed));
      sql += ", secret_kind = ?";
      params.push_back(secret->kind.empty() ? Value(nullptr) : Value(secret->kind));
    }
    sql += " WHERE id = ?";
    params.push_back(id);
    Status st = tx.Exec(sql, params).status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("registry '" + spec.name.value_or("") + "' already exists", std::string(kRegistryExists));
    }
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_ASSIGN_OR_RETURN(Row updated, FindRegistry(tx, id));
    out = RegistryJson(updated);
    json detail = RegistryAuditDetail(updated);
    // Which fields changed; the secret only as "secret_sealed" (replaced or cleared), never its value.
    detail["changed"] = changed;
    if (spec.name && *spec.name != r.Str("name")) detail["previous_name"] = r.Str("name");
    return Audit(tx, *this, p, "registry.update", updated.Str("name"), detail);
  }));
  return out;
}

// Refused (409 registry_in_use) while an app names the registry as a default or an unfinished
// conversion uses it: deleting it then would change what those do without anyone deciding so.
// The admin first points the apps elsewhere (PATCH /api/v1/apps/{id}) or waits for the jobs.
Status Manager::DeleteRegistry(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  return db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindRegistry(tx, key));
    const std::string id = r.Str("id");
    VOUCH_ASSIGN_OR_RETURN(Rows apps, tx.Query("SELECT name FROM apps WHERE deleted = 0 AND (input_registry_id = ? OR "
                                               "output_registry_id = ?) ORDER BY name LIMIT 11",
                                               {id, id}));
    if (!apps.empty()) {
      std::string names;
      for (size_t i = 0; i < apps.size() && i < 10; ++i) names += (i ? ", " : "") + apps[i].Str("name");
      if (apps.size() > 10) names += ", ...";
      return FailedPrecondition("registry '" + r.Str("name") + "' is the default registry of app(s) " + names +
                                    ": change their input_registry/output_registry first",
                                std::string(kRegistryInUse));
    }
    VOUCH_ASSIGN_OR_RETURN(Rows jobs, tx.Query("SELECT id FROM conversions WHERE (input_registry_id = ? OR "
                                               "output_registry_id = ?) AND state IN ('queued', 'pulling', "
                                               "'converting', 'pushing') ORDER BY id LIMIT 1",
                                               {id, id}));
    if (!jobs.empty()) {
      return FailedPrecondition("registry '" + r.Str("name") + "' is used by unfinished conversion " + jobs[0].Str("id"),
                                std::string(kRegistryInUse));
    }
    // Deleted apps keep their row for history; their defaults no longer name anything.
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE apps SET input_registry_id = NULL WHERE input_registry_id = ?", {id}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE apps SET output_registry_id = NULL WHERE output_registry_id = ?", {id}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM registries WHERE id = ?", {id}).status());
    return Audit(tx, *this, p, "registry.delete", r.Str("name"), RegistryAuditDetail(r));
  });
}

// ---------------------------------------------------------------- registry_access.h

Result<RegistryAccess> LoadRegistryAccess(Transaction& tx, const Manager& m, std::string_view id_or_name) {
  VOUCH_ASSIGN_OR_RETURN(Row r, FindRegistry(tx, id_or_name));
  return AccessFrom(tx, m, r);
}

std::string ImageReferenceHost(std::string_view ref) {
  if (ref.rfind("oci:", 0) == 0 || ref.rfind("docker-archive:", 0) == 0) return "";
  if (ref.rfind("docker://", 0) == 0) ref.remove_prefix(9);
  size_t slash = ref.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  std::string_view first = ref.substr(0, slash);
  if (first.find('.') == std::string_view::npos && first.find(':') == std::string_view::npos && first != "localhost") {
    return "docker.io";
  }
  return CanonicalHost(std::string(first));
}

Result<std::optional<RegistryAccess>> RegistryForImage(Transaction& tx, const Manager& m, std::string_view app_id,
                                                       std::string_view image_ref, std::string_view explicit_name,
                                                       bool output) {
  using Out = std::optional<RegistryAccess>;
  const std::string host = ImageReferenceHost(image_ref);
  if (!explicit_name.empty()) {
    VOUCH_ASSIGN_OR_RETURN(RegistryAccess a, LoadRegistryAccess(tx, m, explicit_name));
    if (CanonicalHost(a.host) != host) {
      return InvalidArgument("image '" + std::string(image_ref.substr(0, 200)) + "' is not on registry '" + a.name +
                                 "' (" + a.host + "): name the image with the registry's host",
                             std::string(kRegistryHostMismatch));
    }
    return Out(std::move(a));
  }
  if (host.empty()) return Out();  // a local layout or archive: no registry
  if (!app_id.empty()) {
    VOUCH_ASSIGN_OR_RETURN(Rows apps, tx.Query(std::string("SELECT ") + (output ? "output_registry_id" : "input_registry_id") +
                                                   " AS registry_id FROM apps WHERE id = ?",
                                               {std::string(app_id)}));
    if (!apps.empty() && !apps[0].IsNull("registry_id")) {
      VOUCH_ASSIGN_OR_RETURN(Rows regs, tx.Query("SELECT * FROM registries WHERE id = ?", {apps[0].Str("registry_id")}));
      // The default applies to references on its own host: its credentials never go elsewhere.
      if (!regs.empty()) {
        VOUCH_ASSIGN_OR_RETURN(RegistryAccess a, AccessFrom(tx, m, regs[0]));
        if (CanonicalHost(a.host) == host) return Out(std::move(a));
      }
    }
  }
  VOUCH_ASSIGN_OR_RETURN(Rows all, tx.Query("SELECT * FROM registries ORDER BY created_at, name"));
  for (const Row& r : all) {
    std::string url = r.Str("url");
    std::string rest = url.substr(url.find("://") + 3);
    if (CanonicalHost(rest.substr(0, rest.find('/'))) == host) {
      VOUCH_ASSIGN_OR_RETURN(RegistryAccess a, AccessFrom(tx, m, r));
      return Out(std::move(a));
    }
  }
  return Out();
}

}  // namespace vouch::api
