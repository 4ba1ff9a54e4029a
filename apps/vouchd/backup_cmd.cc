#include "backup_cmd.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backup/backup.h"
#include "base/clock.h"

namespace vouchd {
namespace {

constexpr char kVouchdVersion[] = "0.1.0";  // as `vouchd --version`

[[noreturn]] void Exit(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::exit(code);
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "vouchd: %s\n", message.c_str());
  Exit(1);
}

// "what: message (reason_code)": one line that scripts can match on the stable code.
[[noreturn]] void Fail(const std::string& what, const vouch::Status& st) {
  Fail(what + ": " + st.message() + (st.reason().empty() ? "" : " (" + st.reason() + ")"));
}

void PrintManifest(const vouch::backup::Manifest& m) {
  uint64_t bytes = 0;
  for (const auto& f : m.files) bytes += f.size;
  std::printf("  created_at:      %s\n  vouch version:   %s\n  schema version:  %lld\n  store:           %s\n"
              "  files:           %zu (%llu bytes)\n",
              m.created_at.c_str(), m.vouch_version.c_str(), static_cast<long long>(m.schema_version),
              m.store.c_str(), m.files.size(), static_cast<unsigned long long>(bytes));
}

struct BackupArgs {
  std::string data_dir;
  std::string out;
  std::string verify;
  int64_t test_schema_version = 0;
};

struct RestoreArgs {
  std::string from;
  std::string data_dir;
  std::string master_key_file;
  std::vector<std::string> shares;
  std::string store_url;
  bool force = false;
};

}  // namespace

void RegisterBackupCommands(CLI::App& app) {
  auto b = std::make_shared<BackupArgs>();
  auto* backup = app.add_subcommand(
      "backup", "Write a consistent backup of a data directory while vouchd serves (never the master key), or --verify one");
  backup->add_option("--data-dir", b->data_dir, "Data directory to back up");
  backup->add_option("--out", b->out, "Archive file to write (mode 0600)");
  backup->add_option("--verify", b->verify, "Check this archive (checksums, manifest, schema) without restoring it");
  // Test knob (hidden): record a schema version, to produce a well-formed archive from a "newer vouchd".
  backup->add_option("--test-schema-version", b->test_schema_version)->check(CLI::Range(1, 1000000))->group("");
  backup->callback([b] {
    if (!b->verify.empty()) {
      if (!b->data_dir.empty() || !b->out.empty()) Fail("backup --verify FILE takes no --data-dir or --out");
      auto m = vouch::backup::VerifyBackup(b->verify);
      if (!m.ok()) Fail(b->verify, m.status());
      std::printf("%s: ok\n", b->verify.c_str());
      PrintManifest(*m);
      Exit(0);
    }
    if (b->data_dir.empty() || b->out.empty()) Fail("backup needs --data-dir DIR --out FILE (or --verify FILE)");
    vouch::backup::BackupOptions o;
    o.data_dir = b->data_dir;
    o.out = b->out;
    o.vouch_version = kVouchdVersion;
    o.schema_version_override = b->test_schema_version;
    auto m = vouch::backup::CreateBackup(o, vouch::SystemClock::Get());
    if (!m.ok()) Fail("backup of " + b->data_dir, m.status());
    std::printf("wrote %s\n", b->out.c_str());
    PrintManifest(*m);
    Exit(0);
  });

  auto r = std::make_shared<RestoreArgs>();
  auto* restore = app.add_subcommand("restore", "Restore a data directory from a backup (checks everything before writing)");
  restore->add_option("--from", r->from, "Archive written by vouchd backup")->required();
  restore->add_option("--data-dir", r->data_dir, "Data directory to create (must be empty or absent)")->required();
  restore->add_option("--master-key-file", r->master_key_file, "The cluster master key (32 bytes, as DATA/master.key)");
  restore->add_option("--share", r->shares, "A custodian share file from vouchd master-key split (repeat for m of them; instead of --master-key-file)");
  restore->add_option("--store", r->store_url,
                      "For a backup of a PostgreSQL store: the empty database to restore into (postgres://...)");
  restore->add_flag("--force", r->force, "Restore over a non-empty data directory (moved aside, never deleted)");
  restore->callback([r] {
    vouch::backup::MasterKeySource source{r->master_key_file, r->shares};
    auto key = vouch::backup::LoadRestoreMasterKey(source);
    if (!key.ok()) Fail("restore: the master key", key.status());
    vouch::backup::RestoreOptions o{r->from, r->data_dir, r->force, r->store_url};
    auto done = vouch::backup::Restore(o, *key, vouch::SystemClock::Get());
    if (!done.ok()) Fail("restore from " + r->from, done.status());
    std::printf("restored %s from %s (%zu zone CA key(s) unsealed with the master key)\n", r->data_dir.c_str(),
                r->from.c_str(), done->zones_checked);
    if (!done->moved_aside.empty()) std::printf("  previous data directory moved to %s\n", done->moved_aside.c_str());
    PrintManifest(done->manifest);
    Exit(0);
  });
}

}  // namespace vouchd
