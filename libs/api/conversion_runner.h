#pragma once

// vouchd's conversion workers (docs/convert.md "Server-side conversion"): a bounded pool that
// claims queued jobs (rows of `conversions`, created by Manager::CreateConversion) with a lease,
// runs libs/convert's Convert on each (the code of `vouch convert`) in a scratch directory of its
// own, writes progress, state and a short log to the row at a bounded rate, and ends the job:
// done together with its build (pending approval) in one transaction, or failed with a stable
// code, or cancelled.
//
// Leases: a claimed job names this member (lease_owner) until lease_expires_at, renewed while it
// runs. A job whose lease expired (its member died) is taken over by any member and retried from
// the start (attempts + 1); at start-up a member requeues the jobs it held itself (restart,
// kill -9) and empties its scratch directory. A job interrupted `max_attempts` times fails
// "interrupted". Every update after the claim is conditional on this member still holding the
// lease, so a job that was taken over is never finished twice, and its build is created once.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/manager.h"
#include "convert/convert.h"
#include "base/result.h"
#include "http/metrics.h"
#include "store/database.h"

namespace vouch::api {

struct ConversionRunnerOptions {
  int workers = 1;  // 0: this member runs no jobs (they wait for another member)
  std::string scratch_dir;                   // created 0700; this member uses <scratch_dir>/<member_id>
  uint64_t scratch_limit = 20ull << 30;      // bytes of blobs all running jobs may hold at once
  std::string runtime_path;                  // the vouch-rte to embed
  std::string member_id;                     // stable across restarts of this member
  std::chrono::seconds lease{30};
  std::chrono::seconds renew{10};            // the lease is renewed at least this often
  std::chrono::milliseconds poll{2000};      // queued jobs are looked for at least this often
  std::chrono::milliseconds progress_interval{250};  // at most one progress write per job per interval
  int max_attempts = 3;
  // Tests: called on the converting thread at each phase change, before anything of the phase
  // runs, with the job's cancel token (e.g. to hold a job in a phase until it is cancelled).
  std::function<void(std::string_view phase, const convert::CancelToken& token)> on_phase;
};

class ConversionRunner {
 public:
  // Requeues this member's interrupted jobs, cleans its scratch directory, registers the metrics
  // (vouch_conversions, vouch_conversion_duration_seconds, vouch_conversion_bytes_total) and
  // starts the workers. `manager` and `metrics` (may be null) must outlive the runner.
  static Result<std::unique_ptr<ConversionRunner>> Start(Manager& manager, ConversionRunnerOptions options,
                                                         http::Metrics* metrics);
  ~ConversionRunner();  // Stop()
  ConversionRunner(const ConversionRunner&) = delete;
  ConversionRunner& operator=(const ConversionRunner&) = delete;

  // Stops the workers: running conversions are stopped and left claimed (requeued at the next
  // start of this member, or taken over by another one when the lease expires).
  void Stop();
  // Looks for work and cancellations now.
  void Wake();
  // Jobs running in this process (tests).
  int Running() const;

  struct Impl;

 private:
  explicit ConversionRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace internal {

// Shared by manager_conversions.cc and conversion_runner.cc.
inline constexpr char kConversionSelect[] =
    "SELECT c.*, a.name AS app_name, ri.name AS input_registry_name, ro.name AS output_registry_name "
    "FROM conversions c JOIN apps a ON a.id = c.app_id LEFT JOIN registries ri ON ri.id = c.input_registry_id "
    "LEFT JOIN registries ro ON ro.id = c.output_registry_id";
inline constexpr size_t kConversionLogLines = 50;
inline constexpr size_t kConversionLogLineMax = 500;
const std::vector<std::string>& ConversionStateNames();
// The job record (docs/api.md "Conversions") of a kConversionSelect row.
Result<json> ConversionJson(const store::Row& r);
// The log column with `lines` appended, the last kConversionLogLines kept.
json AppendLog(const std::string& log_text, const std::vector<std::string>& lines);

}  // namespace internal
}  // namespace vouch::api
