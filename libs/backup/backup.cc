#include "backup/backup.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "custody/share.h"
#include "store/database.h"
#include "store/migrations.h"
#include "store/sqlite_backup.h"

extern char** environ;  // POSIX: the environment handed to pg_dump/pg_restore

namespace vouch::backup {
namespace fs = std::filesystem;
namespace {

// The archive member holding the store copy (a SQLite database file).
constexpr char kStoreMember[] = "vouch.db";
constexpr size_t kMaxArchiveBytes = size_t{8} << 30;  // 8 GiB
constexpr size_t kMaxDataFileBytes = size_t{1} << 30;

// The AAD under which vouchd seals these secrets. They must equal libs/api's (manager_zones.cc
// CaKeyAad, bootstrap.cc kTlsKeyAad): the backup_restore e2e test restores and serves, so a
// divergence fails there (and a restore with the right key would be refused).
std::string ZoneCaKeyAad(const std::string& zone_id) { return "vouch:zone-ca-key:" + zone_id; }
constexpr char kTlsKeyAad[] = "vouch:service-tls-key";

// A directory removed (recursively) when this goes out of scope, unless released.
class TempDir {
 public:
  static Result<TempDir> Create(const std::string& prefix) {
    std::string tmpl = prefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Unavailable("cannot create a directory like '" + prefix + "XXXXXX' (errno " + std::to_string(errno) + ")");
    }
    return TempDir(tmpl);
  }
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

std::string Parent(const std::string& path) {
  fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

Result<std::string> Absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) return InvalidArgument("cannot resolve '" + path + "': " + ec.message());
  return p.lexically_normal().string();
}

Result<nlohmann::json> ReadConfig(const std::string& text, const std::string& where) {
  auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object()) return DataLoss(where + " is not a JSON object", std::string(kInvalidConfig));
  return config;
}

Result<int64_t> StoreSchemaVersion(const std::string& db_path) {
  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenSqlite(db_path, 1));
  int64_t version = 0;
  VOUCH_RETURN_IF_ERROR(db->Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT version FROM schema_version", {}, "schema version"));
    version = r.Int(size_t{0});
    return Status::Ok();
  }));
  return version;
}

// SQLite's own consistency check of a store copy (pages, indexes, constraints).
Status SqliteIntegrity(const std::string& db_path) {
  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenSqlite(db_path, 1));
  return db->Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("PRAGMA integrity_check", {}, "integrity check"));
    if (r.Str(size_t{0}) != "ok") {
      return DataLoss("backup archive: the store copy fails SQLite's integrity check: " + r.Str(size_t{0}).substr(0, 200),
                      std::string(kArchiveCorrupt));
    }
    return Status::Ok();
  });
}

bool IsStoreFile(const std::string& rel) {
  return rel == kStoreMember || rel == "vouch.db-wal" || rel == "vouch.db-shm" || rel == "vouch.db-journal";
}

// Every regular file of the data directory that belongs in the archive, sorted by path.
Result<std::vector<FileEntry>> CollectDataFiles(const std::string& data_dir, const std::string& store_path) {
  std::vector<FileEntry> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(data_dir, fs::directory_options::none, ec), end;
  if (ec) return NotFound("cannot read data directory '" + data_dir + "': " + ec.message());
  const std::string store_abs = store_path.empty() ? "" : Absolute(store_path).value_or("");
  for (; it != end; it.increment(ec)) {
    if (ec) return Unavailable("reading '" + data_dir + "': " + ec.message());
    const fs::directory_entry& e = *it;
    if (e.is_symlink(ec) || !e.is_regular_file(ec)) continue;  // sockets, links: not data
    std::string rel = fs::relative(e.path(), data_dir, ec).generic_string();
    if (ec) return Unavailable("reading '" + data_dir + "': " + ec.message());
    const std::string name = e.path().filename().string();
    if (name.rfind("master.key", 0) == 0) continue;  // never the master key
    if (IsStoreFile(rel)) continue;
    if (!store_abs.empty() && Absolute(e.path().string()).value_or("").rfind(store_abs, 0) == 0) continue;
    if (name.rfind(kAtomicWriteTempPrefix, 0) == 0) continue;  // a crashed write's leftover
    // The server's backup folder (default DATA/backups, docs/operations.md): earlier archives are
    // not data, and archiving them would make each backup hold all the previous ones.
    if (rel.rfind("backups/", 0) == 0) continue;
    // Conversion scratch (vouchd serve --conversion-scratch-dir, default DATA/conversions; docs/convert.md
    // "Server-side conversion"): image blobs of running jobs, deleted when they end; not state.
    if (rel.rfind("conversions/", 0) == 0) continue;
    if (name.rfind("vouch-backup-", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".vbk") == 0) continue;
    // A master-key rotation's next TLS key (api/master_key.h): its key is master.key.next, which
    // is never archived, so the file would only be debris in a restore.
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".next") == 0) continue;
    if (!IsValidMemberPath(rel)) {
      return InvalidArgument("data directory file '" + rel + "' has a name the archive cannot hold");
    }
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0) return Unavailable("cannot stat '" + e.path().string() + "'");
    VOUCH_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(e.path().string(), kMaxDataFileBytes));
    files.push_back({rel, static_cast<uint32_t>(st.st_mode & 0777), std::move(data)});
  }
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  return files;
}

Status CheckSchema(int64_t version) {
  const auto supported = static_cast<int64_t>(store::Migrations().size());
  if (version > supported) {
    return FailedPrecondition("the backup's schema version " + std::to_string(version) +
                                  " is newer than this vouchd's (" + std::to_string(supported) +
                                  "): restore with a newer vouchd",
                              std::string(kSchemaTooNew));
  }
  return Status::Ok();
}

const ManifestFile* FindMember(const Manifest& m, std::string_view path, size_t* index) {
  for (size_t i = 0; i < m.files.size(); ++i) {
    if (m.files[i].path == path) {
      *index = i;
      return &m.files[i];
    }
  }
  return nullptr;
}

Status CheckStoreMember(const Archive& a) {
  size_t i = 0;
  if (a.manifest.store == "postgres") {
    if (FindMember(a.manifest, "store.pgdump", &i) == nullptr || FindMember(a.manifest, "store-check.json", &i) == nullptr) {
      return DataLoss("backup archive: no store members 'store.pgdump' and 'store-check.json'",
                      std::string(kArchiveCorrupt));
    }
  } else if (a.manifest.store != "sqlite") {
    return Unimplemented("the archive's store is '" + a.manifest.store + "'; this vouchd restores sqlite and postgres",
                         std::string(kUnsupportedStore));
  } else if (FindMember(a.manifest, kStoreMember, &i) == nullptr) {
    return DataLoss("backup archive: no store member 'vouch.db'", std::string(kArchiveCorrupt));
  }
  if (FindMember(a.manifest, "config.json", &i) == nullptr) {
    return DataLoss("backup archive: no config.json", std::string(kArchiveCorrupt));
  }
  return Status::Ok();
}

struct ReadArchive {
  std::string bytes;
  Archive archive;
};

Result<std::unique_ptr<ReadArchive>> LoadArchive(const std::string& path) {
  auto r = std::make_unique<ReadArchive>();
  VOUCH_ASSIGN_OR_RETURN(r->bytes, ReadWholeFile(path, kMaxArchiveBytes));
  VOUCH_ASSIGN_OR_RETURN(r->archive, ParseArchive(AsBytes(r->bytes)));
  VOUCH_RETURN_IF_ERROR(CheckStoreMember(r->archive));
  VOUCH_RETURN_IF_ERROR(CheckSchema(r->archive.manifest.schema_version));
  return r;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot open '" + dir + "'");
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Unavailable("fsync of '" + dir + "' failed");
}


constexpr char kPgDumpMember[] = "store.pgdump";
constexpr char kPgCheckMember[] = "store-check.json";

bool IsPostgresUrl(const std::string& url) {
  return url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
}

// Runs `argv` (PATH lookup, no shell); its output goes to `log`. Ok when it exits 0, else the
// last line of its output.
Status RunTool(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return Unavailable(argv[0] + " could not be run (errno " + std::to_string(rc) +
                       "): install Debian's postgresql-client");
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string out = ReadWholeFile(log, 1 << 20).value_or("");
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  size_t nl = out.rfind('\n');
  std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
  return Unavailable(argv[0] + " failed: " + (last.empty() ? "exit status " + std::to_string(status) : last),
                     std::string(kStoreToolFailed));
}

// Zone ids and sealed CA keys: a restore of a PostgreSQL archive checks the master key against
// these before it touches the target database.
Result<std::string> PgSealedCheck(store::Database& db) {
  nlohmann::json zones = nlohmann::json::array();
  VOUCH_RETURN_IF_ERROR(db.Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT id, name, ca_key_sealed FROM zones ORDER BY name"));
    for (const auto& r : rows) {
      zones.push_back({{"id", r.Str("id")}, {"name", r.Str("name")}, {"ca_key_sealed", HexEncode(r.Bytes("ca_key_sealed"))}});
    }
    return Status::Ok();
  }));
  return nlohmann::json{{"zones", zones}}.dump(1);
}

Result<int64_t> DatabaseSchemaVersion(store::Database& db) {
  int64_t version = 0;
  VOUCH_RETURN_IF_ERROR(db.Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT version FROM schema_version", {}, "schema version"));
    version = r.Int(size_t{0});
    return Status::Ok();
  }));
  return version;
}


Status WrongKey(const std::string& what) {
  return PermissionDenied("the master key does not open the backup's sealed secrets (" + what + "): wrong master key",
                          std::string(kMasterKeyMismatch));
}

// Every zone CA key (from the staged SQLite store, or a PostgreSQL archive's store-check.json) and
// the staged TLS key must unseal with `key`.
Result<size_t> CheckSealedSecrets(const std::string& staged, const std::string& db_path, const std::string& pg_check,
                                  const nlohmann::json& config, const crypto::SecretBytes& key) {
  size_t zones = 0;
  auto check_zone = [&](const std::string& id, const std::string& name, std::span<const uint8_t> sealed) -> Status {
    if (!crypto::Aes256GcmOpen(key.span(), sealed, AsBytes(ZoneCaKeyAad(id))).ok()) {
      return WrongKey("zone '" + name + "' CA key");
    }
    ++zones;
    return Status::Ok();
  };
  if (!db_path.empty()) {
    VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenSqlite(db_path, 1));
    VOUCH_RETURN_IF_ERROR(db->Read([&](store::Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT id, name, ca_key_sealed FROM zones ORDER BY name"));
      for (const auto& r : rows) VOUCH_RETURN_IF_ERROR(check_zone(r.Str("id"), r.Str("name"), r.Bytes("ca_key_sealed")));
      return Status::Ok();
    }));
  } else {
    auto j = nlohmann::json::parse(pg_check, nullptr, false);
    if (!j.is_object() || !j.contains("zones") || !j["zones"].is_array()) {
      return DataLoss("backup archive: store-check.json is malformed", std::string(kArchiveCorrupt));
    }
    for (const auto& z : j["zones"]) {
      if (!z.is_object() || !z.value("id", nlohmann::json()).is_string() ||
          !z.value("ca_key_sealed", nlohmann::json()).is_string()) {
        return DataLoss("backup archive: store-check.json is malformed", std::string(kArchiveCorrupt));
      }
      auto sealed = HexDecode(z["ca_key_sealed"].get<std::string>());
      if (!sealed.ok()) return DataLoss("backup archive: store-check.json is malformed", std::string(kArchiveCorrupt));
      VOUCH_RETURN_IF_ERROR(check_zone(z["id"].get<std::string>(), z.value("name", std::string("?")), *sealed));
    }
  }
  std::string tls_rel = config.value("tls_key_sealed", std::string("tls/server.key.sealed"));
  if (IsValidMemberPath(tls_rel) && FileExists(staged + "/" + tls_rel)) {
    VOUCH_ASSIGN_OR_RETURN(std::string sealed, ReadWholeFile(staged + "/" + tls_rel, 1 << 20));
    if (!crypto::Aes256GcmOpen(key.span(), AsBytes(sealed), AsBytes(kTlsKeyAad)).ok()) return WrongKey("TLS key");
  }
  return zones;
}
}  // namespace

namespace {
// DATA/master.key.lock, taken shared for the whole backup: a master-key rotation (offline, or
// online inside a serving vouchd) holds it exclusively from its first file to its last rename
// (libs/api/master_key.cc), so a backup never pairs a store copy under one key with
// tls/server.key.sealed under the other. Backups do not exclude each other.
class RotationGuard {
 public:
  static Result<RotationGuard> Acquire(const std::string& dir) {
    const std::string path = dir + "/master.key.lock";
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) return Internal("opening " + path + ": " + std::strerror(errno));
    if (fd >= 0 && ::flock(fd, LOCK_SH | LOCK_NB) != 0) {
      ::close(fd);
      return FailedPrecondition("a master-key rotation of " + dir + " is in progress: back up after it",
                                std::string(kRotationInProgress));
    }
    return RotationGuard(fd);
  }
  RotationGuard(RotationGuard&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RotationGuard& operator=(RotationGuard&&) = delete;
  ~RotationGuard() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit RotationGuard(int fd) : fd_(fd) {}
  int fd_;
};
}  // namespace

Result<Manifest> CreateBackup(const BackupOptions& o, const Clock& clock) {
  if (o.data_dir.empty() || o.out.empty()) return InvalidArgument("--data-dir and --out are required");
  VOUCH_ASSIGN_OR_RETURN(RotationGuard rotation_guard, RotationGuard::Acquire(o.data_dir));
  // An interrupted master-key rotation (docs/custody.md) may have re-sealed the store but not yet
  // renamed the TLS key file: archiving now could pair a store under the new key with the old
  // file. vouchd (OpenDataDir) finishes or rolls it back at its next start.
  if (FileExists(o.data_dir + "/master.key.next")) {
    return FailedPrecondition("a master-key rotation was interrupted in " + o.data_dir +
                                  ": start vouchd (it finishes or rolls back the rotation), then back up",
                              std::string(kRotationInProgress));
  }
  VOUCH_ASSIGN_OR_RETURN(std::string config_text, ReadWholeFile(o.data_dir + "/config.json", 1 << 20));
  VOUCH_ASSIGN_OR_RETURN(nlohmann::json config, ReadConfig(config_text, o.data_dir + "/config.json"));
  std::string url = config.value("store", "sqlite:" + o.data_dir + "/vouch.db");
  const bool postgres = IsPostgresUrl(url);
  std::string store_path = postgres ? "" : (url.rfind("sqlite:", 0) == 0 ? url.substr(7) : url);

  VOUCH_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Create(Parent(o.out) + "/.vouch-backup-"));
  std::vector<FileEntry> store_files;
  int64_t schema = 0;
  if (postgres) {
    // pg_dump reads one snapshot of the database (consistent while vouchd serves).
    VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenPostgres(url, 1));
    VOUCH_ASSIGN_OR_RETURN(schema, DatabaseSchemaVersion(*db));
    VOUCH_ASSIGN_OR_RETURN(std::string check, PgSealedCheck(*db));
    const std::string dump = tmp.path() + "/" + kPgDumpMember;
    VOUCH_RETURN_IF_ERROR(RunTool({"pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file=" + dump,
                                   "--dbname=" + url},
                                  tmp.path() + "/pg_dump.log"));
    VOUCH_ASSIGN_OR_RETURN(std::string dump_bytes, ReadWholeFile(dump, kMaxArchiveBytes));
    store_files.push_back({kPgDumpMember, 0600, std::move(dump_bytes)});
    store_files.push_back({kPgCheckMember, 0600, std::move(check)});
  } else {
    const std::string copy = tmp.path() + "/vouch.db";
    VOUCH_RETURN_IF_ERROR(store::SqliteOnlineBackup(store_path, copy));
    VOUCH_ASSIGN_OR_RETURN(schema, StoreSchemaVersion(copy));
    VOUCH_ASSIGN_OR_RETURN(std::string store_bytes, ReadWholeFile(copy, kMaxArchiveBytes));
    store_files.push_back({kStoreMember, 0600, std::move(store_bytes)});
  }

  VOUCH_ASSIGN_OR_RETURN(std::vector<FileEntry> files, CollectDataFiles(o.data_dir, store_path));
  files.insert(files.begin(), std::make_move_iterator(store_files.begin()), std::make_move_iterator(store_files.end()));
  Manifest m;
  m.vouch_version = o.vouch_version;
  m.schema_version = o.schema_version_override > 0 ? o.schema_version_override : schema;
  m.created_at = FormatRfc3339(clock.Now());
  m.store = postgres ? "postgres" : "sqlite";
  VOUCH_ASSIGN_OR_RETURN(std::string archive, EncodeArchive(m, files));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(o.out, archive, 0600));
  VOUCH_ASSIGN_OR_RETURN(Archive parsed, ParseArchive(AsBytes(archive)));
  return parsed.manifest;
}

Result<Manifest> VerifyBackup(const std::string& archive_path) {
  VOUCH_ASSIGN_OR_RETURN(auto read, LoadArchive(archive_path));
  const Archive& a = read->archive;
  size_t i = 0;
  const char* tmpdir = std::getenv("TMPDIR");
  VOUCH_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Create(std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") +
                                                      "/vouch-verify-"));
  if (a.manifest.store == "postgres") {
    FindMember(a.manifest, kPgDumpMember, &i);
    const std::string dump = tmp.path() + "/" + kPgDumpMember;
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dump, ToString(a.contents[i]), 0600, false));
    Status listed = RunTool({"pg_restore", "--list", dump}, tmp.path() + "/pg_restore.log");
    if (!listed.ok()) {
      return DataLoss("backup archive: the PostgreSQL dump does not read: " + listed.message(),
                      std::string(kArchiveCorrupt));
    }
    return a.manifest;
  }
  FindMember(a.manifest, kStoreMember, &i);
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(tmp.path() + "/vouch.db", ToString(a.contents[i]), 0600, false));
  auto schema = StoreSchemaVersion(tmp.path() + "/vouch.db");
  if (!schema.ok()) {
    return DataLoss("backup archive: the store copy does not open: " + schema.status().message(),
                    std::string(kArchiveCorrupt));
  }
  VOUCH_RETURN_IF_ERROR(SqliteIntegrity(tmp.path() + "/vouch.db"));
  if (*schema != a.manifest.schema_version) {
    return DataLoss("backup archive: the store's schema version is " + std::to_string(*schema) +
                        ", the manifest says " + std::to_string(a.manifest.schema_version),
                    std::string(kArchiveCorrupt));
  }
  return a.manifest;
}

Result<crypto::SecretBytes> LoadRestoreMasterKey(const MasterKeySource& source) {
  if (!source.share_files.empty() && !source.master_key_file.empty()) {
    return InvalidArgument("give either --master-key-file or --share, not both");
  }
  if (!source.share_files.empty()) {
    // The custodian path (docs/operations.md): m of the n shares of `vouchd master-key split`.
    // custody refuses too few shares, a corrupted share or shares of another key, never
    // returning a wrong key; Restore then checks the key against the archive's sealed secrets.
    return custody::CombineShareFiles(source.share_files);
  }
  if (source.master_key_file.empty()) return InvalidArgument("--master-key-file is required");
  VOUCH_ASSIGN_OR_RETURN(std::string key, ReadWholeFile(source.master_key_file, 64));
  if (key.size() != 32) {
    std::fill(key.begin(), key.end(), '\0');
    return InvalidArgument(source.master_key_file + " is not a 32-byte master key", std::string(kInvalidMasterKeyFile));
  }
  crypto::SecretBytes out(key);
  std::fill(key.begin(), key.end(), '\0');
  return out;
}

Result<RestoreResult> Restore(const RestoreOptions& o, const crypto::SecretBytes& master_key, const Clock& clock) {
  if (o.data_dir.empty() || o.archive_path.empty()) return InvalidArgument("--from and --data-dir are required");
  if (master_key.size() != 32) return InvalidArgument("the master key must be 32 bytes", std::string(kInvalidMasterKeyFile));
  VOUCH_ASSIGN_OR_RETURN(auto read, LoadArchive(o.archive_path));
  const Archive& a = read->archive;
  const bool postgres = a.manifest.store == "postgres";
  if (postgres && !IsPostgresUrl(o.store_url)) {
    return InvalidArgument("the archive holds a PostgreSQL store: give --store postgres://... (an empty database)");
  }
  if (!postgres && !o.store_url.empty()) {
    return InvalidArgument("the archive holds a SQLite store, restored into the data directory: --store is for "
                           "PostgreSQL archives");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string target, Absolute(o.data_dir));
  while (target.size() > 1 && target.back() == '/') target.pop_back();

  std::error_code ec;
  const bool exists = fs::exists(target, ec);
  bool empty = true;
  if (exists) {
    if (!fs::is_directory(target, ec)) return FailedPrecondition("'" + target + "' exists and is not a directory",
                                                                 std::string(kDataDirNotEmpty));
    empty = fs::is_empty(target, ec);
    if (ec) return Unavailable("cannot read '" + target + "': " + ec.message());
    if (!empty && !o.force) {
      return FailedPrecondition("'" + target + "' is not empty: restore into a new directory or pass --force",
                                std::string(kDataDirNotEmpty));
    }
  }

  std::unique_ptr<store::Database> pg;
  if (postgres) {
    VOUCH_ASSIGN_OR_RETURN(pg, store::OpenPostgres(o.store_url, 1));
    int64_t tables = 0;
    VOUCH_RETURN_IF_ERROR(pg->Read([&](store::Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT COUNT(*) AS n FROM information_schema.tables "
                                                       "WHERE table_schema = current_schema()",
                                                       {}, "tables"));
      tables = r.Int("n");
      return Status::Ok();
    }));
    if (tables != 0) {
      return FailedPrecondition("the database of --store holds " + std::to_string(tables) +
                                    " table(s): restore into an empty database (createdb)",
                                std::string(kStoreNotEmpty));
    }
  }

  // Stage beside the target (same file system: the final step is a rename).
  VOUCH_RETURN_IF_ERROR(MakeDirs(Parent(target), 0755));
  VOUCH_ASSIGN_OR_RETURN(TempDir staging, TempDir::Create(target + ".restore-"));
  for (size_t i = 0; i < a.manifest.files.size(); ++i) {
    const ManifestFile& f = a.manifest.files[i];
    const std::string path = staging.path() + "/" + f.path;
    VOUCH_RETURN_IF_ERROR(MakeDirs(Parent(path), 0700));
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(path, ToString(a.contents[i]), f.mode & 0644u));
  }
  size_t ci = 0;
  FindMember(a.manifest, "config.json", &ci);
  VOUCH_ASSIGN_OR_RETURN(nlohmann::json config, ReadConfig(ToString(a.contents[ci]), "the archive's config.json"));
  if (!postgres) VOUCH_RETURN_IF_ERROR(SqliteIntegrity(staging.path() + "/" + kStoreMember));
  std::string pg_check;
  if (postgres) {
    size_t k = 0;
    FindMember(a.manifest, kPgCheckMember, &k);
    pg_check = ToString(a.contents[k]);
  }
  VOUCH_ASSIGN_OR_RETURN(size_t zones,
                         CheckSealedSecrets(staging.path(), postgres ? "" : staging.path() + "/" + kStoreMember,
                                            pg_check, config, master_key));
  if (postgres) {
    // One transaction: a failure leaves the database empty. The dump stays out of the data dir.
    const std::string dump = staging.path() + "/" + kPgDumpMember;
    VOUCH_RETURN_IF_ERROR(RunTool({"pg_restore", "--single-transaction", "--exit-on-error", "--no-owner",
                                   "--no-privileges", "--dbname=" + o.store_url, dump},
                                  staging.path() + "/pg_restore.log"));
    ::unlink(dump.c_str());
    ::unlink((staging.path() + "/" + kPgCheckMember).c_str());
    ::unlink((staging.path() + "/pg_restore.log").c_str());
    config["store"] = o.store_url;
  } else {
    // The store now lives in the restored directory.
    config["store"] = "sqlite:" + target + "/" + kStoreMember;
  }
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(staging.path() + "/config.json", config.dump(2) + "\n", 0600));
  // The master key last: its presence marks a complete data directory (as vouchd init).
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(staging.path() + "/master.key", master_key.view(), 0600));

  RestoreResult result;
  result.manifest = a.manifest;
  result.zones_checked = zones;
  if (exists) {
    if (empty) {
      if (::rmdir(target.c_str()) != 0) return Unavailable("cannot replace empty directory '" + target + "'");
    } else {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count();
      result.moved_aside = target + ".before-restore-" + std::to_string(secs);
      if (::rename(target.c_str(), result.moved_aside.c_str()) != 0) {
        return Unavailable("cannot move '" + target + "' aside to '" + result.moved_aside + "'");
      }
    }
  }
  if (::rename(staging.path().c_str(), target.c_str()) != 0) {
    return Unavailable("cannot rename the staged restore into '" + target + "' (errno " + std::to_string(errno) + ")");
  }
  staging.Release();
  VOUCH_RETURN_IF_ERROR(::chmod(target.c_str(), 0700) == 0 ? Status::Ok() : Unavailable("chmod " + target));
  VOUCH_RETURN_IF_ERROR(FsyncDir(Parent(target)));
  return result;
}

}  // namespace vouch::backup
