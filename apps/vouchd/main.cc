// vouchd: the vouch manager. `init` creates a data directory; `serve` runs the HTTPS API.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/bootstrap.h"
#include "api/conversion_runner.h"
#include "api/manager.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "api/routes.h"
#include "backup/backup.h"
#include "backup_cmd.h"
#include "base/encoding.h"
#include "base/file.h"
#include "convert/options.h"
#include "crypto/random.h"
#include "custody/share.h"
#include "cluster/join.h"
#include "collateral/service.h"
#include "http/server.h"
#include "join.h"
#include "malloc_tuning.h"
#include "master_key_cmd.h"
#include "pickup.h"
#include "store/database.h"
#include "ui/ui.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "vouchd: %s\n", message.c_str());
  return 1;
}

std::string TrimNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// `vouchd init --split-threshold M --split-shares N --shares-out DIR [--custodian-key PEM ...]`:
// the new master key split at once, as `vouchd master-key split` does it (docs/custody.md).
struct InitSplit {
  int threshold = 0;
  int shares = 0;
  std::string out_dir;
  std::vector<std::string> custodian_keys;
  bool requested() const { return threshold != 0 || shares != 0 || !out_dir.empty() || !custodian_keys.empty(); }
};

// Every refusal of the split flags, before init creates anything.
vouch::Status CheckInitSplit(const InitSplit& s) {
  if (s.threshold == 0 || s.shares == 0 || s.out_dir.empty()) {
    return vouch::InvalidArgument("--split-threshold, --split-shares and --shares-out go together",
                                  std::string(vouch::api::kInvalidArgument));
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(s.out_dir, ec))) {
    return vouch::AlreadyExists("--shares-out " + s.out_dir + " exists: init writes the shares into a new folder",
                                std::string(vouch::custody::kShareFileExists));
  }
  return vouchd::CheckSplitArgs(s.threshold, s.shares, s.custodian_keys);
}

int RunInit(const vouch::api::InitOptions& base, const std::string& password_file, const InitSplit& split = {}) {
  vouch::api::InitOptions o = base;
  if (split.requested()) {
    if (auto st = CheckInitSplit(split); !st.ok()) return Fail(st.message() + " [" + st.reason() + "]; nothing was created");
  }
  auto password = vouch::ReadWholeFile(password_file, 4096);
  if (!password.ok()) return Fail(password.status().message());
  o.admin_password = TrimNewline(*password);
  auto r = vouch::api::InitDataDir(o, vouch::SystemClock::Get());
  if (!r.ok()) return Fail(r.status().message());
  std::printf("initialised %s\n", o.data_dir.c_str());
  if (!r->service_ca_path.empty()) std::printf("  service CA:      %s\n", r->service_ca_path.c_str());
  std::printf("  store:           %s\n", r->store_url.c_str());
  std::printf("  default zone CA: %s\n", r->default_zone_ca_path.c_str());
  std::printf("  admin user:      %s\n", o.admin_user.c_str());
  if (split.requested()) {
    std::fflush(stdout);
    if (int rc = vouchd::SplitMasterKey(o.data_dir, split.threshold, split.shares, split.out_dir, split.custodian_keys);
        rc != 0) {
      return Fail("the data directory is initialised but its master key was not split: run vouchd master-key split");
    }
  }
  return 0;
}

// Members of a cluster let others join through attestation when collateral is configured
// (docs/cluster.md); otherwise the cluster routes answer 404.
void EnableClusterJoin(vouch::api::Manager& manager, const std::string& data_dir, const vouch::api::DataDir& dir) {
  auto policy = vouch::api::LoadJoinPolicy(data_dir);
  if (!policy.ok()) {
    spdlog::warn("cluster joins disabled: {}", policy.status().message());
    return;
  }
  vouch::api::Manager::ClusterJoinConfig c;
  c.policy = *policy;
  c.tls_chain_pem = dir.tls_chain_pem;
  auto sealed = vouch::ReadWholeFile(data_dir + "/tls/server.key.sealed", 1 << 20);
  auto ca = vouch::ReadWholeFile(data_dir + "/service-ca.pem", 1 << 20);
  if (!sealed.ok()) {
    spdlog::warn("cluster joins disabled: {}", sealed.status().message());
    return;
  }
  c.tls_key_sealed.assign(sealed->begin(), sealed->end());
  if (ca.ok()) c.service_ca_pem = *ca;
  if (auto st = manager.EnableClusterJoin(std::move(c)); !st.ok()) {
    spdlog::info("cluster joins disabled: {}", st.message());
    return;
  }
  spdlog::info("cluster joins enabled ({} approved measurement(s){})", policy->measurements.size(),
               policy->allow_sim ? ", INSECURE sim evidence accepted" : "");
}

// The open-file limit: each connection is a descriptor, so raise the soft limit to the hard one
// (1024 by default on many systems, far below max_connections). Logged either way. Returns the
// soft limit in force (0: unknown or unlimited).
rlim_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    spdlog::warn("getrlimit(RLIMIT_NOFILE) failed: errno {}", errno);
    return 0;
  }
  if (lim.rlim_cur < lim.rlim_max) {
    rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      spdlog::warn("raising the open-file limit from {} to {} failed: errno {}", before, lim.rlim_max, errno);
      return before;
    }
    spdlog::info("open-file limit raised from {} to {}", before, lim.rlim_max);
  } else {
    spdlog::info("open-file limit {}", lim.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(lim.rlim_cur));
  }
  return lim.rlim_cur == RLIM_INFINITY ? 0 : lim.rlim_cur;
}

// Limits on anonymous callers (docs/design.md, "Authentication and roles"). Command-line flags
// override config.json's "limits" object; defaults sit well above what an agent fleet
// provisioning from one address or the e2e tests need.
struct Limits {
  double unauth_rate = 10;       // requests per second per source IP to login/nonce/provisioning/cluster routes
  double unauth_burst = 100;     // bucket size
  size_t max_connections_per_source = 1024;
  bool allow_cluster_join = false;
};

// DATA/config.json, which must be a JSON object (each Load*Settings reads its own section).
vouch::Result<nlohmann::json> ReadConfigJson(const std::string& data_dir) {
  auto text = vouch::ReadWholeFile(data_dir + "/config.json", 1 << 20);
  if (!text.ok()) return text.status();
  auto config = nlohmann::json::parse(*text, nullptr, false);
  if (!config.is_object()) {
    return vouch::DataLoss("config.json is not a JSON object", std::string(vouch::api::kInvalidConfig));
  }
  return config;
}

// config.json: {"limits": {"unauth_rate": N, "unauth_burst": N, "max_connections_per_source": N},
//               "cluster": {"allow_join": true, ...}}. Absent keys keep the defaults.
vouch::Status LoadLimits(const std::string& data_dir, Limits* l) {
  auto loaded = ReadConfigJson(data_dir);
  if (!loaded.ok()) return loaded.status();
  const nlohmann::json& config = *loaded;
  auto limits = config.value("limits", nlohmann::json::object());
  auto cluster = config.value("cluster", nlohmann::json::object());
  if (!limits.is_object() || !cluster.is_object()) {
    return vouch::DataLoss("config.json: \"limits\" and \"cluster\" must be objects",
                           std::string(vouch::api::kInvalidConfig));
  }
  auto number = [&](const char* key, double lo, double hi, double* out) -> vouch::Status {
    if (!limits.contains(key)) return vouch::Status::Ok();
    const auto& v = limits[key];
    if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
      return vouch::DataLoss(std::string("config.json: limits.") + key + " must be a number in [" +
                                 std::to_string(static_cast<int64_t>(lo)) + ", " +
                                 std::to_string(static_cast<int64_t>(hi)) + "]",
                             std::string(vouch::api::kInvalidConfig));
    }
    *out = v.get<double>();
    return vouch::Status::Ok();
  };
  VOUCH_RETURN_IF_ERROR(number("unauth_rate", 0, 1e6, &l->unauth_rate));
  VOUCH_RETURN_IF_ERROR(number("unauth_burst", 1, 1e6, &l->unauth_burst));
  double per_source = static_cast<double>(l->max_connections_per_source);
  VOUCH_RETURN_IF_ERROR(number("max_connections_per_source", 0, 1e6, &per_source));
  l->max_connections_per_source = static_cast<size_t>(per_source);
  if (cluster.contains("allow_join")) {
    if (!cluster["allow_join"].is_boolean())
      return vouch::DataLoss("config.json: cluster.allow_join must be a boolean",
                             std::string(vouch::api::kInvalidConfig));
    l->allow_cluster_join = cluster["allow_join"].get<bool>();
  }
  return vouch::Status::Ok();
}

// The collateral service's settings (docs/collateral.md): config.json "collateral" object
// {"pccs_url", "kds_url", "ca_file", "refresh_margin_hours"}; command-line flags override it.
struct CollateralSettings {
  std::optional<std::string> pccs_url;
  std::optional<std::string> kds_url;
  std::optional<std::string> ca_file;
  std::optional<int> refresh_margin_hours;
  int refresh_check_seconds = 300;  // how often the refresher looks for items due
  int kds_min_interval_ms = 10000;
};

vouch::Status LoadCollateralSettings(const std::string& data_dir, CollateralSettings* c) {
  auto loaded = ReadConfigJson(data_dir);
  if (!loaded.ok()) return loaded.status();
  const nlohmann::json& config = *loaded;
  auto col = config.value("collateral", nlohmann::json::object());
  if (!col.is_object())
    return vouch::DataLoss("config.json: \"collateral\" must be an object",
                           std::string(vouch::api::kInvalidConfig));
  for (const char* key : {"pccs_url", "kds_url", "ca_file"}) {
    if (!col.contains(key)) continue;
    if (!col[key].is_string())
      return vouch::DataLoss(std::string("config.json: collateral.") + key + " must be a string",
                             std::string(vouch::api::kInvalidConfig));
    std::string v = col[key].get<std::string>();
    if (std::string(key) == "pccs_url" && !c->pccs_url) c->pccs_url = v;
    if (std::string(key) == "kds_url" && !c->kds_url) c->kds_url = v;
    if (std::string(key) == "ca_file" && !c->ca_file) c->ca_file = v;
  }
  if (col.contains("refresh_margin_hours") && !c->refresh_margin_hours) {
    const auto& v = col["refresh_margin_hours"];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 24 * 30) {
      return vouch::DataLoss(
          "config.json: collateral.refresh_margin_hours must be an integer in [0, 720]",
          std::string(vouch::api::kInvalidConfig));
    }
    c->refresh_margin_hours = v.get<int>();
  }
  return vouch::Status::Ok();
}

// Backups taken by the server (docs/operations.md, "Backups taken by the server"): config.json
// "backups" object {"dir", "keep", "interval_hours"}; command-line flags override it.
struct BackupSettings {
  std::optional<std::string> dir;         // default DATA/backups
  std::optional<int> keep;                // default 7
  std::optional<int> interval_hours;      // default 0: no schedule
};

vouch::Status LoadBackupSettings(const std::string& data_dir, BackupSettings* b) {
  auto loaded = ReadConfigJson(data_dir);
  if (!loaded.ok()) return loaded.status();
  const nlohmann::json& config = *loaded;
  auto bk = config.value("backups", nlohmann::json::object());
  if (!bk.is_object())
    return vouch::DataLoss("config.json: \"backups\" must be an object", std::string(vouch::api::kInvalidConfig));
  if (bk.contains("dir") && !b->dir) {
    if (!bk["dir"].is_string() || bk["dir"].get<std::string>().empty())
      return vouch::DataLoss("config.json: backups.dir must be a non-empty string", std::string(vouch::api::kInvalidConfig));
    b->dir = bk["dir"].get<std::string>();
  }
  auto int_in = [&](const char* key, int lo, int hi, std::optional<int>* out) -> vouch::Status {
    if (!bk.contains(key) || *out) return vouch::Status::Ok();
    const auto& v = bk[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      return vouch::DataLoss(std::string("config.json: backups.") + key + " must be an integer in [" + std::to_string(lo) +
                                 ", " + std::to_string(hi) + "]",
                             std::string(vouch::api::kInvalidConfig));
    }
    *out = v.get<int>();
    return vouch::Status::Ok();
  };
  VOUCH_RETURN_IF_ERROR(int_in("keep", 1, 10000, &b->keep));
  VOUCH_RETURN_IF_ERROR(int_in("interval_hours", 0, 24 * 365, &b->interval_hours));
  return vouch::Status::Ok();
}

nlohmann::json ManifestSummary(const vouch::backup::Manifest& m) {
  return {{"schema_version", m.schema_version}, {"created_at", m.created_at}};
}

void LogReport(const std::string& what, const vouch::collateral::Report& r) {
  for (const auto& o : r.outcomes) {
    // Refusals are logged as they happen (ServiceOptions::on_refused).
    if (o.result == "failed") {
      spdlog::warn("collateral {} {} {} from {} failed ({}): {}", what, o.kind, o.key, o.origin, o.reason, o.message);
    } else if (o.result == "stored") {
      spdlog::info("collateral {}: stored {} {} from {}", what, o.kind, o.key, o.origin);
    }
  }
}

struct ServeOptions {
  CollateralSettings collateral;
  BackupSettings backups;
  std::vector<std::string> collateral_dirs;
  int node_cert_validity_hours = 7 * 24;
  int node_cert_validity_seconds = 0;  // overrides the hours when set (tests)
  int heartbeat_interval_seconds = 10;
  int workload_cert_max_validity_seconds = 0;
  int collateral_check_seconds = 60;
  // Set from the command line only when given (they override config.json).
  std::optional<double> unauth_rate;
  std::optional<double> unauth_burst;
  std::optional<size_t> max_connections_per_source;
  bool allow_cluster_join = false;
  // Picking up a master key another member rotated to (docs/cluster.md): peers and evidence
  // source; default: config.json cluster.peers / cluster.sim, recorded by vouchd join.
  std::vector<std::string> peers;
  std::string sim_dir;
  int master_key_check_ms = 2000;  // test knob (hidden): how often the store's key is checked
  // Server-side conversion (docs/convert.md "Server-side conversion").
  int conversion_workers = 1;
  std::string conversion_scratch_dir;        // default DATA/conversions
  std::string conversion_scratch_limit = "20G";
  std::string conversion_runtime;            // default: vouch-rte next to vouchd
  std::string conversion_manager_url;        // default: https://LISTEN
  int conversion_lease_seconds = 30;         // test knob (hidden)
  // Stopped instances older than this are pruned (docs/operations.md, "A million instances").
  int instance_retention_days = 30;
  // Test knob (hidden; tests/e2e/master_key_online_test.sh): die as kill -9 would at this step of
  // an online master-key rotation (docs/custody.md "Online rotation").
  std::string test_master_key_crash_at;
};

// The vouch-rte a conversion embeds: next to vouchd, or where the build tree and the packages put it.
std::string DefaultRuntime() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const auto& candidate : {self.parent_path() / "vouch-rte", self.parent_path() / "../vouch-rte/vouch-rte",
                                self.parent_path() / "../libexec/vouch/vouch-rte"}) {
    if (std::filesystem::exists(candidate, ec)) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return {};
}

// This member's stable id (DATA/member-id, made once): the owner name of its conversion leases,
// the same after a restart so it requeues its own interrupted jobs.
vouch::Result<std::string> MemberId(const std::string& data_dir) {
  const std::string path = data_dir + "/member-id";
  if (vouch::FileExists(path)) {
    VOUCH_ASSIGN_OR_RETURN(std::string id, vouch::ReadWholeFile(path, 256));
    id = TrimNewline(id);
    if (!id.empty() && id.find('/') == std::string::npos) return id;
  }
  const std::string id = "mbr_" + vouch::HexEncode(vouch::crypto::RandomBytes(8));
  VOUCH_RETURN_IF_ERROR(vouch::WriteFileAtomic(path, id + "\n", 0600));
  return id;
}

int RunServe(const std::string& data_dir, std::string listen, std::string store_url, size_t threads,
             const ServeOptions& serve) {
  // Block the stop signals before any thread starts, then wait for them on this thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Before any thread starts: one malloc arena per core (glibc's default is 8), so that memory
  // freed by the many I/O threads is reused rather than held by idle arenas (malloc_tuning.h).
  const int malloc_arenas = vouchd::LimitMallocArenas(static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  const rlim_t file_limit = RaiseFileLimit();
  spdlog::info("malloc arenas: {}", malloc_arenas > 0 ? std::to_string(malloc_arenas) : std::string("as set by the environment"));

  auto dir = vouch::api::OpenDataDir(data_dir);
  if (!dir.ok()) return Fail(dir.status().message());
  if (listen.empty()) listen = dir->listen;
  if (store_url.empty()) store_url = dir->store_url;
  std::string host;
  uint16_t port = 0;
  if (auto st = vouch::api::ParseListen(listen, &host, &port); !st.ok()) return Fail(st.message());

  auto db = vouch::store::OpenDatabase(store_url);
  if (!db.ok()) return Fail(db.status().message());
  auto version = (*db)->Migrate();
  if (!version.ok()) return Fail("migrating the store: " + version.status().message());
  // A member left with the key from before a rotation picks the new one up through the attested
  // join path when it has a peer to ask (docs/cluster.md); without one it is told to re-join.
  auto pickup_options = vouchd::LoadPickupOptions(data_dir, serve.peers, serve.sim_dir);
  if (!pickup_options.ok()) return Fail(pickup_options.status().message());
  // Checked every 2 s; a failed pickup is retried after 1 s, doubling up to 30 s.
  pickup_options->check_interval = std::chrono::milliseconds(serve.master_key_check_ms);
  pickup_options->min_backoff = pickup_options->check_interval / 2;
  pickup_options->max_backoff = pickup_options->check_interval * 15;
  bool stale_master_key = false;
  if (auto st = vouch::api::CheckMasterKeyOpensStore(**db, dir->master_key); !st.ok()) {
    if (!vouch::api::IsMasterKeyRotated(st) || !pickup_options->unavailable.empty()) return Fail(st.message());
    spdlog::warn("master key: {}; obtaining the new key from the configured peers before serving", st.message());
    stale_master_key = true;
  }
  vouch::api::ManagerOptions manager_options;
  manager_options.collateral_dirs = serve.collateral_dirs;
  // A dev data directory's sim vendor: its collateral verifies sim nodes (zones allowing sim only).
  if (vouch::FileExists(data_dir + "/sim/tcbInfo.json")) manager_options.collateral_dirs.push_back(data_dir + "/sim");
  manager_options.node_cert_validity = std::chrono::hours(serve.node_cert_validity_hours);
  if (serve.node_cert_validity_seconds > 0) {
    manager_options.node_cert_validity = std::chrono::seconds(serve.node_cert_validity_seconds);
  }
  manager_options.heartbeat_interval = std::chrono::seconds(serve.heartbeat_interval_seconds);
  manager_options.workload_cert_max_validity = std::chrono::seconds(serve.workload_cert_max_validity_seconds);
  manager_options.conversions.manager_url =
      !serve.conversion_manager_url.empty() ? serve.conversion_manager_url : "https://" + listen;
  manager_options.instance_retention = std::chrono::seconds(int64_t{serve.instance_retention_days} * 86400);
  // Online master-key rotation rewrites this data directory's key files (docs/custody.md).
  manager_options.data_dir = data_dir;
  if (!serve.test_master_key_crash_at.empty()) {
    manager_options.master_key_step_hook = [crash_at = serve.test_master_key_crash_at](std::string_view step) {
      if (step == crash_at) {
        // A real SIGKILL from the kernel at exactly this step (no clean-up, no destructors): what
        // `kill -9` does, timed to the step.
        std::fprintf(stderr, "vouchd: --test-master-key-crash-at %s: SIGKILL now\n", crash_at.c_str());
        std::fflush(stderr);
        ::kill(::getpid(), SIGKILL);
        ::_exit(137);  // not reached
      }
      return vouch::Status::Ok();
    };
  }
  // The collateral service: the store's shared copy, fetched from PCS/PCCS and KDS when configured.
  CollateralSettings col = serve.collateral;
  if (auto st = LoadCollateralSettings(data_dir, &col); !st.ok()) return Fail(st.message());
  vouch::collateral::ServiceOptions col_options;
  col_options.pccs_url = col.pccs_url.value_or("");
  col_options.kds_url = col.kds_url.value_or("");
  col_options.ca_file = col.ca_file.value_or("");
  col_options.refresh_margin = std::chrono::hours(col.refresh_margin_hours.value_or(24));
  col_options.kds_min_interval = std::chrono::milliseconds(col.kds_min_interval_ms);
  // Every refused item is logged here, whoever asked for it (a node's need, a PCCS route, an API
  // refresh, the refresher, an import); it is also in the audit log and the failure metric.
  col_options.on_refused = [](const vouch::collateral::Outcome& o, std::string_view source) {
    spdlog::error("collateral {} {} from {} ({}) REFUSED ({}): {}; the last good copy stays in use", o.kind, o.key,
                  o.origin, source, o.reason, o.message);
  };
  if (!col_options.ca_file.empty() && !vouch::FileExists(col_options.ca_file)) {
    return Fail("--collateral-ca-file " + col_options.ca_file + " does not exist");
  }
  auto col_service = vouch::collateral::Service::Create(db->get(), &vouch::SystemClock::Get(), col_options);
  if (!col_service.ok()) return Fail(col_service.status().message());
  std::shared_ptr<vouch::collateral::Service> collateral(std::move(*col_service));
  manager_options.collateral = collateral;
  spdlog::info("collateral service: Intel {}, AMD {}, refresh {} h before nextUpdate",
               col_options.pccs_url.empty() ? "(no source: store and imports only)" : col_options.pccs_url,
               col_options.kds_url.empty() ? "(no source: store, imports and evidence certificate tables only)"
                                           : col_options.kds_url,
               col.refresh_margin_hours.value_or(24));
  // Collateral folders are an import path into the shared store (verified item by item).
  auto import_dirs = [&](const std::vector<std::string>& dirs) {
    for (const std::string& d : dirs) LogReport("import " + d, collateral->ImportDir(d));
  };
  import_dirs(manager_options.collateral_dirs);
  // Backups into a folder (POST /api/v1/backups, the schedule below) with libs/backup's code,
  // the same as `vouchd backup --data-dir DIR --out FILE` and `vouchd backup --verify FILE`.
  BackupSettings backups = serve.backups;
  if (auto st = LoadBackupSettings(data_dir, &backups); !st.ok()) return Fail(st.message());
  manager_options.backups.dir = backups.dir.value_or(data_dir + "/backups");
  manager_options.backups.keep = backups.keep.value_or(7);
  manager_options.backups.create = [data_dir](const std::string& path) -> vouch::Result<nlohmann::json> {
    vouch::backup::BackupOptions o;
    o.data_dir = data_dir;
    o.out = path;
    o.vouch_version = "0.1.0";  // as `vouchd --version`
    VOUCH_ASSIGN_OR_RETURN(auto m, vouch::backup::CreateBackup(o, vouch::SystemClock::Get()));
    return ManifestSummary(m);
  };
  manager_options.backups.verify = [](const std::string& path) -> vouch::Result<nlohmann::json> {
    VOUCH_ASSIGN_OR_RETURN(auto m, vouch::backup::VerifyBackup(path));
    return ManifestSummary(m);
  };
  const int backup_interval_hours = backups.interval_hours.value_or(0);
  auto manager = vouch::api::Manager::Create(db->get(), std::move(dir->master_key), &vouch::SystemClock::Get(),
                                             manager_options);
  if (!manager.ok()) return Fail(manager.status().message());
  if (stale_master_key) {
    // Stopped during a rotation: the key is obtained through the attested join path before
    // anything is served (the node CA, needed for mutual TLS, opens only with it).
    std::string peer;
    if (auto st = vouchd::PickUpMasterKey(**manager, *pickup_options, &peer); !st.ok()) {
      return Fail("this member's master key was rotated away and it could not obtain the new one (" + st.message() +
                  "): enable joining on a member (vouchd serve --allow-cluster-join), or re-join this member "
                  "(vouchd join)");
    }
    spdlog::info("master key: picked up the rotated key {} from {} through the attested join path",
                 (*manager)->MasterKeyId(), peer);
  }
  Limits limits;
  if (auto st = LoadLimits(data_dir, &limits); !st.ok()) return Fail(st.message());
  if (serve.unauth_rate) limits.unauth_rate = *serve.unauth_rate;
  if (serve.unauth_burst) limits.unauth_burst = *serve.unauth_burst;
  if (serve.max_connections_per_source) limits.max_connections_per_source = *serve.max_connections_per_source;
  if (serve.allow_cluster_join) limits.allow_cluster_join = true;
  // Joining hands out the master key to attested peers: only when asked for (docs/cluster.md).
  if (limits.allow_cluster_join) {
    EnableClusterJoin(**manager, data_dir, *dir);
  } else {
    spdlog::info("cluster joins disabled (vouchd serve --allow-cluster-join enables them)");
  }
  if (limits.unauth_rate > 0) {
    spdlog::info("unauthenticated routes limited to {}/s per source (burst {}); at most {} connections per source",
                 limits.unauth_rate, limits.unauth_burst, limits.max_connections_per_source);
  } else {
    spdlog::warn("unauthenticated routes are not rate limited (--unauth-rate 0)");
  }
  // Node agents authenticate with certificates from the node CA (mutual TLS); other clients
  // present none and use bearer tokens.
  auto node_ca = (*manager)->NodeCaPem();
  if (!node_ca.ok()) return Fail("node CA: " + node_ca.status().message());

  vouch::http::Metrics metrics;
  vouch::http::ServerOptions options;
  options.listen_address = host;
  options.port = port;
  options.cert_chain_pem = dir->tls_chain_pem;
  options.private_key_pem = std::string(dir->tls_key_pem.view());
  // Handlers run on the I/O threads and block on the store (a certificate or heartbeat waits for
  // its group's commit, docs/design.md): more threads than cores, so commits can be shared.
  options.threads = threads != 0 ? threads : std::max<size_t>(64, 16 * std::max(1u, std::thread::hardware_concurrency()));
  options.client_ca_pem = *node_ca;
  options.max_connections_per_source = limits.max_connections_per_source;
  // Connections beyond what the descriptor limit allows would fail at accept (EMFILE) and starve
  // the store and files of descriptors: keep 256 for those.
  if (file_limit != 0 && file_limit < options.max_connections + 256) {
    options.max_connections = file_limit > 512 ? static_cast<size_t>(file_limit - 256) : 256;
    spdlog::warn("open-file limit {}: at most {} connections", file_limit, options.max_connections);
  }
  vouch::api::RouterOptions router_options;
  router_options.unauth_rate_per_second = limits.unauth_rate;
  router_options.unauth_burst = limits.unauth_burst;
  auto router = vouch::api::BuildRouter(**manager, &metrics, router_options);
  vouch::ui::AddRoutes(router);  // the web console at /
  // An answer 503 master_key_rotated wakes the key pickup at once (pickup.h).
  auto pickup_signal = std::make_shared<vouchd::PickupSignal>();
  router = vouchd::PokeOnRotatedKey(std::move(router), pickup_signal);
  // Conversion workers (docs/convert.md "Server-side conversion"): jobs are rows of the store,
  // claimed with a lease; this member's interrupted ones are queued again first.
  vouch::api::ConversionRunnerOptions conv;
  conv.workers = serve.conversion_workers;
  conv.scratch_dir = serve.conversion_scratch_dir.empty() ? data_dir + "/conversions" : serve.conversion_scratch_dir;
  auto scratch_limit = vouch::convert::ParseSize(serve.conversion_scratch_limit, "--conversion-scratch-limit");
  if (!scratch_limit.ok() || *scratch_limit == 0) return Fail("--conversion-scratch-limit must be a size like 20G");
  conv.scratch_limit = *scratch_limit;
  conv.runtime_path = serve.conversion_runtime.empty() ? DefaultRuntime() : serve.conversion_runtime;
  conv.lease = std::chrono::seconds(serve.conversion_lease_seconds);
  conv.renew = std::chrono::seconds(std::max(1, serve.conversion_lease_seconds / 3));
  auto member_id = MemberId(data_dir);
  if (!member_id.ok()) return Fail("member id: " + member_id.status().message());
  conv.member_id = *member_id;
  if (conv.workers > 0 && (conv.runtime_path.empty() || !vouch::FileExists(conv.runtime_path))) {
    spdlog::error("conversion disabled on this member: no vouch-rte at \"{}\" (--conversion-runtime); queued jobs "
                  "wait for another member",
                  conv.runtime_path);
    conv.workers = 0;
  }
  if (conv.workers > 0 && !serve.conversion_scratch_dir.empty() && !vouch::FileExists(conv.scratch_dir)) {
    return Fail("--conversion-scratch-dir " + conv.scratch_dir + " does not exist");
  }
  auto runner = vouch::api::ConversionRunner::Start(**manager, conv, &metrics);
  if (!runner.ok()) return Fail("conversion workers: " + runner.status().message());
  spdlog::info("conversions: {} worker(s) as member {}, scratch {} (limit {}), runtime {}", conv.workers,
               conv.member_id, conv.scratch_dir, serve.conversion_scratch_limit,
               conv.runtime_path.empty() ? std::string("(none)") : conv.runtime_path);
  auto server = vouch::http::Server::Create(options, std::move(router), &metrics);
  if (!server.ok()) return Fail(server.status().message());
  if (auto st = (*server)->Start(); !st.ok()) return Fail(st.message());
  spdlog::info("vouchd listening on https://{}:{} (store: {}, schema v{})", host, (*server)->port(),
               (*db)->backend(), *version);
  auto key_pickup = vouchd::KeyPickup::Start(**manager, &metrics, std::move(*pickup_options));
  pickup_signal->Attach(key_pickup.get());
  std::printf("vouchd: listening on https://%s:%u\n", host.find(':') != std::string::npos ? ("[" + host + "]").c_str() : host.c_str(),
              (*server)->port());
  std::fflush(stdout);

  // Expired collateral refuses every node: say so at start, after each reload and once a day.
  auto last_expiry_check = std::chrono::steady_clock::now();
  auto check_expiry = [&] {
    last_expiry_check = std::chrono::steady_clock::now();
    const auto now = std::chrono::system_clock::now();
    for (const auto& [cdir, until] : (*manager)->CollateralValidUntil()) {
      if (until == vouch::TimePoint::max()) continue;
      if (until <= now) {
        spdlog::error("collateral in {} has expired ({}): node provisioning and renewal are refused until it is refreshed",
                      cdir, until == vouch::TimePoint::min() ? "a CRL without nextUpdate" : vouch::FormatRfc3339(until));
      } else if (until - now < std::chrono::hours(24 * 7)) {
        spdlog::warn("collateral in {} expires at {}: refresh it", cdir, vouch::FormatRfc3339(until));
      }
    }
  };
  check_expiry();
  metrics.DeclareCounter("vouch_collateral_reloads_total", "Collateral reloads, by result (ok, failed)");
  auto reload = [&](bool force) {
    auto reloaded = (*manager)->ReloadCollateral(force);
    if (!reloaded.ok()) {
      metrics.Increment("vouch_collateral_reloads_total", {{"result", "failed"}});
      spdlog::error("collateral reload failed, the previous collateral stays in use: {}", reloaded.status().message());
    } else if (*reloaded) {
      metrics.Increment("vouch_collateral_reloads_total", {{"result", "ok"}});
      spdlog::info("collateral reloaded from {} folder(s)", manager_options.collateral_dirs.size());
      import_dirs(manager_options.collateral_dirs);
      check_expiry();
    }
    if (std::chrono::steady_clock::now() - last_expiry_check > std::chrono::hours(24)) check_expiry();
  };
  // The collateral refresher: items due (nextUpdate minus the margin) are fetched again; metrics
  // for each item's remaining validity and for fetch failures by source and kind.
  metrics.DeclareGauge("vouch_collateral_remaining_seconds",
                       "Seconds until an item of the collateral service expires (negative: expired), by kind, key and root");
  metrics.DeclareCounter("vouch_collateral_fetch_failures_total",
                         "Collateral fetches or imports that failed or were refused, by source and kind");
  std::mutex refresher_mu;
  std::condition_variable refresher_cv;
  bool stopping = false;
  std::map<std::pair<std::string, std::string>, int64_t> failures_seen;
  auto publish = [&] {
    for (const auto& [item, left] : collateral->RemainingValidity()) {
      metrics.SetGauge("vouch_collateral_remaining_seconds", {{"kind", item.kind}, {"key", item.key}, {"root", item.root}},
                       left);
    }
    for (const auto& [k, n] : collateral->GetStats().failures) {
      int64_t& seen = failures_seen[k];
      if (n > seen) {
        metrics.Increment("vouch_collateral_fetch_failures_total", {{"source", k.first}, {"kind", k.second}},
                          static_cast<double>(n - seen));
        seen = n;
      }
    }
  };
  std::thread refresher([&] {
    std::unique_lock<std::mutex> lock(refresher_mu);
    for (;;) {
      lock.unlock();
      if (collateral->has_intel_source() || collateral->has_amd_source()) LogReport("refresh", collateral->RefreshDue());
      publish();
      lock.lock();
      if (refresher_cv.wait_for(lock, std::chrono::seconds(col.refresh_check_seconds), [&] { return stopping; })) break;
    }
  });
  // The backup thread: lists (and so verifies) the folder once, for vouch_backup_newest_age_seconds,
  // then, with --backup-interval-hours, takes a backup when the newest is that old.
  spdlog::info("backups into {} (keep {}), {}", manager_options.backups.dir, manager_options.backups.keep,
               backup_interval_hours > 0 ? "every " + std::to_string(backup_interval_hours) + " h" : "on request only");
  std::thread backupper([&] {
    const vouch::api::Principal system = vouch::api::Principal::System();
    if (auto listed = (*manager)->ListBackups(system); !listed.ok())
      spdlog::warn("backup folder {}: {}", manager_options.backups.dir, listed.status().message());
    std::unique_lock<std::mutex> lock(refresher_mu);
    for (;;) {
      if (backup_interval_hours > 0) {
        const auto newest = (*manager)->GetBackupStats().newest_good;
        const auto period = std::chrono::hours(backup_interval_hours);
        if (!newest || vouch::SystemClock::Get().Now() - *newest >= period) {
          lock.unlock();
          auto made = (*manager)->CreateBackup(system);
          if (made.ok()) {
            spdlog::info("scheduled backup {} ({} bytes)", (*made)["name"].get<std::string>(), (*made)["size"].get<uint64_t>());
          } else if (made.status().reason() != vouch::api::kBackupInProgress) {
            spdlog::error("scheduled backup failed: {}", made.status().message());
          }
          lock.lock();
        }
      }
      // Checked every minute: a failed backup is retried a minute later.
      if (refresher_cv.wait_for(lock, std::chrono::seconds(60), [&] { return stopping; })) break;
    }
  });
  // The pruning thread: stopped instances past --instance-retention-days are deleted in batches of
  // 1000 (each its own write transaction), one audit entry per run; at start, then hourly.
  std::thread pruner([&] {
    if (serve.instance_retention_days <= 0) {
      spdlog::info("stopped instances are kept forever (--instance-retention-days 0)");
      return;
    }
    spdlog::info("stopped instances are pruned {} days after their last heartbeat", serve.instance_retention_days);
    const vouch::api::Principal system = vouch::api::Principal::System();
    std::unique_lock<std::mutex> lock(refresher_mu);
    for (;;) {
      lock.unlock();
      auto pruned = (*manager)->PruneInstances(system);
      if (!pruned.ok()) {
        spdlog::error("pruning stopped instances failed (retried within the hour): {}", pruned.status().message());
      } else if (*pruned > 0) {
        spdlog::info("pruned {} stopped instances", *pruned);
      }
      lock.lock();
      // A run stops after Manager::kPruneMaxBatches batches: go on a second later if it did.
      const bool more = pruned.ok() && *pruned >= vouch::api::Manager::kPruneBatch * vouch::api::Manager::kPruneMaxBatches;
      if (refresher_cv.wait_for(lock, more ? std::chrono::seconds(1) : std::chrono::seconds(3600), [&] { return stopping; }))
        break;
    }
  });
  // SIGHUP re-reads the collateral folders now; besides, they are checked for changed files
  // every --collateral-check-seconds (docs/agent.md "Collateral refresh").
  // Wakes at least every 10 s: counts of unauthenticated refusals are written once their minute
  // has closed (Manager::FlushRefusalAggregates).
  int sig = 0;
  auto next_collateral_check = std::chrono::steady_clock::now() + std::chrono::seconds(serve.collateral_check_seconds);
  for (;;) {
    int wait_s = 10;
    if (serve.collateral_check_seconds > 0) wait_s = std::min(wait_s, std::max(1, serve.collateral_check_seconds));
    timespec wait{wait_s, 0};
    sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGHUP) {
      reload(true);
    } else if (sig < 0) {
      if (errno != EAGAIN) continue;
      (*manager)->FlushRefusalAggregates();
      if (serve.collateral_check_seconds > 0 && std::chrono::steady_clock::now() >= next_collateral_check) {
        next_collateral_check = std::chrono::steady_clock::now() + std::chrono::seconds(serve.collateral_check_seconds);
        reload(false);
      }
    } else {
      break;
    }
  }
  spdlog::info("received signal {}, finishing in-flight requests", sig);
  {
    std::lock_guard<std::mutex> lock(refresher_mu);
    stopping = true;
  }
  refresher_cv.notify_all();
  refresher.join();
  backupper.join();
  pruner.join();
  pickup_signal->Attach(nullptr);
  key_pickup.reset();
  (*runner)->Stop();  // running conversions stay claimed: requeued at the next start
  (*server)->Stop(std::chrono::seconds(10));
  (*manager)->FlushRefusalAggregates(/*all=*/true);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vouchd: the vouch confidential-computing manager"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vouchd 0.1.0");

  vouch::api::InitOptions init;
  std::string password_file;
  auto* init_cmd = app.add_subcommand("init", "Create a data directory: master key, store, TLS identity, admin user");
  init_cmd->add_option("--data-dir", init.data_dir, "Data directory to create")->required();
  init_cmd->add_option("--admin-user", init.admin_user, "Name of the first admin user")->required();
  init_cmd->add_option("--admin-password-file", password_file, "File holding the admin password")->required();
  init_cmd->add_option("--store", init.store_url, "sqlite (default: a file in the data dir) or postgres://...");
  init_cmd->add_option("--listen", init.listen, "Address to serve on")->capture_default_str();
  init_cmd->add_flag("--dev", init.dev, "Development mode: the default zone accepts (insecure) sim evidence");
  init_cmd->add_option("--tls-cert", init.tls_cert_file, "Use this certificate chain instead of a generated one");
  init_cmd->add_option("--tls-key", init.tls_key_file, "Private key for --tls-cert (sealed into the data dir)");
  init_cmd->add_option("--tls-san", init.tls_dns_names, "DNS names for the generated server certificate")
      ->capture_default_str();
  InitSplit init_split;  // docs/custody.md: split the new master key at once
  init_cmd->add_option("--split-threshold", init_split.threshold,
                       "Split the new master key: shares needed to recover it (m, 2..255; with --split-shares and "
                       "--shares-out, as vouchd master-key split)");
  init_cmd->add_option("--split-shares", init_split.shares, "Shares to make (n, m..255)");
  init_cmd->add_option("--shares-out", init_split.out_dir, "New folder for the share files (must not exist; 0700)");
  init_cmd->add_option("--custodian-key", init_split.custodian_keys,
                       "A custodian's EC P-256 public key (PEM); one per share, in order: each share encrypted to it");

  std::string data_dir, listen, store;
  size_t threads = 0;
  auto* serve_cmd = app.add_subcommand("serve", "Serve the HTTPS API, web UI and metrics");
  serve_cmd->add_option("--data-dir", data_dir, "Data directory made by vouchd init")->required();
  serve_cmd->add_option("--listen", listen, "host:port (default: from the data dir, 127.0.0.1:8443)");
  serve_cmd->add_option("--store", store, "Override the store URL");
  serve_cmd->add_option("--threads", threads, "I/O threads, which also run the handlers (default: 16 per core, at least 64)");
  ServeOptions serve;
  serve_cmd->add_option("--collateral", serve.collateral_dirs,
                        "DCAP collateral folder for node evidence (repeatable; DATA/sim is added in --dev)");
  serve_cmd->add_option("--pccs-url", serve.collateral.pccs_url,
                        "Intel PCS (https://api.trustedservices.intel.com) or a PCCS to fetch SGX/TDX collateral from "
                        "(default: config.json collateral.pccs_url; none: store and imports only)");
  serve_cmd->add_option("--kds-url", serve.collateral.kds_url,
                        "AMD KDS (https://kdsintf.amd.com) to fetch VCEKs, cert chains and CRLs from (default: "
                        "config.json collateral.kds_url)");
  serve_cmd->add_option("--collateral-ca-file", serve.collateral.ca_file,
                        "PEM file of the TLS roots trusted for --pccs-url and --kds-url (default: the system store)");
  serve_cmd->add_option("--collateral-refresh-margin-hours", serve.collateral.refresh_margin_hours,
                        "Fetch collateral again this many hours before its nextUpdate (default 24)")
      ->check(CLI::Range(0, 24 * 30));
  // Test knobs (hidden): how often the refresher looks for items due; KDS pacing.
  serve_cmd->add_option("--collateral-refresh-check-seconds", serve.collateral.refresh_check_seconds)
      ->check(CLI::Range(1, 86400))
      ->group("");
  serve_cmd->add_option("--kds-min-interval-ms", serve.collateral.kds_min_interval_ms)
      ->check(CLI::Range(0, 600000))
      ->group("");
  serve_cmd->add_option("--collateral-check-seconds", serve.collateral_check_seconds,
                        "How often to look for changed collateral files and reload them (0: only on SIGHUP)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  serve_cmd->add_option("--node-cert-validity-hours", serve.node_cert_validity_hours, "Validity of node certificates")
      ->capture_default_str()
      ->check(CLI::Range(1, 24 * 90));
  // Test knob (hidden): node certificates that live seconds, to exercise renewal end to end.
  serve_cmd->add_option("--node-cert-validity-seconds", serve.node_cert_validity_seconds)
      ->check(CLI::Range(10, 24 * 90 * 3600))
      ->group("");
  serve_cmd->add_option("--heartbeat-interval", serve.heartbeat_interval_seconds,
                        "Expected workload heartbeat interval in seconds (3 missed: unresponsive)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  serve_cmd->add_option("--workload-cert-max-validity-seconds", serve.workload_cert_max_validity_seconds,
                        "Cap workload certificates below the zones' validity (0: no cap; short values test renewal)")
      ->capture_default_str()
      ->check(CLI::Range(0, 24 * 397 * 3600));
  serve_cmd->add_option("--unauth-rate", serve.unauth_rate,
                        "Requests per second one source IP may make to the routes without credentials (login, node "
                        "nonce and provisioning, cluster nonce and join); 0: no limit (default 10, or config.json)")
      ->check(CLI::Range(0.0, 1e6));
  serve_cmd->add_option("--unauth-burst", serve.unauth_burst, "Burst allowance of --unauth-rate (default 100)")
      ->check(CLI::Range(1.0, 1e6));
  serve_cmd->add_option("--max-connections-per-source", serve.max_connections_per_source,
                        "Open connections one source IP may hold; 0: no cap (default 1024)")
      ->check(CLI::Range(0, 1000000));
  serve_cmd->add_option("--backup-dir", serve.backups.dir,
                        "Folder of the backups taken by POST /api/v1/backups and the schedule (default DATA/backups; "
                        "config.json backups.dir)");
  serve_cmd->add_option("--backup-keep", serve.backups.keep,
                        "After a good backup, delete the oldest beyond this many (default 7; backups.keep)")
      ->check(CLI::Range(1, 10000));
  serve_cmd->add_option("--backup-interval-hours", serve.backups.interval_hours,
                        "Take a backup when the newest good one is this old; 0: only on request (default 0; "
                        "backups.interval_hours)")
      ->check(CLI::Range(0, 24 * 365));
  serve_cmd->add_option("--test-master-key-crash-at", serve.test_master_key_crash_at)
      ->check(CLI::IsMember({"next_written", "in_transaction", "committed", "tls_renamed"}))
      ->group("");  // hidden: tests/e2e/master_key_online_test.sh
  serve_cmd->add_option("--instance-retention-days", serve.instance_retention_days,
                        "Delete stopped instances this many days after their last heartbeat, hourly, audited per run "
                        "(default 30; 0: keep forever)")
      ->check(CLI::Range(0, 36500));
  serve_cmd->add_option("--conversion-workers", serve.conversion_workers,
                        "Conversion jobs this member runs at once; 0: none here (queued jobs wait for another member)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  serve_cmd->add_option("--conversion-scratch-dir", serve.conversion_scratch_dir,
                        "Where conversions keep image blobs while they run (default DATA/conversions)");
  serve_cmd->add_option("--conversion-scratch-limit", serve.conversion_scratch_limit,
                        "Scratch space all running conversions may hold (K, M, G); a job needing more fails "
                        "scratch_exhausted")
      ->capture_default_str();
  serve_cmd->add_option("--conversion-runtime", serve.conversion_runtime,
                        "The vouch-rte binary conversions embed (default: next to vouchd)");
  serve_cmd->add_option("--conversion-manager-url", serve.conversion_manager_url,
                        "Manager URL recorded in converted images (default https://LISTEN)");
  // Test knob (hidden): short leases, so a takeover after a member dies happens in seconds.
  serve_cmd->add_option("--conversion-lease-seconds", serve.conversion_lease_seconds)
      ->check(CLI::Range(3, 3600))
      ->group("");
  serve_cmd->add_flag("--allow-cluster-join", serve.allow_cluster_join,
                      "Let other instances join this cluster by attestation (docs/cluster.md); off by default, also "
                      "in --dev data directories");

  serve_cmd->add_option("--peer", serve.peers,
                        "A member to obtain the master key from when another member rotated it, by attestation "
                        "(repeatable; default: config.json cluster.peers, recorded by vouchd join; docs/cluster.md)");
  serve_cmd->add_option("--sim", serve.sim_dir,
                        "Sim vendor folder producing this member's evidence for that (default: config.json "
                        "cluster.sim, recorded by vouchd join --sim)");
  serve_cmd->add_option("--master-key-check-ms", serve.master_key_check_ms)->check(CLI::Range(100, 600000))->group("");

  vouchd::JoinArgs join;
  auto* join_cmd = app.add_subcommand("join", "Join an existing cluster: attest to a member and receive the cluster key");
  join_cmd->add_option("--data-dir", join.data_dir, "Data directory to create")->required();
  join_cmd->add_option("--peer", join.peers, "A member's URL (repeatable; tried in order)")->required();
  join_cmd->add_option("--ca-file", join.ca_file, "The cluster's service CA (a member's service-ca.pem)")->required();
  join_cmd->add_option("--store", join.store_url, "The cluster's postgres:// URL")->required();
  join_cmd->add_option("--listen", join.listen, "Address this member will serve on")->capture_default_str();
  join_cmd->add_option("--tee", join.tee, "TEE backend producing the evidence (sim)")->capture_default_str();
  join_cmd->add_option("--sim", join.sim_dir, "Sim vendor folder (with --tee sim)");

  vouchd::RegisterMasterKeyCommands(app);  // master-key split|combine|rotate (docs/custody.md)

  auto* measure_cmd = app.add_subcommand("measurement", "Print this binary's measurement (SHA-256, the sim MRENCLAVE)");

  vouchd::RegisterBackupCommands(app);  // backup, backup --verify, restore (docs/operations.md)
  CLI11_PARSE(app, argc, argv);
  if (join_cmd->parsed()) {
    auto st = vouchd::RunJoin(join);
    return st.ok() ? 0 : Fail(st.message());
  }
  if (measure_cmd->parsed()) {
    auto m = vouch::cluster::SelfMeasurement();
    if (!m.ok()) return Fail(m.status().message());
    std::printf("%s\n", vouch::HexEncode(*m).c_str());
    return 0;
  }
  if (init_cmd->parsed()) {
    if (store.empty() && init.store_url == "sqlite") init.store_url.clear();
    return RunInit(init, password_file, init_split);
  }
  return RunServe(data_dir, listen, store, threads, serve);
}
