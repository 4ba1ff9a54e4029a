// Node reads and deactivation, and the workload instances the agents report.
#include <charconv>
#include <optional>

#include "api/instance_counts.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "base/encoding.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {
constexpr char kNodeSelect[] = "SELECT n.*, z.name AS zone_name FROM nodes n JOIN zones z ON z.id = n.zone_id";

json NodeJson(const Row& r) {
  return {{"id", r.Str("id")},
          {"zone", r.Str("zone_name")},
          {"platform", r.Str("platform")},
          {"tcb_status", r.Str("tcb_status")},
          {"advisory_ids", ParseJsonColumn(r.Str("advisory_ids"), json::array())},
          {"fmspc", r.IsNull("fmspc") ? json(nullptr) : json(r.Str("fmspc"))},
          {"status", r.Str("status")},
          {"last_seen", TimeOrNull(r, "last_seen")},
          {"cert_not_after", TimeOrNull(r, "cert_not_after")},
          {"info", r.IsNull("info") ? json::object() : ParseJsonColumn(r.Str("info"), json::object())},
          {"created_at", TimeJson(r.Int("created_at"))}};
}
// The last row, (first_seen, id), of a full window of kInstanceScanWindow running instances
// (`where`: the window's conditions on alias i); none when fewer are left.
using WindowEnd = std::pair<int64_t, std::string>;
Result<std::optional<WindowEnd>> FindWindowEnd(Transaction& tx, const std::string& where, std::vector<Value> params) {
  params.emplace_back(kInstanceScanWindow - 1);
  VOUCH_ASSIGN_OR_RETURN(Rows end, tx.Query("SELECT i.first_seen, i.id FROM instances i" + where +
                                                " ORDER BY i.first_seen, i.id LIMIT 1 OFFSET ?",
                                            params));
  if (end.empty()) return std::optional<WindowEnd>();
  return std::optional<WindowEnd>(WindowEnd(end[0].Int(0), end[0].Str(1)));
}
}  // namespace

Result<json> Manager::ListNodes(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string zone = Filter(q, "zone"); !zone.empty()) {
      cond.push_back("(z.name = ? OR z.id = ?)");
      params.emplace_back(zone);
      params.emplace_back(zone);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, kNodeSelect, cond, params, q, "n.created_at", false, "n.id"));
    json items = json::array();
    for (const Row& r : page.rows) {
      items.push_back(NodeJson(r));
      items.back()["status"] = EffectiveNodeStatus(r);
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetNode(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  return GetOne(*db_, kNodeSelect, "n.id", id, "node", kNodeNotFound, [&](Transaction&, const Row& r) -> Result<json> {
    json out = NodeJson(r);
    out["status"] = EffectiveNodeStatus(r);
    return out;
  });
}

Result<json> Manager::DeactivateNode(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kNodeSelect) + " WHERE n.id = ?", {id}));
    if (rows.empty())
      return NotFound("node '" + id.substr(0, 80) + "' not found", std::string(kNodeNotFound));
    if (rows[0].Str("status") == "deactivated") {
      return FailedPrecondition("node " + id + " is already deactivated",
                                std::string(kNodeDeactivated));
    }
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE nodes SET status = 'deactivated' WHERE id = ?", {id}).status());
    std::vector<std::string> zones;
    VOUCH_RETURN_IF_ERROR(RevokeCertsWhere(tx, "node_id = ?", {id}, "node deactivated", &zones));
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("UPDATE instances SET status = 'stopped' WHERE node_id = ? AND status <> 'stopped'", {id}).status());
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(std::string(kNodeSelect) + " WHERE n.id = ?", {id}, "node"));
    out = NodeJson(r);
    return Audit(tx, *this, p, "node.deactivate", id);
  }));
  return out;
}

Result<json> Manager::ListInstances(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  const std::string status = Filter(q, "status");
  if (!status.empty() && status != "running" && status != "stopped" && status != "unresponsive") {
    return InvalidArgument("status must be running, stopped or unresponsive", std::string(kInvalidStatus));
  }
  const int64_t cutoff = Now() - options_.heartbeat_interval.count() * options_.missed_intervals;
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    // Every filter is an equality or range on an index of migration 6 (api/instance_counts.h);
    // the LEFT JOIN keeps instances the outer loop, walked in page order.
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string app = Filter(q, "app"); !app.empty()) {
      VOUCH_ASSIGN_OR_RETURN(Rows apps, tx.Query("SELECT id FROM apps WHERE id = ? OR name = ?", {app, app}));
      if (apps.empty()) {
        out = PageJson(json::array(), "");
        return Status::Ok();
      }
      cond.push_back("i.app_id = ?");
      params.emplace_back(apps[0].Str(0));
    }
    if (std::string node = Filter(q, "node"); !node.empty()) {
      cond.push_back("i.node_id = ?");
      params.emplace_back(node);
    }
    // running / unresponsive: the window of kInstanceScanWindow running instances after the
    // cursor (api/instance_counts.h), ended by its last row's (first_seen, id).
    std::optional<WindowEnd> window_end;
    std::string select = kInstanceListSelect;
    std::string window_where;          // the window's conditions (alias i), when windowed
    std::vector<Value> window_params;  // their parameters
    const bool lazy_window = db_->backend() == "postgres";
    if (!status.empty()) {
      VOUCH_ASSIGN_OR_RETURN(InstanceStatusFilter f, InstanceStatusCondition(status, cutoff));
      if (f.windowed) {
        std::vector<std::string> wcond = cond;
        window_params = params;
        wcond.push_back("i.status = 'running'");
        if (!q.cursor.empty()) {
          auto raw = Base64UrlDecode(q.cursor);
          std::string c = raw.ok() ? std::string(raw->begin(), raw->end()) : std::string();
          const size_t bar = c.find('|');
          int64_t seen = 0;
          if (bar == std::string::npos || std::from_chars(c.data(), c.data() + bar, seen).ec != std::errc() ||
              bar + 1 >= c.size()) {
            return InvalidArgument("invalid cursor", std::string(kInvalidCursor));
          }
          wcond.push_back("(i.first_seen, i.id) > (?, ?)");
          window_params.emplace_back(seen);
          window_params.emplace_back(c.substr(bar + 1));
        }
        for (size_t k = 0; k < wcond.size(); ++k) window_where += (k == 0 ? " WHERE " : " AND ") + wcond[k];
        if (lazy_window) {
          // PostgreSQL reads the window lazily inside the page query (a subquery with its LIMIT,
          // in index order, no sort): a page stops after its limit + 1 matches instead of walking
          // the whole window first, and the window's end is looked up only when the page comes
          // out short (BENCHMARKS.md, "PostgreSQL costs (issue 16)"). SQLite would sort the
          // subquery's rows again for the outer ORDER BY, so it finds the window's end first.
          select = "SELECT i.*, a.name AS app_name FROM (SELECT * FROM instances i" + window_where +
                   " ORDER BY i.first_seen, i.id LIMIT ?) i LEFT JOIN apps a ON a.id = i.app_id";
          cond.clear();
          params = window_params;
          params.emplace_back(kInstanceScanWindow);
        } else {
          VOUCH_ASSIGN_OR_RETURN(std::optional<WindowEnd> end, FindWindowEnd(tx, window_where, window_params));
          window_end = end;
          if (window_end) {
            cond.push_back("(i.first_seen, i.id) <= (?, ?)");
            params.emplace_back(window_end->first);
            params.emplace_back(window_end->second);
          }
        }
      }
      cond.push_back(f.sql);
      params.insert(params.end(), f.params.begin(), f.params.end());
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, select, cond, params, q, "i.first_seen", false, "i.id"));
    if (page.next_cursor.empty() && lazy_window && !window_where.empty()) {
      VOUCH_ASSIGN_OR_RETURN(window_end, FindWindowEnd(tx, window_where, window_params));
    }
    if (page.next_cursor.empty() && window_end) {
      // Fewer matches than asked for in a full window: the next page starts after it.
      const std::string c = std::to_string(window_end->first) + "|" + window_end->second;
      page.next_cursor = Base64UrlEncode(AsBytes(c));
    }
    // The status shown, with the same cutoff as the filter (EffectiveInstanceStatus's rule).
    auto status_of = [cutoff](const Row& r) {
      std::string s = r.Str("status");
      const int64_t last = r.IsNull("last_heartbeat") ? r.Int("first_seen") : r.Int("last_heartbeat");
      return s == "running" && last < cutoff ? std::string("unresponsive") : s;
    };
    json items = json::array();
    for (const Row& r : page.rows) {
      items.push_back({{"id", r.Str("id")},
                       {"app", r.Str("app_name")},
                       {"build_id", r.Str("build_id")},
                       {"node", r.IsNull("node_id") ? json(nullptr) : json(r.Str("node_id"))},
                       {"serial", r.IsNull("serial") ? json(nullptr) : json(r.Str("serial"))},
                       {"status", status_of(r)},
                       {"last_seq", r.Int("last_seq")},
                       {"first_seen", TimeJson(r.Int("first_seen"))},
                       {"last_heartbeat", TimeOrNull(r, "last_heartbeat")}});
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

}  // namespace vouch::api
