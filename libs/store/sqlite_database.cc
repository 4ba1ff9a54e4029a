#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <iterator>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "store/audit_internal.h"
#include "store/database.h"
#include "store/reasons.h"
#include "store/write_group.h"

namespace vouch::store {
namespace {

// Process-wide settings, before SQLite initialises (sqlite3_config fails, harmlessly, after).
// No memory statistics (nothing here reads sqlite3_memory_used): with them every allocation of
// every connection takes one global mutex, contended by the readers and the writer (seen as
// lock waits in a context-switch profile of heartbeat ingest). (A page cache in one block per
// connection, SQLITE_CONFIG_PAGECACHE, was tried: +12 MB of RSS at start for no CPU gain that
// could be told from the run-to-run noise, session 11.)
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

// One SQLite connection with a prepared-statement cache. Used by one thread at a time.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool read_only) {
    ConfigureSqliteOnce();
    sqlite3* db = nullptr;
    int flags = (read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto conn = std::unique_ptr<Connection>(new Connection(db));
    if (rc != SQLITE_OK) {
      return Unavailable(
          "cannot open database '" + path + "': " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)),
          std::string(kStoreUnavailable));
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_extended_result_codes(db, 1);
    const char* pragmas = read_only ? "PRAGMA foreign_keys=ON;"
                                    : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
    VOUCH_RETURN_IF_ERROR(conn->ExecScript(pragmas));
    return conn;
  }

  ~Connection() {
    for (sqlite3_stmt* stmt : control_) sqlite3_finalize(stmt);  // null is a no-op
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Status ExecScript(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return ErrorFor(sqlite3_extended_errcode(db_), msg);
    }
    return Status::Ok();
  }

  bool autocommit() const { return sqlite3_get_autocommit(db_) != 0; }

  // The transaction statements of the group commit and of reads, prepared once per connection:
  // sqlite3_exec would parse them again every time (several per group, two per read).
  enum class Control { kBegin, kBeginImmediate, kCommit, kRollback, kSavepoint, kRelease, kRollbackTo, kCount };
  Status Run(Control c) {
    static constexpr const char* kSql[] = {"BEGIN",
                                           "BEGIN IMMEDIATE",
                                           "COMMIT",
                                           "ROLLBACK",
                                           "SAVEPOINT vouch_group_member",
                                           "RELEASE vouch_group_member",
                                           "ROLLBACK TO vouch_group_member"};
    static_assert(std::size(kSql) == static_cast<size_t>(Control::kCount));
    sqlite3_stmt*& stmt = control_[static_cast<size_t>(c)];
    if (stmt == nullptr &&
        sqlite3_prepare_v3(db_, kSql[static_cast<size_t>(c)], -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
            SQLITE_OK) {
      stmt = nullptr;
      return ErrorFor(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
    }
    int rc = sqlite3_step(stmt);
    // The error of a failed step, read before reset (which returns it again, but may clear the message).
    Status st = rc == SQLITE_DONE || rc == SQLITE_ROW ? Status::Ok()
                                                      : ErrorFor(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
    sqlite3_reset(stmt);
    return st;
  }

  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    // Found by the view itself (transparent hash): no key string built per statement run.
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      // Every parameter is bound again before the next step (Bind checks the count): no
      // sqlite3_clear_bindings needed.
      sqlite3_reset(it->second);
      return it->second;
    }
    std::string key(sql);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                           nullptr) != SQLITE_OK) {
      return Internal(
          "prepare failed: " + std::string(sqlite3_errmsg(db_)) + " in: " + key.substr(0, 120),
          std::string(kStoreError));
    }
    cache_.emplace(std::move(key), stmt);
    return stmt;
  }

  // Binds without copying (SQLITE_STATIC): `params` outlive every step of this run (Exec and
  // Query step and reset before returning), and a cached statement is never stepped again before
  // Bind has replaced every parameter.
  Status Bind(sqlite3_stmt* stmt, const std::vector<Value>& params) {
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(stmt)) {
      return Internal("SQL has " + std::to_string(sqlite3_bind_parameter_count(stmt)) +
                          " parameters, got " + std::to_string(params.size()),
                      std::string(kStoreError));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      int rc = std::visit(
          [&](const auto& v) -> int {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::nullptr_t>) {
              return sqlite3_bind_null(stmt, idx);
            } else if constexpr (std::is_same_v<T, int64_t>) {
              return sqlite3_bind_int64(stmt, idx, v);
            } else if constexpr (std::is_same_v<T, std::string>) {
              return sqlite3_bind_text64(stmt, idx, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
            } else {
              return sqlite3_bind_blob64(stmt, idx, v.data(), v.size(), SQLITE_STATIC);
            }
          },
          params[i]);
      if (rc != SQLITE_OK)
        return Internal("bind failed: " + std::string(sqlite3_errmsg(db_)),
                        std::string(kStoreError));
    }
    return Status::Ok();
  }

  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) {
    VOUCH_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    VOUCH_RETURN_IF_ERROR(Bind(stmt, params));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return ErrorFor(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
    return static_cast<int64_t>(sqlite3_changes64(db_));
  }

  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) {
    VOUCH_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    VOUCH_RETURN_IF_ERROR(Bind(stmt, params));
    int ncol = sqlite3_column_count(stmt);
    auto names = std::make_shared<std::vector<std::string>>();
    for (int i = 0; i < ncol; ++i) names->push_back(sqlite3_column_name(stmt, i));
    Rows rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::vector<Value> values;
      values.reserve(static_cast<size_t>(ncol));
      for (int i = 0; i < ncol; ++i) {
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_NULL: values.emplace_back(nullptr); break;
          case SQLITE_INTEGER: values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, i))); break;
          case SQLITE_BLOB: {
            const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt, i));
            values.emplace_back(Blob(p, p + sqlite3_column_bytes(stmt, i)));
            break;
          }
          default: {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
            values.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
          }
        }
      }
      rows.emplace_back(names, std::move(values));
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return ErrorFor(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_));
    return rows;
  }

  static Status ErrorFor(int code, const std::string& msg) {
    switch (code & 0xff) {
      case SQLITE_CONSTRAINT:
        if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return AlreadyExists("already exists (" + msg + ")", std::string(kAlreadyExists));
        }
        return FailedPrecondition("constraint failed (" + msg + ")",
                                  std::string(kConstraintFailed));
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Aborted("database busy: " + msg, std::string(kStoreBusy));
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        return DataLoss("database corrupt: " + msg, std::string(kStoreCorrupt));
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN:
        return Unavailable("database I/O error: " + msg, std::string(kStoreUnavailable));
      default:
        return Internal("database error: " + msg, std::string(kStoreError));
    }
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  sqlite3_stmt* control_[static_cast<size_t>(Control::kCount)] = {};
  // Hashed, looked up by the view itself: one pass over the SQL and one compare per statement run
  // (an ordered map compared the long common prefixes of similar statements several times).
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> cache_;
};

class SqliteTransaction final : public Transaction, public internal::AuditSink {
 public:
  // `audit`: where a write transaction defers its audit entries (null for reads).
  SqliteTransaction(Connection* conn, internal::DeferredAudit* audit = nullptr) : conn_(conn), audit_(audit) {}
  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    return conn_->Exec(sql, params);
  }
  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) override {
    return conn_->Query(sql, params);
  }
  bool DefersAudit() const override { return audit_ != nullptr && defer_; }
  void DeferAudit(AuditEntry e) override { audit_->Add(std::move(e)); }
  // Writes the group's deferred entries (the single writer is the only appender).
  Status FlushAudit() {
    if (audit_ == nullptr || audit_->empty()) return Status::Ok();
    defer_ = false;
    Status st = internal::WriteAuditEntries(*this, audit_->entries());
    defer_ = true;
    return st;
  }

 private:
  Connection* conn_;
  internal::DeferredAudit* audit_;
  bool defer_ = true;
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : writer_(std::move(writer)), readers_(std::move(readers)) {
    for (auto& r : readers_) free_readers_.push_back(r.get());
  }

  // Group commit (store/write_group.h): concurrent writers share one transaction and one fsync.
  // One writer: both write modes queue alike.
  using Database::Write;
  Status Write(const std::function<Status(Transaction&)>& fn) override {
    return groups_.Submit(fn, [this](const std::vector<internal::GroupMember*>& group) { RunGroup(group); });
  }

  Status Read(const std::function<Status(Transaction&)>& fn) override {
    Connection* conn = AcquireReader();
    Status st = writer_ ? conn->Run(Connection::Control::kBegin) : Status::Ok();
    if (st.ok()) {
      SqliteTransaction tx(conn);
      st = fn(tx);
      (void)conn->Run(Connection::Control::kCommit);
    }
    ReleaseReader(conn);
    return st;
  }

  std::string_view backend() const override { return "sqlite"; }

  Status Ping() override {
    return Read([](Transaction& tx) { return tx.Query("SELECT 1").status(); });
  }

 private:
  void RunGroup(const std::vector<internal::GroupMember*>& group) {
    auto fail_all = [&](const Status& st) {
      for (internal::GroupMember* p : group) p->result = st;
    };
    Status begin = writer_->Run(Connection::Control::kBeginImmediate);
    if (!begin.ok()) return fail_all(begin);
    internal::DeferredAudit audit;
    SqliteTransaction tx(writer_.get(), &audit);
    if (group.size() == 1) {
      group[0]->result = internal::CallMember(*group[0]->fn, tx);
    } else {
      for (internal::GroupMember* p : group) {
        audit.BeginMember();
        Status sp = writer_->Run(Connection::Control::kSavepoint);
        if (sp.ok()) p->result = internal::CallMember(*p->fn, tx);
        const bool ok = sp.ok() && p->result.ok();
        if (!ok) {
          audit.DropMember();
          if (p->result.ok()) p->result = sp;
          sp = writer_->Run(Connection::Control::kRollbackTo);
        }
        if (sp.ok()) sp = writer_->Run(Connection::Control::kRelease);
        if (!sp.ok() || writer_->autocommit()) {
          // The transaction itself is gone (SQLite rolls back the whole transaction on some
          // errors, e.g. I/O or a full disk): nobody in the group may be told "committed".
          (void)writer_->Run(Connection::Control::kRollback);
          Status lost = sp.ok() ? Aborted("the group's transaction was rolled back by SQLite: " +
                                              p->result.message(),
                                          std::string(kStoreBusy))
                                : sp;
          for (internal::GroupMember* q : group) {
            if (q->result.ok() || q == p) q->result = lost;
          }
          return;
        }
      }
    }
    bool any_ok = false;
    for (internal::GroupMember* p : group) any_ok |= p->result.ok();
    if (!any_ok) {
      (void)writer_->Run(Connection::Control::kRollback);
      return;
    }
    // The audit entries of the members that succeeded, chained in the order they ran.
    Status commit = tx.FlushAudit();
    if (commit.ok()) commit = writer_->Run(Connection::Control::kCommit);
    if (!commit.ok()) {
      (void)writer_->Run(Connection::Control::kRollback);
      for (internal::GroupMember* p : group) {
        if (p->result.ok()) p->result = commit;
      }
    }
  }

  Connection* AcquireReader() {
    std::unique_lock<std::mutex> lock(read_mu_);
    read_cv_.wait(lock, [&] { return !free_readers_.empty(); });
    Connection* c = free_readers_.back();
    free_readers_.pop_back();
    return c;
  }
  void ReleaseReader(Connection* c) {
    {
      std::lock_guard<std::mutex> lock(read_mu_);
      free_readers_.push_back(c);
    }
    read_cv_.notify_one();
  }

  internal::WriteGroups groups_;
  std::unique_ptr<Connection> writer_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::mutex read_mu_;
  std::condition_variable read_cv_;
  std::vector<Connection*> free_readers_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path, size_t readers) {
  // Create the file ourselves so that it is never world-readable, even for a moment.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return Unavailable("cannot create database file '" + path + "'",
                       std::string(kStoreUnavailable));
  ::close(fd);
  VOUCH_ASSIGN_OR_RETURN(auto writer, Connection::Open(path, false));
  std::vector<std::unique_ptr<Connection>> pool;
  for (size_t i = 0; i < std::max<size_t>(readers, 1); ++i) {
    VOUCH_ASSIGN_OR_RETURN(auto r, Connection::Open(path, false));
    pool.push_back(std::move(r));
  }
  return std::unique_ptr<Database>(new SqliteDatabase(std::move(writer), std::move(pool)));
}

Result<std::unique_ptr<Database>> OpenDatabase(const std::string& url) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    return OpenPostgres(url);
  }
  std::string path = url;
  if (path.rfind("sqlite:", 0) == 0) path = path.substr(7);
  if (path.empty()) return InvalidArgument("empty database path", std::string(kInvalidStoreUrl));
  return OpenSqlite(path);
}

}  // namespace vouch::store
