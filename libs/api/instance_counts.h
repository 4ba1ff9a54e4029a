#pragma once

// Instances at scale (issue 16; docs/operations.md, "A million instances"): the SQL that filters
// and counts instances by their shown status on the indexes of migration 6, and the batched
// pruning of stopped instances. No counters are kept, so the heartbeat and issuance paths write
// nothing besides the instance row.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "store/database.h"

namespace vouch::api {

// A status as the API shows it: "running" (status running, last heartbeat at or after `cutoff`),
// "unresponsive" (status running, last heartbeat before `cutoff`), "stopped". `cutoff` is
// now - heartbeat interval * missed intervals (Manager::EffectiveInstanceStatus).
// No index holds last_heartbeat (migration 6), so "running" and "unresponsive" are read along
// instances_status_seen (or the app's or node's index) with last_heartbeat as a residual test:
// `windowed`, a page examines at most kInstanceScanWindow rows after its cursor, and a page
// with fewer matches than asked for still carries a next_cursor when the window was full.
struct InstanceStatusFilter {
  std::string sql;  // ANDed conditions on the instances alias `i`
  std::vector<store::Value> params;
  bool windowed = false;
};
inline constexpr int64_t kInstanceScanWindow = 5000;
// InvalidArgument kInvalidStatus for another status.
Result<InstanceStatusFilter> InstanceStatusCondition(std::string_view status, int64_t cutoff);

// The instances list's SELECT (alias `i`, app name as app_name); pages in (i.first_seen, i.id).
inline constexpr char kInstanceListSelect[] =
    "SELECT i.*, a.name AS app_name FROM instances i LEFT JOIN apps a ON a.id = i.app_id";

struct InstanceCountValues {
  int64_t running = 0;
  int64_t unresponsive = 0;
  int64_t stopped = 0;
};
// Running and stopped from instances_status_seen alone; unresponsive by one pass over the table
// (about 0.1 s at 1,000,000 rows on SQLite), which is why Manager::InstanceCounts reuses an
// answer for ManagerOptions::counts_max_age.
Result<InstanceCountValues> CountInstances(store::Transaction& tx, std::string_view backend, int64_t cutoff);

// Deletes stopped instances whose last heartbeat is before `before`, `batch` per write
// transaction, until none is left. Each batch adds its count to the settings row
// "instance_prune_pending" in its own transaction; the run ends with one audit entry
// "instance.prune" (actor `actor`, target "instances", detail {count, before}) for the pending
// total, written in the transaction that clears it. So a run cut short (crash, error) is audited
// by the next one, and nothing deleted goes unaudited. At most `max_batches` batches per run (so
// a run ends soon, e.g. at shutdown; the caller runs again when it deleted that many). Returns
// the count deleted by this run.
Result<int64_t> PruneStoppedInstances(store::Database& db, const Clock& clock, const std::string& actor, int64_t before,
                                      int64_t batch, int64_t max_batches);

}  // namespace vouch::api
