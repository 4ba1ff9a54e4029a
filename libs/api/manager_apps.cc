#include <algorithm>
#include <set>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/manager_nodes_internal.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "api/zone_ca_rotation.h"
#include "base/encoding.h"
#include "pki/names.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr char kAppSelect[] =
    "SELECT a.id AS id, a.name AS name, a.domains AS domains, a.created_at AS created_at, a.created_by AS created_by, "
    "a.zone_id AS zone_id, z.name AS zone_name, ri.name AS input_registry, ro.name AS output_registry, "
    "(SELECT k.mrsigner FROM app_signing_keys k WHERE k.app_id = a.id AND k.status = 'active' "
    "ORDER BY k.activated_at DESC, k.id LIMIT 1) AS mrsigner "
    "FROM apps a JOIN zones z ON z.id = a.zone_id LEFT JOIN registries ri ON ri.id = a.input_registry_id "
    "LEFT JOIN registries ro ON ro.id = a.output_registry_id";

// The allowed names of an app as stored (a JSON array of lower-case names).
std::vector<std::string> DomainList(const std::string& column) {
  std::vector<std::string> out;
  for (const auto& d : ParseJsonColumn(column, json::array())) {
    if (d.is_string()) out.push_back(d.get<std::string>());
  }
  return out;
}

// The app's pending domain requests: the names and, in `tasks`, {domain, task_id} for each.
Result<json> PendingDomains(Transaction& tx, const std::string& app_id, json* tasks) {
  VOUCH_ASSIGN_OR_RETURN(Rows pending, tx.Query("SELECT id, domain FROM tasks WHERE app_id = ? AND kind = 'domain' AND "
                                                "status = 'pending' ORDER BY created_at, domain, id",
                                                {app_id}));
  json names = json::array();
  if (tasks != nullptr) *tasks = json::array();
  for (const Row& t : pending) {
    names.push_back(t.Str("domain"));
    if (tasks != nullptr) tasks->push_back({{"domain", t.Str("domain")}, {"task_id", t.Str("id")}});
  }
  return names;
}

Result<json> AppJson(Transaction& tx, const Row& r) {
  json domain_tasks;
  VOUCH_ASSIGN_OR_RETURN(json pending_domains, PendingDomains(tx, r.Str("id"), &domain_tasks));
  return json{{"id", r.Str("id")},
              {"name", r.Str("name")},
              {"zone", r.Str("zone_name")},
              {"domains", ParseJsonColumn(r.Str("domains"), json::array())},
              {"pending_domains", pending_domains},
              {"domain_tasks", domain_tasks},
              {"spiffe_id", "spiffe://" + r.Str("zone_name") + "/app/" + r.Str("name")},
              {"mrsigner", r.IsNull("mrsigner") ? json(nullptr) : json(r.Str("mrsigner"))},
              {"input_registry", r.IsNull("input_registry") ? json(nullptr) : json(r.Str("input_registry"))},
              {"output_registry", r.IsNull("output_registry") ? json(nullptr) : json(r.Str("output_registry"))},
              {"created_at", TimeJson(r.Int("created_at"))},
              {"created_by", r.Str("created_by")}};
}

Result<Row> FindApp(Transaction& tx, const std::string& key) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows,
                         tx.Query(std::string(kAppSelect) + " WHERE (a.id = ? OR a.name = ?) AND a.deleted = 0", {key, key}));
  if (rows.empty())
    return NotFound("app '" + key.substr(0, 80) + "' not found", std::string(kAppNotFound));
  return std::move(rows.front());
}

Result<json> ApprovalsJson(Transaction& tx, const std::string& task_id) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows,
                         tx.Query("SELECT user_name, at FROM task_approvals WHERE task_id = ? ORDER BY at, user_name", {task_id}));
  json out = json::array();
  for (const Row& r : rows) out.push_back({{"user", r.Str("user_name")}, {"at", TimeJson(r.Int("at"))}});
  return out;
}

constexpr char kBuildSelect[] =
    "SELECT b.*, a.name AS app_name, z.name AS zone_name, z.id AS zone_id, "
    "t.approvals_required AS approvals_required FROM builds b JOIN apps a ON a.id = b.app_id "
    "JOIN zones z ON z.id = a.zone_id LEFT JOIN tasks t ON t.id = b.task_id";

Result<json> BuildJson(Transaction& tx, const Row& r) {
  json approvals = json::array();
  if (!r.IsNull("task_id")) {
    VOUCH_ASSIGN_OR_RETURN(approvals, ApprovalsJson(tx, r.Str("task_id")));
  }
  return json{{"id", r.Str("id")},
              {"app", r.Str("app_name")},
              {"zone", r.Str("zone_name")},
              {"status", r.Str("status")},
              {"platform", r.Str("platform")},
              {"measurements",
               {{"mrenclave", r.Str("mrenclave")},
                {"mrsigner", r.Str("mrsigner")},
                {"isvprodid", r.Int("isvprodid")},
                {"isvsvn", r.Int("isvsvn")},
                {"debug", r.Int("debug") != 0}}},
              {"image_ref", r.IsNull("image_ref") ? json(nullptr) : json(r.Str("image_ref"))},
              {"image_digest", r.IsNull("image_digest") ? json(nullptr) : json(r.Str("image_digest"))},
              {"task_id", r.IsNull("task_id") ? json(nullptr) : json(r.Str("task_id"))},
              {"approvals_required", r.Int("approvals_required")},
              {"approvals", approvals},
              {"reason", r.IsNull("reason") ? json(nullptr) : json(r.Str("reason"))},
              {"created_at", TimeJson(r.Int("created_at"))},
              {"created_by", r.Str("created_by")}};
}

constexpr char kTaskSelect[] =
    "SELECT t.*, a.name AS app_name, a.domains AS app_domains, z.name AS zone_name FROM tasks t "
    "LEFT JOIN apps a ON a.id = t.app_id JOIN zones z ON z.id = t.zone_id";  // node_identity tasks: no app

Result<json> TaskJson(Transaction& tx, const Row& r) {
  VOUCH_ASSIGN_OR_RETURN(json approvals, ApprovalsJson(tx, r.Str("id")));
  json j{{"id", r.Str("id")},
         {"kind", r.Str("kind")},
         {"status", r.Str("status")},
         {"zone", r.Str("zone_name")},
         {"app", r.IsNull("app_name") ? json(nullptr) : json(r.Str("app_name"))},
         {"summary", r.Str("summary")},
         {"approvals_required", r.Int("approvals_required")},
         {"approvals", approvals},
         {"created_at", TimeJson(r.Int("created_at"))},
         {"created_by", r.Str("created_by")},
         {"decided_at", TimeOrNull(r, "decided_at")}};
  if (!r.IsNull("build_id")) j["build_id"] = r.Str("build_id");
  if (!r.IsNull("domain")) j["domain"] = r.Str("domain");
  if (!r.IsNull("node_identity_id")) j["node_identity_id"] = r.Str("node_identity_id");
  if (!r.IsNull("subject_id")) j["subject_id"] = r.Str("subject_id");
  // What an approver decides about: the names the app's certificates may carry now (approved)
  // and those waiting for approval. A build's certificates are issued for the approved ones only.
  if (!r.IsNull("app_domains")) {
    j["domains"] = ParseJsonColumn(r.Str("app_domains"), json::array());
    VOUCH_ASSIGN_OR_RETURN(j["pending_domains"], PendingDomains(tx, r.Str("app_id"), nullptr));
  }
  if (!r.IsNull("denied_by")) j["denied_by"] = r.Str("denied_by");
  if (!r.IsNull("reason")) j["reason"] = r.Str("reason");
  return j;
}

Status CheckHex32(const std::string& value, const char* field) {
  auto bytes = HexDecode(value);
  if (!bytes.ok() || bytes->size() != 32) {
    return InvalidArgument(std::string(field) + " must be 64 hex characters (32 bytes)",
                           std::string(kInvalidMeasurement));
  }
  return Status::Ok();
}

// A name another app of the zone holds: approved, or requested and pending.
struct Holding {
  std::string domain, app;
  bool pending = false;
};

// The names the zone's other apps (all but `app_id`, not deleted) hold; pending requests too
// with `include_pending`.
Result<std::vector<Holding>> ZoneHoldings(Transaction& tx, const std::string& zone_id, const std::string& app_id,
                                          bool include_pending) {
  std::vector<Holding> out;
  VOUCH_ASSIGN_OR_RETURN(Rows apps, tx.Query("SELECT name, domains FROM apps WHERE zone_id = ? AND id <> ? AND deleted = 0",
                                             {zone_id, app_id}));
  for (const Row& a : apps) {
    for (auto& d : DomainList(a.Str("domains"))) out.push_back({std::move(d), a.Str("name"), false});
  }
  if (include_pending) {
    VOUCH_ASSIGN_OR_RETURN(Rows pending, tx.Query("SELECT t.domain AS domain, a.name AS name FROM tasks t JOIN apps a ON "
                                                  "a.id = t.app_id WHERE t.zone_id = ? AND t.app_id <> ? AND t.kind = "
                                                  "'domain' AND t.status = 'pending' AND a.deleted = 0",
                                                  {zone_id, app_id}));
    for (const Row& t : pending) out.push_back({t.Str("domain"), t.Str("name"), true});
  }
  return out;
}

// 409 domain_taken when one of `holdings` overlaps `domain` (equal, or a wildcard covering the
// other in either direction: pki::DomainsOverlap).
Status CheckNotTaken(const std::vector<Holding>& holdings, const std::string& domain) {
  for (const Holding& h : holdings) {
    if (pki::DomainsOverlap(domain, h.domain)) {
      return AlreadyExists("'" + domain + "' is taken in this zone: app '" + h.app + "' " +
                               (h.pending ? "has requested '" : "holds '") + h.domain + "'",
                           std::string(kDomainTaken));
    }
  }
  return Status::Ok();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

// ---------------------------------------------------------------- apps

Result<json> Manager::CreateApp(const Principal& p, const std::string& name, const std::string& zone,
                                const std::vector<std::string>& domains) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  if (!IsValidName(name)) {
    return InvalidArgument("invalid app name '" + name.substr(0, 80) + "': use a-z, 0-9 and '-'",
                           std::string(kInvalidName));
  }
  if (domains.size() > 100)
    return InvalidArgument("at most 100 domains per app", std::string(kTooManyDomains));
  std::set<std::string> unique;
  for (const auto& d : domains) {
    VOUCH_ASSIGN_OR_RETURN(std::string n, pki::NormalizeDnsName(d));
    unique.insert(std::move(n));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", zone, "zone"));
    std::string id = NewId("app");
    int64_t now = Now();
    // The app starts with no allowed names: each requested one is a pending domain task under
    // the zone's quorum, exactly as if it were added later (docs/design.md).
    Status st = tx.Exec("INSERT INTO apps (id, name, zone_id, domains, created_at, created_by) VALUES (?, ?, ?, '[]', ?, ?)",
                        {id, name, z.Str("id"), now, p.Actor()})
                    .status();
    if (st.code() == StatusCode::kAlreadyExists)
      return AlreadyExists("app '" + name + "' already exists", std::string(kAppExists));
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_ASSIGN_OR_RETURN(std::vector<Holding> holdings, ZoneHoldings(tx, z.Str("id"), id, true));
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, z.Str("id")));
    json tasks = json::array();
    for (const std::string& d : unique) {
      VOUCH_RETURN_IF_ERROR(CheckNotTaken(holdings, d));
      std::string task_id = NewId("task");
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, domain, summary, "
                                    "approvals_required, created_at, created_by) VALUES (?, 'domain', 'pending', ?, ?, ?, ?, ?, ?, ?)",
                                    {task_id, z.Str("id"), id, d, "allow domain " + d + " for new app " + name,
                                     int64_t{policy.approvals_required}, now, p.Actor()})
                                .status());
      VOUCH_RETURN_IF_ERROR(Audit(tx, *this, p, "app.domain.request", name, {{"domain", d}, {"task", task_id}}));
      tasks.push_back(task_id);
    }
    VOUCH_RETURN_IF_ERROR(Audit(tx, *this, p, "app.create", name,
                                {{"zone", z.Str("name")},
                                 {"pending_domains", json(std::vector<std::string>(unique.begin(), unique.end()))},
                                 {"tasks", tasks}}));
    // The app's image signing key, made and sealed now (audited as app.signing_key.create).
    VOUCH_RETURN_IF_ERROR(ActiveAppSigningKey(tx, *this, id).status());
    VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, id));
    VOUCH_ASSIGN_OR_RETURN(out, AppJson(tx, r));
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::ListApps(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond = {"a.deleted = 0"};
    std::vector<Value> params;
    if (std::string zone = Filter(q, "zone"); !zone.empty()) {
      cond.push_back("(z.name = ? OR z.id = ?)");
      params.emplace_back(zone);
      params.emplace_back(zone);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, kAppSelect, cond, params, q, "a.created_at", false, "a.id"));
    json items = json::array();
    for (const Row& r : page.rows) {
      VOUCH_ASSIGN_OR_RETURN(json a, AppJson(tx, r));
      items.push_back(std::move(a));
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetApp(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, key));
    VOUCH_ASSIGN_OR_RETURN(out, AppJson(tx, r));
    return Status::Ok();
  }));
  return out;
}

Status Manager::DeleteApp(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  std::vector<std::string> zones;
  return db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, key));
    std::string id = r.Str("id");
    int64_t now = Now();
    // The name is released for reuse; the row stays for history (builds, certificates, audit).
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE apps SET deleted = 1, name = ? WHERE id = ?", {r.Str("name") + "~" + id, id}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE builds SET status = 'revoked', reason = 'app deleted' WHERE app_id = ? AND "
                                  "status IN ('pending', 'approved')",
                                  {id})
                              .status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE tasks SET status = 'cancelled', decided_at = ? WHERE app_id = ? AND status = 'pending'",
                                  {now, id})
                              .status());
    VOUCH_RETURN_IF_ERROR(RevokeCertsWhere(tx, "app_id = ?", {id}, "app deleted", &zones));
    // Its signing keys leave use: nothing signs for a deleted app again (the sealed bytes are wiped).
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE app_signing_keys SET status = 'denied', key_sealed = substr(key_sealed, 1, 0) "
                                  "WHERE app_id = ? AND status = 'pending'",
                                  {id})
                              .status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE app_signing_keys SET status = 'retired', key_sealed = substr(key_sealed, 1, 0) "
                                  "WHERE app_id = ? AND status = 'active'",
                                  {id})
                              .status());
    return Audit(tx, *this, p, "app.delete", r.Str("name"));
  });
}

Result<json> Manager::UpdateApp(const Principal& p, const std::string& key, const AppUpdate& update) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row a, FindApp(tx, key));
    const std::string id = a.Str("id");
    json detail = json::object();
    auto apply = [&](const std::optional<std::optional<std::string>>& field, const char* column,
                     const char* name) -> Status {
      if (!field) return Status::Ok();
      Value v(nullptr);
      json shown(nullptr);
      if (field->has_value()) {
        VOUCH_ASSIGN_OR_RETURN(Rows regs, tx.Query("SELECT id, name FROM registries WHERE id = ? OR name = ?",
                                                   {**field, **field}));
        if (regs.empty()) {
          return NotFound("registry '" + (**field).substr(0, 80) + "' not found", std::string(kRegistryNotFound));
        }
        v = regs[0].Str("id");
        shown = regs[0].Str("name");
      }
      VOUCH_RETURN_IF_ERROR(tx.Exec(std::string("UPDATE apps SET ") + column + " = ? WHERE id = ?", {v, id}).status());
      detail[name] = shown;
      detail[std::string("previous_") + name] = a.IsNull(name) ? json(nullptr) : json(a.Str(name));
      return Status::Ok();
    };
    VOUCH_RETURN_IF_ERROR(apply(update.input_registry, "input_registry_id", "input_registry"));
    VOUCH_RETURN_IF_ERROR(apply(update.output_registry, "output_registry_id", "output_registry"));
    VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, id));
    VOUCH_ASSIGN_OR_RETURN(out, AppJson(tx, r));
    if (detail.empty()) return Status::Ok();  // nothing asked: nothing changed, nothing audited
    return Audit(tx, *this, p, "app.update", a.Str("name"), detail);
  }));
  return out;
}

Result<json> Manager::AddAppDomain(const Principal& p, const std::string& app, const std::string& requested) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  VOUCH_ASSIGN_OR_RETURN(const std::string domain, pki::NormalizeDnsName(requested));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row a, FindApp(tx, app));
    json domains = ParseJsonColumn(a.Str("domains"), json::array());
    if (std::find(domains.begin(), domains.end(), domain) != domains.end()) {
      return AlreadyExists("'" + domain + "' is already allowed for app '" + a.Str("name") + "'",
                           std::string(kDomainExists));
    }
    VOUCH_ASSIGN_OR_RETURN(Rows dup, tx.Query("SELECT id FROM tasks WHERE app_id = ? AND kind = 'domain' AND "
                                              "domain = ? AND status = 'pending'",
                                              {a.Str("id"), domain}));
    if (!dup.empty())
      return AlreadyExists("a request for '" + domain + "' is already pending",
                           std::string(kDomainPending));
    VOUCH_ASSIGN_OR_RETURN(std::vector<Holding> holdings, ZoneHoldings(tx, a.Str("zone_id"), a.Str("id"), true));
    VOUCH_RETURN_IF_ERROR(CheckNotTaken(holdings, domain));
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, a.Str("zone_id")));
    std::string task_id = NewId("task");
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, domain, summary, "
                                  "approvals_required, created_at, created_by) VALUES (?, 'domain', 'pending', ?, ?, ?, ?, ?, ?, ?)",
                                  {task_id, a.Str("zone_id"), a.Str("id"), domain,
                                   "allow domain " + domain + " for app " + a.Str("name"),
                                   int64_t{policy.approvals_required}, Now(), p.Actor()})
                              .status());
    VOUCH_ASSIGN_OR_RETURN(Row t, tx.QueryOne(std::string(kTaskSelect) + " WHERE t.id = ?", {task_id}, "task"));
    VOUCH_ASSIGN_OR_RETURN(out, TaskJson(tx, t));
    return Audit(tx, *this, p, "app.domain.request", a.Str("name"), {{"domain", domain}, {"task", task_id}});
  }));
  return out;
}

Result<json> Manager::RemoveAppDomain(const Principal& p, const std::string& app, const std::string& requested) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  const std::string domain = pki::LowerDnsName(requested);
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row a, FindApp(tx, app));
    const std::string app_id = a.Str("id");
    std::vector<std::string> domains = DomainList(a.Str("domains"));
    auto it = std::find(domains.begin(), domains.end(), domain);
    int64_t now = Now();
    if (it == domains.end()) {
      // A pending request is withdrawn instead.
      VOUCH_ASSIGN_OR_RETURN(int64_t cancelled,
                             tx.Exec("UPDATE tasks SET status = 'cancelled', decided_at = ? WHERE app_id = ? AND "
                                     "kind = 'domain' AND domain = ? AND status = 'pending'",
                                     {now, app_id, domain}));
      if (cancelled == 0) {
        return NotFound(
            "'" + domain.substr(0, 100) + "' is not a domain of app '" + a.Str("name") + "'",
            std::string(kDomainNotFound));
      }
      VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, app_id));
      VOUCH_ASSIGN_OR_RETURN(out, AppJson(tx, r));
      return Audit(tx, *this, p, "app.domain.withdraw", a.Str("name"), {{"domain", domain}});
    }
    domains.erase(it);
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE apps SET domains = ? WHERE id = ?", {json(domains).dump(), app_id}).status());
    // Revoke, in this transaction, the app's unexpired certificates that carry a name the removed
    // entry allowed and no remaining entry allows.
    VOUCH_ASSIGN_OR_RETURN(Rows certs, tx.Query("SELECT serial, sans FROM certificates WHERE app_id = ? AND "
                                                "status = 'valid' AND not_after > ? ORDER BY serial",
                                                {app_id, now}));
    std::vector<std::string> serials;
    for (const Row& c : certs) {
      for (const auto& san : ParseJsonColumn(c.Str("sans"), json::array())) {
        if (!san.is_string()) continue;
        const std::string name = san.get<std::string>();
        if (pki::IsValidDnsName(name) && pki::DomainMatches(name, domain) && !pki::DomainAllowed(name, domains)) {
          serials.push_back(c.Str("serial"));
          break;
        }
      }
    }
    VOUCH_ASSIGN_OR_RETURN(int64_t revoked, MarkRevoked(tx, serials, "domain " + domain + " removed from app " + a.Str("name")));
    if (revoked > 0) VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, a.Str("zone_id")));
    VOUCH_ASSIGN_OR_RETURN(Row r, FindApp(tx, app_id));
    VOUCH_ASSIGN_OR_RETURN(out, AppJson(tx, r));
    out["revoked_serials"] = serials;
    json detail = {{"domain", domain}, {"revoked", revoked}};
    if (serials.size() <= 100) detail["serials"] = serials;
    return Audit(tx, *this, p, "app.domain.remove", a.Str("name"), detail);
  }));
  return out;
}

// ---------------------------------------------------------------- builds

namespace internal {

Result<json> InsertBuild(Transaction& tx, const Manager& m, const std::string& actor, const Row& a,
                         const BuildSpec& spec, int64_t now, std::string* existing_id) {
  VOUCH_ASSIGN_OR_RETURN(Rows dup, tx.Query("SELECT id FROM builds WHERE app_id = ? AND mrenclave = ? AND mrsigner = ? "
                                            "AND isvprodid = ? AND isvsvn = ? AND debug = ? AND status IN ('pending', 'approved')",
                                            {a.Str("id"), spec.mrenclave, spec.mrsigner, spec.isvprodid, spec.isvsvn,
                                             int64_t{spec.debug}}));
  if (!dup.empty()) {
    if (existing_id != nullptr) *existing_id = dup[0].Str("id");
    return AlreadyExists(
        "an identical build is already " + std::string("registered: ") + dup[0].Str("id"),
        std::string(kBuildExists));
  }
  VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, a.Str("zone_id")));
  std::string id = NewId("build");
  std::string task_id = NewId("task");
  auto opt = [](const std::string& s) { return s.empty() ? Value(nullptr) : Value(s); };
  VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO builds (id, app_id, platform, mrenclave, mrsigner, isvprodid, isvsvn, debug, "
                                "image_ref, image_digest, status, task_id, created_at, created_by) "
                                "VALUES (?, ?, 'sgx', ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                                {id, a.Str("id"), spec.mrenclave, spec.mrsigner, spec.isvprodid, spec.isvsvn,
                                 int64_t{spec.debug}, opt(spec.image_ref), opt(spec.image_digest), task_id, now, actor})
                            .status());
  std::string summary = "approve build " + id + " of app " + a.Str("name") + " (mrenclave " +
                        spec.mrenclave.substr(0, 16) + "…" + (spec.debug ? ", DEBUG" : "") + ")";
  VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, build_id, summary, "
                                "approvals_required, created_at, created_by) VALUES (?, 'build', 'pending', ?, ?, ?, ?, ?, ?, ?)",
                                {task_id, a.Str("zone_id"), a.Str("id"), id, summary,
                                 int64_t{policy.approvals_required}, now, actor})
                            .status());
  VOUCH_ASSIGN_OR_RETURN(Row b, tx.QueryOne(std::string(kBuildSelect) + " WHERE b.id = ?", {id}, "build"));
  VOUCH_ASSIGN_OR_RETURN(json out, BuildJson(tx, b));
  VOUCH_RETURN_IF_ERROR(store::AppendAudit(
      tx, m.clock().Now(), actor, "build.create", id, "ok",
      {{"app", a.Str("name")}, {"mrenclave", spec.mrenclave}, {"mrsigner", spec.mrsigner},
       {"isvprodid", spec.isvprodid}, {"isvsvn", spec.isvsvn}, {"debug", spec.debug}, {"task", task_id}}));
  return out;
}

Result<Row> FindAppRow(Transaction& tx, const std::string& id_or_name) { return FindApp(tx, id_or_name); }

}  // namespace internal

Result<json> Manager::CreateBuild(const Principal& p, const BuildSpec& in) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  BuildSpec spec = in;
  spec.mrenclave = Lower(spec.mrenclave);
  spec.mrsigner = Lower(spec.mrsigner);
  VOUCH_RETURN_IF_ERROR(CheckHex32(spec.mrenclave, "mrenclave"));
  VOUCH_RETURN_IF_ERROR(CheckHex32(spec.mrsigner, "mrsigner"));
  if (spec.isvprodid < 0 || spec.isvprodid > 65535)
    return InvalidArgument("isvprodid must be 0..65535", std::string(kInvalidIsvprodid));
  if (spec.isvsvn < 0 || spec.isvsvn > 65535)
    return InvalidArgument("isvsvn must be 0..65535", std::string(kInvalidIsvsvn));
  if (spec.image_ref.size() > 512)
    return InvalidArgument("image_ref is too long", std::string(kInvalidImageRef));
  if (!spec.image_digest.empty() &&
      (spec.image_digest.rfind("sha256:", 0) != 0 || !CheckHex32(spec.image_digest.substr(7), "image_digest").ok())) {
    return InvalidArgument("image_digest must look like sha256:<64 hex>",
                           std::string(kInvalidImageDigest));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row a, FindApp(tx, spec.app));
    VOUCH_ASSIGN_OR_RETURN(out, internal::InsertBuild(tx, *this, p.Actor(), a, spec, Now()));
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::ListBuilds(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  std::string status = Filter(q, "status");
  if (!status.empty() && status != "pending" && status != "approved" && status != "denied" && status != "revoked") {
    return InvalidArgument("status must be pending, approved, denied or revoked",
                           std::string(kInvalidStatus));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string app = Filter(q, "app"); !app.empty()) {
      cond.push_back("(a.name = ? OR a.id = ?)");
      params.emplace_back(app);
      params.emplace_back(app);
    }
    if (!status.empty()) {
      cond.push_back("b.status = ?");
      params.emplace_back(status);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, kBuildSelect, cond, params, q, "b.created_at", false, "b.id"));
    json items = json::array();
    for (const Row& r : page.rows) {
      VOUCH_ASSIGN_OR_RETURN(json b, BuildJson(tx, r));
      items.push_back(std::move(b));
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetBuild(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  return GetOne(*db_, kBuildSelect, "b.id", id, "build", kBuildNotFound,
                [&](Transaction& tx, const Row& r) { return BuildJson(tx, r); });
}

Result<json> Manager::RevokeBuild(const Principal& p, const std::string& id, const std::string& reason) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kApprove));
  if (reason.size() > 1000)
    return InvalidArgument("reason is too long (max 1000)", std::string(kInvalidReason));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kBuildSelect) + " WHERE b.id = ?", {id}));
    if (rows.empty())
      return NotFound("build '" + id.substr(0, 80) + "' not found", std::string(kBuildNotFound));
    const Row& b = rows[0];
    std::string st = b.Str("status");
    if (st == "revoked" || st == "denied") {
      return FailedPrecondition("build " + id + " is already " + st,
                                std::string(kBuildNotRevocable));
    }
    int64_t now = Now();
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE builds SET status = 'revoked', reason = ? WHERE id = ?",
                                  {reason.empty() ? Value(nullptr) : Value(reason), id})
                              .status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE tasks SET status = 'cancelled', decided_at = ? WHERE build_id = ? AND status = 'pending'",
                                  {now, id})
                              .status());
    std::vector<std::string> zones;
    VOUCH_RETURN_IF_ERROR(RevokeCertsWhere(tx, "build_id = ?", {id}, "build revoked", &zones));
    VOUCH_ASSIGN_OR_RETURN(Row updated, tx.QueryOne(std::string(kBuildSelect) + " WHERE b.id = ?", {id}, "build"));
    VOUCH_ASSIGN_OR_RETURN(out, BuildJson(tx, updated));
    return Audit(tx, *this, p, "build.revoke", id, {{"reason", reason}, {"previous_status", st}});
  }));
  return out;
}

// ---------------------------------------------------------------- tasks

Result<json> Manager::ListTasks(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  std::string status = Filter(q, "status");
  if (!status.empty() && status != "pending" && status != "approved" && status != "denied" && status != "cancelled") {
    return InvalidArgument("status must be pending, approved, denied or cancelled",
                           std::string(kInvalidStatus));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (!status.empty()) {
      cond.push_back("t.status = ?");
      params.emplace_back(status);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, kTaskSelect, cond, params, q, "t.created_at", false, "t.id"));
    json items = json::array();
    for (const Row& r : page.rows) {
      VOUCH_ASSIGN_OR_RETURN(json t, TaskJson(tx, r));
      items.push_back(std::move(t));
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetTask(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kTaskSelect) + " WHERE t.id = ?", {id}));
    if (rows.empty())
      return NotFound("task '" + id.substr(0, 80) + "' not found", std::string(kTaskNotFound));
    VOUCH_ASSIGN_OR_RETURN(out, TaskJson(tx, rows[0]));
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::DecideTask(Transaction& tx, const Principal& p, const Row& t, bool approve,
                                 const std::string& reason) {
  std::string id = t.Str("id");
  if (t.Str("status") != "pending") {
    return FailedPrecondition("task " + id + " is " + t.Str("status") + ", not pending",
                              std::string(kTaskNotPending));
  }
  int64_t now = Now();
  std::string kind = t.Str("kind");
  json detail = {{"kind", kind}};
  if (approve) {
    // The primary key (task_id, user_name) makes a second approval by the same person a no-op.
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO task_approvals (task_id, user_name, at) VALUES (?, ?, ?) "
                                  "ON CONFLICT (task_id, user_name) DO NOTHING",
                                  {id, p.name, now})
                              .status());
    VOUCH_ASSIGN_OR_RETURN(Row c, tx.QueryOne("SELECT COUNT(*) FROM task_approvals WHERE task_id = ?", {id}, "approvals"));
    int64_t given = c.Int(0);
    detail["approvals"] = given;
    detail["required"] = t.Int("approvals_required");
    if (given >= t.Int("approvals_required")) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE tasks SET status = 'approved', decided_at = ? WHERE id = ?", {now, id}).status());
      if (kind == "build") {
        VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE builds SET status = 'approved' WHERE id = ? AND status = 'pending'",
                                      {t.Str("build_id")})
                                  .status());
      } else if (kind == "node_identity") {
        VOUCH_RETURN_IF_ERROR(DecideNodeIdentityTask(tx, t, true));  // manager_node_identities.cc
      } else if (kind == "signing_key") {
        VOUCH_RETURN_IF_ERROR(DecideSigningKeyTask(tx, *this, t, true));  // manager_signing_keys.cc
      } else if (kind == "ca_rotation") {
        VOUCH_RETURN_IF_ERROR(DecideCaRotationTask(tx, t, true));  // manager_ca_rotation.cc
      } else {
        // Checked again now: another app may have been granted an overlapping name since the
        // request (two pending requests for one name: the second approval fails).
        VOUCH_ASSIGN_OR_RETURN(std::vector<Holding> holdings, ZoneHoldings(tx, t.Str("zone_id"), t.Str("app_id"), false));
        VOUCH_RETURN_IF_ERROR(CheckNotTaken(holdings, t.Str("domain")));
        VOUCH_ASSIGN_OR_RETURN(Row a, tx.QueryOne("SELECT domains FROM apps WHERE id = ?", {t.Str("app_id")}, "app"));
        std::vector<std::string> domains = DomainList(a.Str("domains"));
        if (std::find(domains.begin(), domains.end(), t.Str("domain")) == domains.end()) domains.push_back(t.Str("domain"));
        std::sort(domains.begin(), domains.end());
        VOUCH_RETURN_IF_ERROR(
            tx.Exec("UPDATE apps SET domains = ? WHERE id = ?", {json(domains).dump(), t.Str("app_id")}).status());
      }
      detail["decision"] = "approved";
    }
  } else {
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE tasks SET status = 'denied', denied_by = ?, reason = ?, decided_at = ? WHERE id = ?",
                                  {p.name, reason, now, id})
                              .status());
    if (kind == "build") {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE builds SET status = 'denied', reason = ? WHERE id = ? AND status = 'pending'",
                                    {reason, t.Str("build_id")})
                                .status());
    }
    if (kind == "node_identity") VOUCH_RETURN_IF_ERROR(DecideNodeIdentityTask(tx, t, false));
    if (kind == "signing_key") VOUCH_RETURN_IF_ERROR(DecideSigningKeyTask(tx, *this, t, false));
    if (kind == "ca_rotation") VOUCH_RETURN_IF_ERROR(DecideCaRotationTask(tx, t, false));
    detail["decision"] = "denied";
    detail["reason"] = reason;
  }
  VOUCH_RETURN_IF_ERROR(Audit(tx, *this, p, approve ? "task.approve" : "task.deny", id, detail));
  VOUCH_ASSIGN_OR_RETURN(Row updated, tx.QueryOne(std::string(kTaskSelect) + " WHERE t.id = ?", {id}, "task"));
  return TaskJson(tx, updated);
}

Result<json> Manager::ApproveTask(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kApprove));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kTaskSelect) + " WHERE t.id = ?", {id}));
    if (rows.empty())
      return NotFound("task '" + id.substr(0, 80) + "' not found", std::string(kTaskNotFound));
    VOUCH_ASSIGN_OR_RETURN(out, DecideTask(tx, p, rows[0], true, ""));
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::DenyTask(const Principal& p, const std::string& id, const std::string& reason) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kApprove));
  if (reason.empty() || reason.size() > 1000) {
    return InvalidArgument("a reason (1-1000 characters) is required to deny",
                           std::string(kInvalidReason));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kTaskSelect) + " WHERE t.id = ?", {id}));
    if (rows.empty())
      return NotFound("task '" + id.substr(0, 80) + "' not found", std::string(kTaskNotFound));
    VOUCH_ASSIGN_OR_RETURN(out, DecideTask(tx, p, rows[0], false, reason));
    return Status::Ok();
  }));
  return out;
}

}  // namespace vouch::api
