// Backups taken by the server into a folder (docs/operations.md, "Backups taken by the server").
// The archive itself is written and checked by libs/backup through ManagerOptions::backups'
// hooks (set by vouchd); this file keeps the folder: names, retention, verification state,
// counters and the audit entries.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::api {

using internal::Audit;
using store::Transaction;

namespace {

constexpr std::string_view kPrefix = "vouch-backup-";
constexpr std::string_view kSuffix = ".vbk";

// vouch-backup-YYYYMMDDTHHMMSSZ-NN.vbk: names sort in the order the backups were taken.
bool IsBackupName(const std::string& name) {
  return name.size() > kPrefix.size() + kSuffix.size() && name.starts_with(kPrefix) && name.ends_with(kSuffix);
}

std::string NameStem(TimePoint t) {
  std::string s;
  for (char c : FormatRfc3339(std::chrono::time_point_cast<std::chrono::seconds>(t))) {
    if (c != '-' && c != ':') s += c;
  }
  return std::string(kPrefix) + s;
}

// Names of the backups in `dir`, oldest first.
std::vector<std::string> BackupNames(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::string name = it->path().filename().string();
    if (IsBackupName(name)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> FileSha256Hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot read " + path, std::string(kInternal));
  crypto::Sha256Hasher h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) h.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  if (in.bad()) return Internal("error reading " + path, std::string(kInternal));
  const auto d = h.Finish();
  return HexEncode(d);
}

}  // namespace

struct Manager::BackupState {
  std::atomic<bool> running{false};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  std::mutex mu;  // guards what follows
  struct Checked {
    uintmax_t size = 0;
    std::filesystem::file_time_type mtime;
    json entry;  // as listed
    std::optional<TimePoint> created_at;  // set when verified
  };
  std::map<std::string, Checked> checked;  // by name
};

std::shared_ptr<Manager::BackupState> Manager::NewBackupState() { return std::make_shared<BackupState>(); }

Result<json> Manager::CreateBackup(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!BackupsEnabled())
    return FailedPrecondition("backups are not configured on this manager", std::string(kBackupsDisabled));
  BackupState& st = *backup_state_;
  bool expected = false;
  if (!st.running.compare_exchange_strong(expected, true))
    return Aborted("a backup is already being taken; retry when it has finished", std::string(kBackupInProgress));
  struct Clear {
    std::atomic<bool>* flag;
    ~Clear() { flag->store(false); }
  } clear{&st.running};

  const auto& cfg = options_.backups;
  std::error_code ec;
  std::filesystem::create_directories(cfg.dir, ec);
  std::string name;
  const std::string stem = NameStem(clock_->Now());
  // -NN: one more than the highest of this second (never a number retention freed, which would
  // sort before the newer ones).
  int next = 0;
  for (const std::string& n : BackupNames(cfg.dir)) {
    if (n.size() != stem.size() + 3 + kSuffix.size() || !n.starts_with(stem + "-")) continue;
    const char a = n[stem.size() + 1], b = n[stem.size() + 2];
    if (a >= '0' && a <= '9' && b >= '0' && b <= '9') next = std::max(next, (a - '0') * 10 + (b - '0') + 1);
  }
  if (next < 100) {
    char seq[16];
    std::snprintf(seq, sizeof seq, "-%02d", next);
    name = stem + seq + std::string(kSuffix);
  }
  auto fail = [&](const Status& s) -> Status {
    st.failed.fetch_add(1);
    (void)db_->Write([&](Transaction& tx) -> Status {
      return Audit(tx, *this, p, "backup.create", name.empty() ? cfg.dir : name,
                   {{"outcome", "failed"}, {"reason", s.reason()}, {"message", s.message()}});
    });
    return s;
  };
  if (name.empty()) return fail(Internal("no free backup name in " + cfg.dir, std::string(kInternal)));
  const std::string path = cfg.dir + "/" + name;
  auto created = cfg.create(path);
  if (!created.ok()) return fail(created.status());
  // Checked as `vouchd backup --verify` would, before it counts as good.
  json summary = *created;
  if (cfg.verify) {
    auto verified = cfg.verify(path);
    if (!verified.ok()) {
      std::filesystem::remove(path, ec);
      return fail(verified.status());
    }
    summary = *verified;
  }
  auto sha = FileSha256Hex(path);
  if (!sha.ok()) return fail(sha.status());
  const uintmax_t size = std::filesystem::file_size(path, ec);
  json out = {{"name", name},
              {"size", size},
              {"sha256", *sha},
              {"created_at", summary.value("created_at", FormatRfc3339(clock_->Now()))},
              {"schema_version", summary.value("schema_version", int64_t{0})}};
  // Retention: the oldest beyond `keep` go, only after a good backup.
  json deleted = json::array();
  {
    std::vector<std::string> names = BackupNames(cfg.dir);
    const size_t keep = static_cast<size_t>(std::max(1, cfg.keep));
    std::lock_guard<std::mutex> lock(st.mu);
    for (size_t i = 0; i + keep < names.size(); ++i) {
      if (names[i] == name) continue;
      if (std::filesystem::remove(cfg.dir + "/" + names[i], ec)) deleted.push_back(names[i]);
      st.checked.erase(names[i]);
    }
    BackupState::Checked c;
    c.size = size;
    c.mtime = std::filesystem::last_write_time(path, ec);
    c.entry = {{"name", name}, {"size", size}, {"created_at", out["created_at"]},
               {"schema_version", out["schema_version"]}, {"verified", true}};
    auto t = ParseRfc3339(out["created_at"].get<std::string>());
    c.created_at = t.ok() ? *t : clock_->Now();
    st.checked[name] = std::move(c);
  }
  st.ok.fetch_add(1);
  (void)db_->Write([&](Transaction& tx) -> Status {
    return Audit(tx, *this, p, "backup.create", name,
                 {{"outcome", "ok"}, {"size", size}, {"sha256", *sha}, {"deleted", deleted}});
  });
  return out;
}

Result<json> Manager::ListBackups(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!BackupsEnabled())
    return FailedPrecondition("backups are not configured on this manager", std::string(kBackupsDisabled));
  const auto& cfg = options_.backups;
  BackupState& st = *backup_state_;
  std::vector<std::string> names = BackupNames(cfg.dir);
  json list = json::array();
  std::lock_guard<std::mutex> lock(st.mu);
  std::map<std::string, BackupState::Checked> still;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    const std::string path = cfg.dir + "/" + *it;
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) continue;  // deleted meanwhile
    const auto mtime = std::filesystem::last_write_time(path, ec);
    auto found = st.checked.find(*it);
    if (found == st.checked.end() || found->second.size != size || found->second.mtime != mtime) {
      BackupState::Checked c;
      c.size = size;
      c.mtime = mtime;
      c.entry = {{"name", *it}, {"size", size}};
      auto v = cfg.verify ? cfg.verify(path) : Result<json>(Internal("no verifier", std::string(kInternal)));
      if (v.ok()) {
        c.entry["created_at"] = v->value("created_at", "");
        c.entry["schema_version"] = v->value("schema_version", int64_t{0});
        c.entry["verified"] = true;
        auto t = ParseRfc3339(c.entry["created_at"].get<std::string>());
        if (t.ok()) c.created_at = *t;
      } else {
        c.entry["created_at"] = nullptr;
        c.entry["schema_version"] = nullptr;
        c.entry["verified"] = false;
        c.entry["reason"] = v.status().reason();
        c.entry["message"] = v.status().message();
      }
      found = st.checked.insert_or_assign(*it, std::move(c)).first;
    }
    list.push_back(found->second.entry);
    still.insert(*found);
  }
  st.checked = std::move(still);
  return json{{"backups", std::move(list)}, {"dir", cfg.dir}, {"keep", cfg.keep}};
}

Manager::BackupStats Manager::GetBackupStats() {
  BackupState& st = *backup_state_;
  BackupStats out;
  out.ok = st.ok.load();
  out.failed = st.failed.load();
  std::lock_guard<std::mutex> lock(st.mu);
  for (const auto& [name, c] : st.checked) {
    if (c.created_at && (!out.newest_good || *c.created_at > *out.newest_good)) out.newest_good = c.created_at;
  }
  return out;
}

}  // namespace vouch::api
