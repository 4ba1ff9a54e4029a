#pragma once

// Helpers shared by the manager_*.cc files. Not part of the public API.

#include <compare>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/manager.h"
#include "store/audit.h"
#include "store/database.h"

namespace vouch::api::internal {

using store::Row;
using store::Rows;
using store::Transaction;
using store::Value;

std::string NewId(std::string_view prefix);
std::string TimeJson(int64_t unix_seconds);
json TimeOrNull(const Row& row, std::string_view col);
json ParseJsonColumn(const std::string& text, json fallback);
std::string HashToken(std::string_view token);

// A page of results: rows sorted by (sort_col, id). `select_sql` is "SELECT ... FROM t" and
// `conditions` are ANDed. The cursor is opaque to clients.
struct PageResult {
  Rows rows;
  std::string next_cursor;  // empty: no more
};
Result<PageResult> QueryPage(Transaction& tx, const std::string& select_sql, std::vector<std::string> conditions,
                             std::vector<Value> params, const ListQuery& q, const std::string& sort_col = "created_at",
                             bool descending = false, const std::string& id_col = "id");
json PageJson(json items, const std::string& next_cursor);

// Looks up by id or unique name; NotFound("<what> '<key>' not found").
Result<Row> FindByIdOrName(Transaction& tx, const std::string& table, const std::string& key, std::string_view what,
                           const std::string& extra_condition = "");

// The shape of Get<Thing>: the row of `select` + " WHERE <key_column> = ?" as JSON (`to_json`),
// in one snapshot; NotFound "<what> '<key>' not found" with `reason` when there is none.
Result<json> GetOne(store::Database& db, std::string_view select, std::string_view key_column, const std::string& key,
                    std::string_view what, std::string_view reason,
                    const std::function<Result<json>(Transaction&, const Row&)>& to_json);

Status Audit(Transaction& tx, const Manager& m, const Principal& p, std::string action, std::string target,
             const json& detail = json::object());

// A row-keyed write (store::WriteMode::kRowKeyed; docs/cluster.md): for writes whose correctness
// rests on their rows' own keys and row locks (workload issuance and instance creation,
// heartbeats). On PostgreSQL they run concurrently with each other, never with a serial write.
inline Status WriteRowKeyed(store::Database& db, const std::function<Status(Transaction&)>& fn) {
  return db.Write(fn, store::WriteMode::kRowKeyed);
}

std::string Filter(const ListQuery& q, const std::string& key);

// manager_apps.cc: CreateBuild's core, for a caller that validated `spec` and holds the app row
// (kAppSelect): the pending build, its approval task and the "build.create" audit entry by
// `actor`, in `tx`. AlreadyExists kBuildExists when an identical build is pending or approved
// (its id in `*existing_id` when given). A finished conversion uses it in the transaction of the
// job's final update.
Result<json> InsertBuild(Transaction& tx, const Manager& m, const std::string& actor, const Row& app,
                         const BuildSpec& spec, int64_t now, std::string* existing_id = nullptr);
Result<Row> FindAppRow(Transaction& tx, const std::string& id_or_name);  // kAppSelect; NotFound kAppNotFound

// manager_collateral.cc: name, size and mtime of every file in the collateral folders (what
// ReloadCollateral compares), and loading them (`strict`: each must hold complete, correctly
// signed collateral).
std::string CollateralFingerprint(const std::vector<std::string>& dirs);
Result<std::shared_ptr<const std::vector<std::unique_ptr<attest::DcapVerifier>>>> LoadVerifiers(
    const std::vector<std::string>& dirs, bool strict);

}  // namespace vouch::api::internal

namespace vouch::api {

// Unauthenticated refusals counted per (minute, source, action, outcome) until written
// (Manager::AuditUnauthenticated, manager_users.cc).
struct Manager::RefusalAggregates {
  struct Key {
    int64_t minute = 0;  // Unix minute
    std::string source, action, outcome;
    auto operator<=>(const Key&) const = default;
  };
  struct Counts {
    int64_t count = 0;  // refusals not written yet
    std::vector<std::string> targets;  // the first few distinct ones
    std::string message;               // of the first refusal
  };
  using Closed = std::vector<std::pair<Key, Counts>>;
  std::mutex mu;
  std::map<Key, Counts> open;
  // Moves the keys of minutes before `minute` (every key when `all`) out of `open`. Locks mu.
  Closed TakeClosed(int64_t minute, bool all);
  // One audit row per key with a count > 0: "anonymous:<source>", detail {count, from, to,
  // targets, message}. The first refusal of a key is written at once (count 1); the key's
  // count then holds the further ones, written when its minute closes.
  static Status Write(store::Database& db, const Clock& clock, const Closed& rows);
};

}  // namespace vouch::api

namespace vouch::api {

// A zone's stored policy (manager_zones.cc); NotFound "zone" when there is no such zone.
Result<ZonePolicy> LoadZonePolicy(store::Transaction& tx, const std::string& zone_id);
// A zone's policy from its stored JSON (zones.policy); DataLoss kStoreCorrupt when unreadable.
Result<ZonePolicy> PolicyFromJson(const std::string& text);

}  // namespace vouch::api
