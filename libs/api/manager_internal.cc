#include "api/manager_internal.h"

#include <charconv>

#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/random.h"

namespace vouch::api::internal {

std::string NewId(std::string_view prefix) {
  return std::string(prefix) + "_" + HexEncode(crypto::RandomBytes(8));
}

std::string TimeJson(int64_t unix_seconds) { return FormatRfc3339(FromUnixSeconds(unix_seconds)); }

json TimeOrNull(const Row& row, std::string_view col) {
  if (row.IsNull(col)) return nullptr;
  return TimeJson(row.Int(col));
}

json ParseJsonColumn(const std::string& text, json fallback) {
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

std::string HashToken(std::string_view token) { return HexEncode(crypto::Sha256(token)); }

Result<PageResult> QueryPage(Transaction& tx, const std::string& select_sql, std::vector<std::string> conditions,
                             std::vector<Value> params, const ListQuery& q, const std::string& sort_col,
                             bool descending, const std::string& id_col) {
  if (q.limit < 1 || q.limit > 1000)
    return InvalidArgument("limit must be between 1 and 1000", std::string(kInvalidLimit));
  if (!q.cursor.empty()) {
    auto raw = Base64UrlDecode(q.cursor);
    if (!raw.ok()) return InvalidArgument("invalid cursor", std::string(kInvalidCursor));
    std::string s(raw->begin(), raw->end());
    size_t bar = s.find('|');
    int64_t sort_value = 0;
    if (bar == std::string::npos ||
        std::from_chars(s.data(), s.data() + bar, sort_value).ec != std::errc() || bar + 1 >= s.size()) {
      return InvalidArgument("invalid cursor", std::string(kInvalidCursor));
    }
    std::string id = s.substr(bar + 1);
    const char* op = descending ? "<" : ">";
    // A row value: one index seek on (sort_col, id_col) in SQLite and PostgreSQL alike, however
    // many rows share the sort value (an OR of the two cases scans them).
    conditions.push_back("(" + sort_col + ", " + id_col + ") " + op + " (?, ?)");
    params.emplace_back(sort_value);
    params.emplace_back(id);
  }
  std::string sql = select_sql;
  for (size_t i = 0; i < conditions.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
  const char* dir = descending ? " DESC" : " ASC";
  sql += " ORDER BY " + sort_col + dir + ", " + id_col + dir + " LIMIT ?";
  params.emplace_back(q.limit + 1);
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(sql, params));
  PageResult page;
  if (static_cast<int64_t>(rows.size()) > q.limit) {
    rows.erase(rows.begin() + q.limit, rows.end());
    const Row& last = rows.back();
    // A row's columns are named without the table alias ("i.first_seen" reads "first_seen").
    auto bare = [](const std::string& col) { return col.substr(col.find('.') + 1); };
    std::string c = std::to_string(last.Int(bare(sort_col))) + "|" + last.Str(bare(id_col));
    page.next_cursor = Base64UrlEncode(AsBytes(c));
  }
  page.rows = std::move(rows);
  return page;
}

json PageJson(json items, const std::string& next_cursor) {
  return {{"items", std::move(items)}, {"next_cursor", next_cursor.empty() ? json(nullptr) : json(next_cursor)}};
}

Result<Row> FindByIdOrName(Transaction& tx, const std::string& table, const std::string& key, std::string_view what,
                           const std::string& extra_condition) {
  std::string sql = "SELECT * FROM " + table + " WHERE (id = ? OR name = ?)";
  if (!extra_condition.empty()) sql += " AND " + extra_condition;
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(sql, {key, key}));
  if (rows.empty()) {
    return NotFound(std::string(what) + " '" + key.substr(0, 80) + "' not found", std::string(what) + "_not_found");
  }
  return std::move(rows.front());
}

Result<json> GetOne(store::Database& db, std::string_view select, std::string_view key_column, const std::string& key,
                    std::string_view what, std::string_view reason,
                    const std::function<Result<json>(Transaction&, const Row&)>& to_json) {
  json out;
  VOUCH_RETURN_IF_ERROR(db.Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(select) + " WHERE " + std::string(key_column) + " = ?", {key}));
    if (rows.empty()) return NotFound(std::string(what) + " '" + key.substr(0, 80) + "' not found", std::string(reason));
    VOUCH_ASSIGN_OR_RETURN(out, to_json(tx, rows[0]));
    return Status::Ok();
  }));
  return out;
}

Status Audit(Transaction& tx, const Manager& m, const Principal& p, std::string action, std::string target,
             const json& detail) {
  return store::AppendAudit(tx, m.clock().Now(), p.Actor(), std::move(action), std::move(target), "ok", detail);
}

std::string Filter(const ListQuery& q, const std::string& key) {
  auto it = q.filters.find(key);
  return it == q.filters.end() ? std::string() : it->second;
}

}  // namespace vouch::api::internal
