#pragma once

// Recording a node's batch of verified heartbeats (docs/agent.md, "What vouchd checks";
// docs/cluster.md for the PostgreSQL write path): one statement per table for the whole batch
// instead of one round trip per heartbeat.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "store/database.h"
#include "store/postgres_sql.h"

namespace vouch::api {

// One heartbeat whose signature or MAC was verified. `result` is set by RecordHeartbeats.
struct HeartbeatWrite {
  std::string instance_id;
  int64_t seq = 0;
  int64_t seen = 0;       // the heartbeat's time, never later than the server's `now`
  bool stopping = false;  // the workload reported "stopping": the instance becomes "stopped"
  std::string_view result;  // "ok", "replayed" or "instance_stopped"
};

// Records `hbs` inside `tx` (a Database::Write, store::WriteMode::kRowKeyed) for node `node_id`,
// with the semantics of one UPDATE per heartbeat in increasing `seq` order: a heartbeat is
// recorded ("ok": the instance's last_seq, last_heartbeat and status become its own) only if its
// seq is above the instance's last and the instance is not stopped; otherwise it is
// "instance_stopped" (the instance is stopped) or "replayed" (the seq was seen, or no such
// instance of this node). An instance may appear more than once in a batch. Then the node's
// last_seen and info are updated (on PostgreSQL not when a concurrent transaction recording
// another batch of the node holds its row: that one sets them). `backend` is
// Database::backend(). Returns how many were "ok".
// Statements: PostgreSQL one UPDATE ... FROM unnest(arrays) RETURNING for all instances, one
// SELECT to classify those not updated (only if any), one SELECT ... FOR UPDATE for instances
// appearing more than once (only if any), one UPDATE of nodes; SQLite (one writer) the same with
// one prepared UPDATE run per instance.
Result<int64_t> RecordHeartbeats(store::Transaction& tx, std::string_view backend, const std::string& node_id,
                                 int64_t now, const nlohmann::json& node_info, std::vector<HeartbeatWrite>& hbs);

// PostgreSQL array literals (bound as one parameter, never spliced into SQL): store/postgres_sql.h.
using store::PgIntArray;
using store::PgTextArray;

}  // namespace vouch::api
