// Coalesced heartbeat writes (api/heartbeat_store.h).
#include "api/heartbeat_store.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "api/reasons.h"

namespace vouch::api {
namespace {

using json = nlohmann::json;
using store::Row;
using store::Rows;
using store::Value;

constexpr std::string_view kOk = "ok";
constexpr std::string_view kReplayed = "replayed";
constexpr std::string_view kStopped = "instance_stopped";

// The instances `ids` of the node, as id -> row (columns per `columns`), in one query.
Result<std::unordered_map<std::string, Row>> LoadInstances(store::Transaction& tx, bool pg, const std::string& node_id,
                                                          const std::vector<std::string_view>& ids, bool lock) {
  Rows rows;
  if (pg) {
    // FOR UPDATE: the rows stay as read until COMMIT (row-keyed groups run concurrently).
    VOUCH_ASSIGN_OR_RETURN(rows, tx.Query(lock ? "SELECT id, last_seq, status FROM instances WHERE node_id = ? AND "
                                                 "id = ANY(?::text[]) ORDER BY id FOR UPDATE"
                                               : "SELECT id, last_seq, status FROM instances WHERE node_id = ? AND "
                                                 "id = ANY(?::text[])",
                                          {node_id, PgTextArray(ids)}));
  } else {
    json list = json::array();
    for (std::string_view id : ids) list.push_back(std::string(id));
    // `+node_id`: look the ids up by primary key, never by scanning the node's instances through
    // an index on node_id (SQLite's planner would otherwise take it).
    VOUCH_ASSIGN_OR_RETURN(rows, tx.Query("SELECT id, last_seq, status FROM instances WHERE +node_id = ? AND "
                                          "id IN (SELECT value FROM json_each(?))",
                                          {node_id, list.dump()}));
  }
  std::unordered_map<std::string, Row> out;
  for (Row& r : rows) {
    std::string id = r.Str(0);
    out.emplace(std::move(id), std::move(r));
  }
  return out;
}

}  // namespace

Result<int64_t> RecordHeartbeats(store::Transaction& tx, std::string_view backend, const std::string& node_id,
                                 int64_t now, const json& node_info, std::vector<HeartbeatWrite>& hbs) {
  const bool pg = backend == "postgres";
  // Each instance's heartbeats in sequence order (equal seqs as the batch had them).
  std::vector<std::string_view> instances;
  std::unordered_map<std::string_view, std::vector<size_t>> of;
  for (size_t i = 0; i < hbs.size(); ++i) {
    auto [it, fresh] = of.try_emplace(hbs[i].instance_id);
    if (fresh) instances.push_back(hbs[i].instance_id);
    it->second.push_back(i);
  }
  for (auto& [id, idx] : of) {
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return hbs[a].seq < hbs[b].seq; });
  }

  // What each instance's row becomes: the heartbeat of an instance that appears once, as is
  // (the UPDATE's condition decides); for one that appears more often, the last heartbeat the
  // sequential rule accepts, decided on its row read and locked first.
  struct Update {
    size_t hb;        // index into hbs
    bool single;      // the instance's only heartbeat in this batch
  };
  std::vector<Update> updates;
  std::vector<std::string_view> repeated;
  for (std::string_view id : instances) {
    const std::vector<size_t>& idx = of[id];
    if (idx.size() == 1) {
      updates.push_back({idx[0], true});
    } else {
      repeated.push_back(id);
    }
  }
  if (!repeated.empty()) {
    VOUCH_ASSIGN_OR_RETURN(auto rows, LoadInstances(tx, pg, node_id, repeated, true));
    for (std::string_view id : repeated) {
      auto row = rows.find(std::string(id));
      bool exists = row != rows.end();
      int64_t last = exists ? row->second.Int(1) : 0;
      std::string status = exists ? row->second.Str(2) : "";
      std::optional<size_t> final_hb;
      for (size_t i : of[id]) {
        HeartbeatWrite& h = hbs[i];
        if (exists && last < h.seq && status != "stopped") {
          h.result = kOk;
          last = h.seq;
          status = h.stopping ? "stopped" : "running";
          final_hb = i;
        } else {
          h.result = exists && status == "stopped" ? kStopped : kReplayed;
        }
      }
      if (final_hb) updates.push_back({*final_hb, false});
    }
  }

  // One statement for every instance's row.
  std::unordered_set<std::string> updated;
  if (!updates.empty()) {
    if (pg) {
      std::vector<std::string_view> ids, statuses;
      std::vector<int64_t> seqs, seens;
      for (const Update& u : updates) {
        const HeartbeatWrite& h = hbs[u.hb];
        ids.push_back(h.instance_id);
        seqs.push_back(h.seq);
        seens.push_back(std::min(h.seen, now));
        statuses.push_back(h.stopping ? "stopped" : "running");
      }
      VOUCH_ASSIGN_OR_RETURN(
          Rows rows,
          tx.Query("UPDATE instances AS i SET last_seq = u.seq, last_heartbeat = u.seen, status = u.status "
                   "FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::text[]) AS u(id, seq, seen, status) "
                   "WHERE i.id = u.id AND i.node_id = ? AND i.last_seq < u.seq AND i.status <> 'stopped' "
                   "RETURNING i.id",
                   {PgTextArray(ids), PgIntArray(seqs), PgIntArray(seens), PgTextArray(statuses), node_id}));
      for (const Row& r : rows) updated.insert(r.Str(0));
    } else {
      // One writer: a prepared statement run per instance costs no round trip. Only a stopping
      // heartbeat names status: a row that is not stopped is running already, and SQLite rewrites
      // the entries of every index on a column the SET names, changed or not.
      // The parameters' storage is reused from row to row (no allocation per heartbeat).
      std::vector<Value> params = {int64_t{0}, int64_t{0}, std::string(), node_id, int64_t{0}};
      for (const Update& u : updates) {
        const HeartbeatWrite& h = hbs[u.hb];
        params[0] = h.seq;
        params[1] = std::min(h.seen, now);
        std::get<std::string>(params[2]).assign(h.instance_id);
        params[4] = h.seq;
        VOUCH_ASSIGN_OR_RETURN(
            int64_t n, h.stopping ? tx.Exec("UPDATE instances SET last_seq = ?, last_heartbeat = ?, status = 'stopped' "
                                            "WHERE id = ? AND node_id = ? AND last_seq < ? AND status <> 'stopped'",
                                            params)
                                  : tx.Exec("UPDATE instances SET last_seq = ?, last_heartbeat = ? "
                                            "WHERE id = ? AND node_id = ? AND last_seq < ? AND status <> 'stopped'",
                                            params));
        if (n == 1) updated.insert(h.instance_id);
      }
    }
  }
  // Those not updated: a stopped instance takes no more heartbeats; otherwise the seq was seen.
  std::vector<std::string_view> missed;
  for (const Update& u : updates) {
    HeartbeatWrite& h = hbs[u.hb];
    if (updated.count(h.instance_id)) {
      h.result = kOk;
    } else if (u.single) {
      missed.push_back(h.instance_id);
    } else {
      // Decided on the row as locked above: nothing else may have changed it.
      return Aborted("instance " + h.instance_id + " changed under its row lock", std::string(kConflictRetry));
    }
  }
  if (!missed.empty()) {
    VOUCH_ASSIGN_OR_RETURN(auto rows, LoadInstances(tx, pg, node_id, missed, false));
    for (const Update& u : updates) {
      HeartbeatWrite& h = hbs[u.hb];
      if (!u.single || updated.count(h.instance_id)) continue;
      auto row = rows.find(h.instance_id);
      h.result = row != rows.end() && row->second.Str(2) == "stopped" ? kStopped : kReplayed;
    }
  }

  json info = node_info.is_object() ? node_info : json::object();
  if (pg) {
    // The node's row is shared by all of its batches: a concurrent group recording another batch
    // of this node holds it until its COMMIT and sets the same last_seen, so this one does not
    // wait for it (SKIP LOCKED). Waiting would order every batch of a node one after another and
    // could deadlock two groups that each hold batches of the same nodes in opposite orders.
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE nodes SET last_seen = ?, info = ? WHERE id IN "
                                  "(SELECT id FROM nodes WHERE id = ? FOR UPDATE SKIP LOCKED)",
                                  {now, info.dump(), node_id})
                              .status());
  } else {
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE nodes SET last_seen = ?, info = ? WHERE id = ?", {now, info.dump(), node_id})
                              .status());
  }
  int64_t accepted = 0;
  for (const HeartbeatWrite& h : hbs) accepted += h.result == kOk ? 1 : 0;
  return accepted;
}

}  // namespace vouch::api
