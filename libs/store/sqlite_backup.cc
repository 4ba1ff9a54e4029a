#include "store/sqlite_backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "store/reasons.h"

namespace vouch::store {
namespace {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteCloser>;

Result<SqlitePtr> OpenConn(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  SqlitePtr db(raw);
  if (rc != SQLITE_OK) {
    return Unavailable("cannot open database '" + path + "': " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
                       std::string(kStoreUnavailable));
  }
  return db;
}

Status Copy(const std::string& source_path, const std::string& dest_path, int busy_timeout_ms) {
  // Read-write open of the source: a WAL database needs its -shm; nothing is written to it.
  VOUCH_ASSIGN_OR_RETURN(SqlitePtr src, OpenConn(source_path, SQLITE_OPEN_READWRITE));
  sqlite3_busy_timeout(src.get(), busy_timeout_ms);
  VOUCH_ASSIGN_OR_RETURN(SqlitePtr dst, OpenConn(dest_path, SQLITE_OPEN_READWRITE));
  sqlite3_backup* backup = sqlite3_backup_init(dst.get(), "main", src.get(), "main");
  if (backup == nullptr) {
    return Internal("sqlite3_backup_init: " + std::string(sqlite3_errmsg(dst.get())), std::string(kStoreError));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  int rc;
  // -1: every page in one step, under one read transaction of the source: a consistent copy.
  while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int finish = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return Unavailable("online backup of '" + source_path + "' failed: " + sqlite3_errstr(rc),
                       std::string(kStoreUnavailable));
  }
  if (finish != SQLITE_OK) {
    return Unavailable("online backup of '" + source_path + "' failed: " + sqlite3_errmsg(dst.get()),
                       std::string(kStoreUnavailable));
  }
  return Status::Ok();
}

}  // namespace

Status SqliteOnlineBackup(const std::string& source_path, const std::string& dest_path, int busy_timeout_ms) {
  if (::access(source_path.c_str(), R_OK) != 0) {
    return NotFound("no SQLite store at '" + source_path + "'", std::string(kStoreUnavailable));
  }
  int fd = ::open(dest_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return AlreadyExists("cannot create '" + dest_path + "' (exists or not writable)", std::string(kStoreUnavailable));
  }
  ::close(fd);
  Status st = Copy(source_path, dest_path, busy_timeout_ms);
  if (!st.ok()) ::unlink(dest_path.c_str());
  return st;
}

}  // namespace vouch::store
