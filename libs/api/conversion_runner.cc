#include "api/conversion_runner.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "api/manager_internal.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "base/file.h"
#include "convert/convert.h"
#include "convert/options.h"
#include "oci/reasons.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

namespace {

constexpr char kRunningStates[] = "('pulling', 'converting', 'pushing')";

int64_t NowOf(const Manager& m) { return ToUnixSeconds(m.clock().Now()); }

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

json ProgressJson(std::string_view phase, const convert::Progress& p) {
  return {{"phase", std::string(phase)},
          {"layers_done", p.layers_done},
          {"layers_total", p.layers_total},
          {"bytes_done", p.bytes_done},
          {"bytes_total", p.bytes_total}};
}

// A job as claimed.
struct Job {
  std::string id, app_id, app_name, input_image, output_image, input_registry_id, output_registry_id, options,
      created_by;
  int64_t attempt = 0;
};

// Ends a job that is not running here (taken over after its member died, or requeued at start).
Status EndUnclaimed(Transaction& tx, const Manager& m, const Row& r, const std::string& state, std::string_view code,
                    const std::string& message) {
  const int64_t now = NowOf(m);
  VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE conversions SET state = ?, error_code = ?, error_message = ?, log = ?, "
                                "lease_owner = NULL, lease_expires_at = NULL, finished_at = ?, updated_at = ? "
                                "WHERE id = ?",
                                {state, std::string(code), message, AppendLog(r.Str("log"), {message}).dump(), now, now,
                                 r.Str("id")})
                            .status());
  return Audit(tx, m, Principal::System(), "conversion." + state, r.Str("id"),
               {{"code", std::string(code)}, {"attempts", r.Int("attempts")}});
}

}  // namespace

struct ConversionRunner::Impl {
  Impl(Manager& manager, ConversionRunnerOptions options, http::Metrics* metrics_out)
      : m(manager), o(std::move(options)), metrics(metrics_out), dir(o.scratch_dir + "/" + o.member_id) {}

  Manager& m;
  ConversionRunnerOptions o;
  http::Metrics* metrics;
  const std::string dir;  // this member's scratch directory

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  uint64_t wake_seq = 0;
  std::vector<std::thread> threads;
  std::atomic<int> running{0};
  uint64_t reserved = 0;  // scratch bytes reserved by running jobs (under mu)

  void WorkerLoop();
  Result<std::optional<Job>> Claim();
  void Run(const Job& job);
  Status Requeue();

  // Waits until woken, stopped or `d` passed. Returns false when stopping.
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    const uint64_t seen = wake_seq;
    cv.wait_for(lock, d, [&] { return stopping || wake_seq != seen; });
    return !stopping;
  }
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stopping;
  }
};

ConversionRunner::ConversionRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ConversionRunner::~ConversionRunner() { Stop(); }

int ConversionRunner::Running() const { return impl_->running.load(); }

void ConversionRunner::Wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ++impl_->wake_seq;
  }
  impl_->cv.notify_all();
}

void ConversionRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping && impl_->threads.empty()) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->m.SetConversionListener(nullptr);
}

Result<std::unique_ptr<ConversionRunner>> ConversionRunner::Start(Manager& manager, ConversionRunnerOptions options,
                                                                  http::Metrics* metrics) {
  if (options.member_id.empty() || options.member_id.find('/') != std::string::npos) {
    return InvalidArgument("conversion runner needs a member id without '/'", std::string(kInvalidArgument));
  }
  if (options.workers < 0) return InvalidArgument("conversion workers must be 0 or more", std::string(kInvalidArgument));
  auto impl = std::make_unique<Impl>(manager, std::move(options), metrics);
  // This member's jobs from before a restart or crash: their scratch is gone with the directory,
  // and they are queued again (or end, see Requeue).
  std::error_code ec;
  std::filesystem::remove_all(impl->dir, ec);
  if (impl->o.workers > 0) VOUCH_RETURN_IF_ERROR(MakeDirs(impl->dir, 0700));
  VOUCH_RETURN_IF_ERROR(impl->Requeue());
  if (metrics != nullptr) {
    // One count query per scrape for all states (the callbacks run one after the other).
    struct Counts {
      std::mutex mu;
      std::chrono::steady_clock::time_point at;
      std::map<std::string, int64_t> by_state;
    };
    auto counts = std::make_shared<Counts>();
    for (const std::string& state : ConversionStateNames()) {
      metrics->AddGaugeCallback("vouch_conversions", "Conversion jobs in the store, by state", {{"state", state}},
                                [&manager, state, counts] {
                                  std::lock_guard<std::mutex> lock(counts->mu);
                                  const auto now = std::chrono::steady_clock::now();
                                  if (counts->by_state.empty() || now - counts->at > std::chrono::milliseconds(500)) {
                                    counts->by_state = manager.ConversionStates();
                                    counts->at = now;
                                  }
                                  return static_cast<double>(counts->by_state[state]);
                                });
    }
    metrics->DeclareHistogram("vouch_conversion_duration_seconds",
                              "Duration of conversion jobs run by this member, from claim to end, by result",
                              {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600});
    metrics->DeclareCounter("vouch_conversion_bytes_total",
                            "Compressed input layer bytes of the conversions this member completed");
  }
  std::unique_ptr<ConversionRunner> runner(new ConversionRunner(std::move(impl)));
  Impl* raw = runner->impl_.get();
  ConversionRunner* self = runner.get();
  manager.SetConversionListener([self] { self->Wake(); });
  for (int i = 0; i < raw->o.workers; ++i) raw->threads.emplace_back([raw] { raw->WorkerLoop(); });
  return runner;
}

Status ConversionRunner::Impl::Requeue() {
  return m.db().Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string("SELECT id, attempts, cancel_requested, log FROM conversions "
                                                           "WHERE lease_owner = ? AND state IN ") +
                                                   kRunningStates,
                                               {o.member_id}));
    for (const Row& r : rows) {
      if (r.Int("cancel_requested") != 0) {
        VOUCH_RETURN_IF_ERROR(EndUnclaimed(tx, m, r, "cancelled", oci::kCancelled, "cancelled (interrupted by a restart)"));
      } else if (r.Int("attempts") >= o.max_attempts) {
        VOUCH_RETURN_IF_ERROR(EndUnclaimed(tx, m, r, "failed", kInterrupted,
                                           "interrupted " + std::to_string(r.Int("attempts")) +
                                               " times (member restarts); not retried"));
      } else {
        const int64_t now = NowOf(m);
        const std::string line = "interrupted (member " + o.member_id + " restarted); queued again";
        VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE conversions SET state = 'queued', lease_owner = NULL, "
                                      "lease_expires_at = NULL, log = ?, updated_at = ? WHERE id = ?",
                                      {AppendLog(r.Str("log"), {line}).dump(), now, r.Str("id")})
                                  .status());
        VOUCH_RETURN_IF_ERROR(Audit(tx, m, Principal::System(), "conversion.requeue", r.Str("id"),
                                    {{"member", o.member_id}, {"attempts", r.Int("attempts")}}));
      }
    }
    return Status::Ok();
  });
}

Result<std::optional<Job>> ConversionRunner::Impl::Claim() {
  std::optional<Job> claimed;
  // Idle members only read (the index on state): no write transaction, which PostgreSQL
  // serialises across members, unless there is something to claim.
  bool any = false;
  VOUCH_RETURN_IF_ERROR(m.db().Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string("SELECT id FROM conversions WHERE state = 'queued' OR (state IN ") +
                                                   kRunningStates + " AND lease_expires_at < ?) LIMIT 1",
                                               {NowOf(m)}));
    any = !rows.empty();
    return Status::Ok();
  }));
  if (!any) return claimed;
  VOUCH_RETURN_IF_ERROR(m.db().Write([&](Transaction& tx) -> Status {
    claimed.reset();
    const int64_t now = NowOf(m);
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kConversionSelect) +
                                                   " WHERE c.state = 'queued' OR (c.state IN " + kRunningStates +
                                                   " AND c.lease_expires_at < ?) ORDER BY c.created_at, c.id LIMIT 10",
                                               {now}));
    for (const Row& r : rows) {
      const std::string state = r.Str("state");
      const bool interrupted = state != "queued";
      if (r.Int("cancel_requested") != 0) {
        VOUCH_RETURN_IF_ERROR(EndUnclaimed(tx, m, r, "cancelled", oci::kCancelled, "cancelled"));
        continue;
      }
      if (interrupted && r.Int("attempts") >= o.max_attempts) {
        VOUCH_RETURN_IF_ERROR(EndUnclaimed(
            tx, m, r, "failed", kInterrupted,
            "interrupted " + std::to_string(r.Int("attempts")) + " times (member " +
                (r.IsNull("lease_owner") ? std::string("?") : r.Str("lease_owner")) + " stopped answering); not retried"));
        continue;
      }
      const int64_t attempt = r.Int("attempts") + 1;
      std::vector<std::string> lines;
      if (interrupted) {
        lines.push_back("member " + r.Str("lease_owner") + " stopped answering during " + state + "; taken over");
      }
      lines.push_back("attempt " + std::to_string(attempt) + " on member " + o.member_id);
      const json progress = ProgressJson("pulling", {});
      VOUCH_ASSIGN_OR_RETURN(
          int64_t changed,
          tx.Exec("UPDATE conversions SET state = 'pulling', lease_owner = ?, lease_expires_at = ?, attempts = ?, "
                  "started_at = ?, progress = ?, log = ?, error_code = NULL, error_message = NULL, updated_at = ? "
                  "WHERE id = ? AND state = ? AND attempts = ?",
                  {o.member_id, now + static_cast<int64_t>(o.lease.count()), attempt, now, progress.dump(),
                   AppendLog(r.Str("log"), lines).dump(), now, r.Str("id"), state, r.Int("attempts")}));
      if (changed != 1) continue;
      VOUCH_RETURN_IF_ERROR(Audit(tx, m, Principal::System(), "conversion.start", r.Str("id"),
                                  {{"app", r.Str("app_name")}, {"member", o.member_id}, {"attempt", attempt}}));
      Job j;
      j.id = r.Str("id");
      j.app_id = r.Str("app_id");
      j.app_name = r.Str("app_name");
      j.input_image = r.Str("input_image");
      j.output_image = r.Str("output_image");
      j.input_registry_id = r.IsNull("input_registry_id") ? "" : r.Str("input_registry_id");
      j.output_registry_id = r.IsNull("output_registry_id") ? "" : r.Str("output_registry_id");
      j.options = r.Str("options");
      j.created_by = r.Str("created_by");
      j.attempt = attempt;
      claimed = std::move(j);
      return Status::Ok();
    }
    return Status::Ok();
  }));
  return claimed;
}

void ConversionRunner::Impl::WorkerLoop() {
  while (true) {
    if (Stopping()) return;
    auto job = Claim();
    if (job.ok() && job->has_value()) {
      running.fetch_add(1);
      Run(**job);
      running.fetch_sub(1);
      continue;  // look for the next one at once
    }
    if (!WaitFor(o.poll)) return;
  }
}

namespace {

// What the converting thread and the job's monitor share.
struct JobState {
  std::mutex mu;
  convert::Progress progress;
  std::string phase = "pulling";
  bool dirty = true;
  std::vector<std::string> lines;  // not yet written
  Status stop;                     // why the token was cancelled (other than a user's cancel)
  bool done = false;
  bool scratch_checked = false;
  uint64_t reserved = 0;
  convert::CancelToken token;
  void Stop(Status why) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop.ok()) stop = std::move(why);
    }
    token.Cancel();
  }
};

}  // namespace

void ConversionRunner::Impl::Run(const Job& job) {
  const auto started = std::chrono::steady_clock::now();
  const std::string job_dir = dir + "/" + job.id;
  std::error_code ec;
  std::filesystem::remove_all(job_dir, ec);
  // Whatever way this ends, the job's scratch (blobs, CA files) goes.
  struct ScratchGuard {
    const std::string& path;
    ~ScratchGuard() {
      std::error_code e;
      std::filesystem::remove_all(path, e);
    }
  } scratch_guard{job_dir};

  // The lease-conditional final update of the row: `fn` adds what it changes (build, audit);
  // nothing happens when another member holds the job now.
  auto finish = [&](const std::string& state, std::string_view code, const std::string& message,
                    const std::vector<std::string>& lines, const json& progress,
                    const std::function<Status(Transaction&, std::vector<std::string>*)>& extra) -> bool {
    bool ours = false;
    Status st = m.db().Write([&](Transaction& tx) -> Status {
      ours = false;
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string("SELECT log FROM conversions WHERE id = ? AND lease_owner = ? "
                                                             "AND state IN ") +
                                                     kRunningStates,
                                                 {job.id, o.member_id}));
      if (rows.empty()) return Status::Ok();
      ours = true;
      std::vector<std::string> all = lines;
      if (extra) VOUCH_RETURN_IF_ERROR(extra(tx, &all));
      const int64_t now = NowOf(m);
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE conversions SET state = ?, error_code = ?, error_message = ?, progress = ?, "
                                    "log = ?, lease_owner = NULL, lease_expires_at = NULL, finished_at = ?, "
                                    "updated_at = ? WHERE id = ? AND lease_owner = ?",
                                    {state, code.empty() ? Value(nullptr) : Value(std::string(code)),
                                     code.empty() ? Value(nullptr) : Value(message.substr(0, 2000)), progress.dump(),
                                     AppendLog(rows[0].Str("log"), all).dump(), now, now, job.id, o.member_id})
                                .status());
      json detail = {{"app", job.app_name}, {"member", o.member_id}, {"attempt", job.attempt}};
      if (!code.empty()) detail["code"] = std::string(code);
      return Audit(tx, m, Principal::System(), "conversion." + state, job.id, detail);
    });
    if (!st.ok()) return false;
    return ours;
  };
  auto fail = [&](std::string_view code, const std::string& message) {
    finish("failed", code, message, {"failed (" + std::string(code) + "): " + message.substr(0, 400)},
           ProgressJson("failed", {}), nullptr);
  };

  // 1. What the job needs from the store: registries (secrets unsealed), the app's signing key,
  //    the zone CA. Never logged.
  std::optional<RegistryAccess> in_reg, out_reg;
  std::optional<AppSigningKey> key;
  std::string zone_ca;
  Status loaded = m.db().Write([&](Transaction& tx) -> Status {
    in_reg.reset();
    out_reg.reset();
    key.reset();
    if (!job.input_registry_id.empty()) {
      VOUCH_ASSIGN_OR_RETURN(in_reg, LoadRegistryAccess(tx, m, job.input_registry_id));
    }
    if (!job.output_registry_id.empty()) {
      VOUCH_ASSIGN_OR_RETURN(out_reg, LoadRegistryAccess(tx, m, job.output_registry_id));
    }
    VOUCH_ASSIGN_OR_RETURN(key, ActiveAppSigningKey(tx, m, job.app_id));
    VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT z.ca_cert_pem FROM apps a JOIN zones z ON z.id = a.zone_id "
                                              "WHERE a.id = ?",
                                              {job.app_id}, "app"));
    zone_ca = z.Str("ca_cert_pem");
    return Status::Ok();
  });
  if (!loaded.ok()) {
    fail(loaded.reason().empty() ? convert::kConversionFailed : std::string_view(loaded.reason()), loaded.message());
    return;
  }
  auto settings = convert::SettingsFromJson(json::parse(job.options, nullptr, false));
  if (!settings.ok()) {
    fail(convert::kImageRejected, settings.status().message());
    return;
  }
  if (Status st = MakeDirs(job_dir, 0700); !st.ok()) {
    fail(oci::kScratchExhausted, "scratch directory: " + st.message());
    return;
  }

  convert::ConvertOptions co;
  co.input = job.input_image;
  co.output = job.output_image;
  co.work_dir = job_dir;
  co.runtime_path = o.runtime_path;
  co.signing_key = key->key.get();
  if (Status st = convert::ApplyTo(*settings, &co); !st.ok()) {
    fail(convert::kImageRejected, st.message());
    return;
  }
  co.base.app = job.app_name;
  co.base.manager_url = m.options().conversions.manager_url;
  co.base.zone_ca_pem = zone_ca;
  auto use_registry = [&](const std::optional<RegistryAccess>& r, oci::TransportOptions* t, const char* name) -> Status {
    if (!r) return Status::Ok();
    t->credentials.username = r->username;
    t->credentials.password = std::string(r->secret.view());
    if (r->insecure) t->insecure_registries.push_back(r->host);
    if (!r->ca_pem.empty()) {
      t->ca_file = job_dir + "/" + name + "-ca.pem";
      VOUCH_RETURN_IF_ERROR(WriteFileAtomic(t->ca_file, r->ca_pem, 0600));
    }
    return Status::Ok();
  };
  if (Status st = use_registry(in_reg, &co.input_transport, "input"); !st.ok()) {
    fail(oci::kScratchExhausted, st.message());
    return;
  }
  if (Status st = use_registry(out_reg, &co.output_transport, "output"); !st.ok()) {
    fail(oci::kScratchExhausted, st.message());
    return;
  }
  uint64_t runtime_bytes = 0;
  if (std::filesystem::exists(o.runtime_path, ec)) runtime_bytes = std::filesystem::file_size(o.runtime_path, ec);

  // 2. Convert on its own thread; this one writes progress and watches the lease and cancels.
  JobState js;
  js.lines.push_back("pulling " + job.input_image);
  co.cancel = &js.token;
  auto record = [&](const convert::Progress& p) {
    std::lock_guard<std::mutex> lock(js.mu);
    if (js.phase != p.phase) {
      if (p.phase == convert::kPhaseConverting) {
        js.lines.push_back("pulled " + std::to_string(js.progress.layers_total) + " layer(s), " +
                           Mib(js.progress.bytes_total));
      }
      js.lines.push_back(std::string(p.phase) +
                         (p.phase == convert::kPhasePushing ? " to " + job.output_image : std::string()));
      js.phase = std::string(p.phase);
    }
    js.progress = p;
    js.dirty = true;
    // The blobs of the pull land in scratch: reserve them once their size is known.
    if (!js.scratch_checked && p.phase == convert::kPhasePulling && p.bytes_total > 0) {
      js.scratch_checked = true;
      const uint64_t need = p.bytes_total + runtime_bytes + (1 << 20);
      uint64_t free_bytes = UINT64_MAX;
      struct statvfs sv {};
      if (::statvfs(job_dir.c_str(), &sv) == 0) free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
      std::string refusal;
      {
        std::lock_guard<std::mutex> rl(mu);
        if (need > o.scratch_limit - std::min(o.scratch_limit, reserved)) {
          refusal = "the image needs " + Mib(need) + " of scratch space; the limit is " + Mib(o.scratch_limit) + " (" +
                    Mib(reserved) + " held by other running conversions)";
        } else if (need > free_bytes) {
          refusal = "the image needs " + Mib(need) + " of scratch space; " + Mib(free_bytes) + " are free";
        } else {
          reserved += need;
          js.reserved = need;
        }
      }
      if (!refusal.empty()) {
        if (js.stop.ok()) js.stop = ResourceExhausted(refusal, std::string(oci::kScratchExhausted));
        js.token.Cancel();
      }
    }
  };
  std::string hooked_phase;
  co.on_progress = [&](const convert::Progress& p) {
    record(p);
    if (o.on_phase && hooked_phase != p.phase) {
      hooked_phase = std::string(p.phase);
      o.on_phase(p.phase, js.token);
    }
  };
  Result<convert::ConvertResult> result = Internal("not run");
  std::thread worker([&] {
    auto r = convert::Convert(co);
    std::lock_guard<std::mutex> lock(js.mu);
    result = std::move(r);
    js.done = true;
  });

  bool lost = false;
  bool shutdown = false;
  auto last_write = std::chrono::steady_clock::now() - o.progress_interval;
  auto last_renew = std::chrono::steady_clock::now();
  while (true) {
    bool done, dirty;
    json progress;
    std::vector<std::string> lines;
    std::string phase;
    {
      std::lock_guard<std::mutex> lock(js.mu);
      done = js.done;
      dirty = js.dirty;
      phase = js.phase;
      progress = ProgressJson(js.phase, js.progress);
    }
    if (done) break;
    const auto now_steady = std::chrono::steady_clock::now();
    if (!shutdown && Stopping()) {
      shutdown = true;
      js.Stop(Aborted("vouchd is stopping", std::string(oci::kCancelled)));
    }
    if (!lost && !shutdown && ((dirty && now_steady - last_write >= o.progress_interval) || now_steady - last_renew >= o.renew)) {
      {
        std::lock_guard<std::mutex> lock(js.mu);
        js.dirty = false;
        lines.swap(js.lines);
      }
      int64_t changed = 0;
      bool cancel_requested = false;
      Status st = m.db().Write([&](Transaction& tx) -> Status {
        VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string("SELECT log, cancel_requested FROM conversions WHERE id = ? "
                                                               "AND lease_owner = ? AND state IN ") +
                                                       kRunningStates,
                                                   {job.id, o.member_id}));
        changed = static_cast<int64_t>(rows.size());
        if (rows.empty()) return Status::Ok();
        cancel_requested = rows[0].Int("cancel_requested") != 0;
        const int64_t now = NowOf(m);
        return tx.Exec("UPDATE conversions SET state = ?, progress = ?, log = ?, lease_expires_at = ?, updated_at = ? "
                       "WHERE id = ? AND lease_owner = ?",
                       {phase, progress.dump(), AppendLog(rows[0].Str("log"), lines).dump(),
                        now + static_cast<int64_t>(o.lease.count()), now, job.id, o.member_id})
            .status();
      });
      last_write = now_steady;
      if (st.ok()) {
        last_renew = now_steady;
        if (changed == 0) {
          lost = true;
          js.Stop(Aborted("the job's lease was lost (taken over by another member)", std::string(oci::kCancelled)));
        } else if (cancel_requested) {
          js.token.Cancel();
        }
      } else {
        // Lines not written go out with the next write.
        std::lock_guard<std::mutex> lock(js.mu);
        js.lines.insert(js.lines.begin(), lines.begin(), lines.end());
        js.dirty = true;
      }
    } else if (!lost && !shutdown && !js.token.cancelled()) {
      // A cancel requested through another member shows up here between progress writes.
      bool cancel_requested = false;
      (void)m.db().Read([&](Transaction& tx) -> Status {
        VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT cancel_requested FROM conversions WHERE id = ?", {job.id}));
        cancel_requested = !rows.empty() && rows[0].Int("cancel_requested") != 0;
        return Status::Ok();
      });
      if (cancel_requested) js.token.Cancel();
    }
    WaitFor(o.progress_interval);
  }
  worker.join();
  {
    std::lock_guard<std::mutex> rl(mu);
    reserved -= std::min(reserved, js.reserved);
  }
  std::filesystem::remove_all(job_dir, ec);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (lost || shutdown) return;  // another member has it, or this member requeues it at its next start

  std::vector<std::string> lines;
  json last_progress;
  Status stop;
  {
    std::lock_guard<std::mutex> lock(js.mu);
    lines.swap(js.lines);
    last_progress = ProgressJson(js.phase, js.progress);
    stop = js.stop;
  }
  auto observe = [&](const char* outcome) {
    if (metrics != nullptr) metrics->Observe("vouch_conversion_duration_seconds", {{"result", outcome}}, seconds);
  };
  if (result.ok()) {
    const convert::ConvertResult& r = *result;
    lines.push_back("pushed " + r.output + "@" + r.digest);
    last_progress["phase"] = "done";
    const bool ended = finish("done", "", "", lines, last_progress,
                              [&](Transaction& tx, std::vector<std::string>* log) -> Status {
      BuildSpec spec;
      spec.app = job.app_id;
      spec.mrenclave = r.mrenclave;
      spec.mrsigner = r.mrsigner;
      spec.isvprodid = r.isvprodid;
      spec.isvsvn = r.isvsvn;
      spec.debug = r.debug;
      spec.image_ref = r.output.substr(0, 512);
      spec.image_digest = r.digest;
      VOUCH_ASSIGN_OR_RETURN(Row app, FindAppRow(tx, job.app_id));
      std::string build_id;
      auto built = InsertBuild(tx, m, job.created_by, app, spec, NowOf(m), &build_id);
      if (built.ok()) {
        build_id = (*built)["id"].get<std::string>();
        log->push_back("build " + build_id + " created, pending approval");
      } else if (built.status().reason() == kBuildExists && !build_id.empty()) {
        log->push_back("an identical build is already registered: " + build_id);
      } else {
        return built.status();
      }
      return tx.Exec("UPDATE conversions SET output_digest = ?, mrenclave = ?, mrsigner = ?, build_id = ?, "
                     "bytes_converted = ? WHERE id = ?",
                     {r.digest, r.mrenclave, r.mrsigner, build_id, static_cast<int64_t>(r.layer_bytes), job.id})
          .status();
    });
    if (ended) {
      observe("done");
      if (metrics != nullptr) {
        metrics->Increment("vouch_conversion_bytes_total", {}, static_cast<double>(r.layer_bytes));
      }
    }
    return;
  }
  const Status& err = result.status();
  if (err.reason() == oci::kCancelled && stop.ok()) {
    lines.push_back("cancelled during " + last_progress["phase"].get<std::string>());
    if (finish("cancelled", oci::kCancelled, "cancelled on request", lines, last_progress, nullptr)) observe("cancelled");
    return;
  }
  const Status& why = stop.ok() ? err : stop;
  const std::string_view code = convert::FailureCode(why);
  lines.push_back("failed (" + std::string(code) + "): " + why.message().substr(0, 400));
  if (finish("failed", code, why.message(), lines, last_progress, nullptr)) observe("failed");
}

}  // namespace vouch::api
