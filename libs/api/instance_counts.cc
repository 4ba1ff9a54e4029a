#include "api/instance_counts.h"

#include <chrono>
#include <map>
#include <mutex>

#include "api/manager.h"
#include "api/reasons.h"
#include "store/audit.h"

namespace vouch::api {

using store::Rows;
using store::Transaction;
using store::Value;

namespace {

// The settings row holding instances deleted by pruning but not audited yet.
constexpr char kPrunePendingSetting[] = "instance_prune_pending";

}  // namespace

Result<InstanceStatusFilter> InstanceStatusCondition(std::string_view status, int64_t cutoff) {
  InstanceStatusFilter f;
  if (status == "stopped") {
    f.sql = "i.status = 'stopped'";
  } else if (status == "running" || status == "unresponsive") {
    f.sql = status == "running" ? "i.status = 'running' AND i.last_heartbeat >= ?"
                                : "i.status = 'running' AND i.last_heartbeat < ?";
    f.params = {cutoff};
    f.windowed = true;
  } else {
    return InvalidArgument("status must be running, stopped or unresponsive", std::string(kInvalidStatus));
  }
  return f;
}

Result<InstanceCountValues> CountInstances(Transaction& tx, std::string_view backend, int64_t cutoff) {
  // SQLite would otherwise walk instances_status_seen and read each running row through it.
  const std::string table = backend == "sqlite" ? "instances NOT INDEXED" : "instances";
  VOUCH_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Query("SELECT (SELECT count(*) FROM instances WHERE status = 'running'), "
               "(SELECT count(*) FROM " + table + " WHERE status = 'running' AND last_heartbeat < ?), "
               "(SELECT count(*) FROM instances WHERE status = 'stopped')",
               {cutoff}));
  InstanceCountValues v;
  if (!rows.empty()) {
    v.unresponsive = rows[0].Int(1);
    v.running = rows[0].Int(0) - v.unresponsive;
    v.stopped = rows[0].Int(2);
  }
  return v;
}

Result<int64_t> PruneStoppedInstances(store::Database& db, const Clock& clock, const std::string& actor, int64_t before,
                                      int64_t batch, int64_t max_batches) {
  int64_t total = 0;
  for (int64_t round = 0; round < max_batches; ++round) {
    int64_t deleted = 0;
    VOUCH_RETURN_IF_ERROR(db.Write([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(deleted, tx.Exec("DELETE FROM instances WHERE id IN (SELECT id FROM instances WHERE "
                                              "status = 'stopped' AND last_heartbeat < ? LIMIT ?)",
                                              {before, batch}));
      if (deleted == 0) return Status::Ok();
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, '0') ON CONFLICT (key) DO NOTHING",
                                    {std::string(kPrunePendingSetting)})
                                .status());
      return tx.Exec("UPDATE settings SET value = CAST(CAST(value AS BIGINT) + ? AS TEXT) WHERE key = ?",
                     {deleted, std::string(kPrunePendingSetting)})
          .status();
    }));
    total += deleted;
    if (deleted < batch) break;
  }
  // The aggregate entry, for this run and whatever an interrupted run left pending.
  VOUCH_RETURN_IF_ERROR(db.Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT value FROM settings WHERE key = ?", {std::string(kPrunePendingSetting)}));
    int64_t pending = 0;
    if (!rows.empty()) pending = std::strtoll(rows[0].Str(0).c_str(), nullptr, 10);
    if (pending <= 0) return Status::Ok();
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE settings SET value = CAST(CAST(value AS BIGINT) - ? AS TEXT) WHERE key = ?",
                                  {pending, std::string(kPrunePendingSetting)})
                              .status());
    return store::AppendAudit(tx, clock.Now(), actor, "instance.prune", "instances", "ok",
                              {{"count", pending}, {"stopped_before", FormatRfc3339(FromUnixSeconds(before))}});
  }));
  return total;
}

// ---------------------------------------------------------------- the Manager's side

struct Manager::CountsCache {
  std::mutex mu;
  std::mutex computing;  // one count at a time: consoles asking at once share its answer
  std::chrono::steady_clock::time_point instances_at;
  json instances;  // null: none yet
  std::map<int64_t, std::pair<std::chrono::steady_clock::time_point, json>> certificates;  // by days (1..365)
};

std::shared_ptr<Manager::CountsCache> Manager::NewCountsCache() { return std::make_shared<CountsCache>(); }

Result<json> Manager::InstanceCounts(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  const auto fresh = std::chrono::steady_clock::now() - options_.counts_max_age;
  std::lock_guard<std::mutex> one(counts_cache_->computing);
  {
    std::lock_guard<std::mutex> lock(counts_cache_->mu);
    if (!counts_cache_->instances.is_null() && counts_cache_->instances_at > fresh) return counts_cache_->instances;
  }
  const int64_t cutoff = Now() - options_.heartbeat_interval.count() * options_.missed_intervals;
  InstanceCountValues v;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(v, CountInstances(tx, db_->backend(), cutoff));
    return Status::Ok();
  }));
  json out{{"running", v.running},
           {"unresponsive", v.unresponsive},
           {"stopped", v.stopped},
           {"total", v.running + v.unresponsive + v.stopped}};
  std::lock_guard<std::mutex> lock(counts_cache_->mu);
  counts_cache_->instances = out;
  counts_cache_->instances_at = std::chrono::steady_clock::now();
  return out;
}

Result<json> Manager::CertificateCounts(const Principal& p, int64_t expiring_within_days) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (expiring_within_days < 1 || expiring_within_days > 365) {
    return InvalidArgument("expiring_within_days must be an integer between 1 and 365", std::string(kInvalidFilter));
  }
  const auto fresh = std::chrono::steady_clock::now() - options_.counts_max_age;
  std::lock_guard<std::mutex> one(counts_cache_->computing);
  {
    std::lock_guard<std::mutex> lock(counts_cache_->mu);
    auto it = counts_cache_->certificates.find(expiring_within_days);
    if (it != counts_cache_->certificates.end() && it->second.first > fresh) return it->second.second;
  }
  const int64_t now = Now();
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows,
                           tx.Query("SELECT (SELECT count(*) FROM certificates WHERE status = 'valid' AND not_after > ?), "
                                    "(SELECT count(*) FROM certificates WHERE status = 'valid' AND not_after > ? AND "
                                    "not_after <= ?)",
                                    {now, now, now + expiring_within_days * 86400}));
    out = {{"valid", rows.empty() ? 0 : rows[0].Int(0)},
           {"expiring", rows.empty() ? 0 : rows[0].Int(1)},
           {"expiring_within_days", expiring_within_days}};
    return Status::Ok();
  }));
  std::lock_guard<std::mutex> lock(counts_cache_->mu);
  counts_cache_->certificates[expiring_within_days] = {std::chrono::steady_clock::now(), out};
  return out;
}

Result<int64_t> Manager::PruneInstances(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (options_.instance_retention.count() <= 0) return int64_t{0};
  const int64_t before = Now() - options_.instance_retention.count();
  VOUCH_ASSIGN_OR_RETURN(int64_t n, PruneStoppedInstances(*db_, *clock_, p.Actor(), before, kPruneBatch, kPruneMaxBatches));
  instances_pruned_.fetch_add(n);
  return n;
}

}  // namespace vouch::api
