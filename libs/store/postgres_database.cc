// The PostgreSQL backend of store::Database (libpq).
//
// Concurrency model (docs/cluster.md): several vouchd instances may share one PostgreSQL. Every
// read-write transaction first takes one transaction-scoped advisory lock, so writers are
// serialised across all instances exactly as SQLite serialises them within one process: a
// read-modify-write (approval counts, CRL numbers, audit sequence numbers, join token uses) can
// never interleave with another instance's. Statements run at READ COMMITTED, so each one sees
// everything committed before the lock was granted. Read-only transactions run at REPEATABLE READ
// (one snapshot) and take no lock. Serialisation failures, deadlocks and lost connections before
// COMMIT are retried (the callback runs again on a fresh transaction); a connection lost during
// COMMIT is reported as Unavailable, because its outcome is unknown.
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "store/database.h"
#include "store/postgres_sql.h"
#include "store/reasons.h"
#include "store/write_group.h"

namespace vouch::store {
namespace {

// Any key: all vouchd instances use the same one. ASCII "vouchwr".
constexpr int64_t kWriterLockKey = 0x766f7563687772;
constexpr Oid kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
              kNumericOid = 1700;
// How long a transaction keeps trying to reach the server (e.g. across a PostgreSQL restart).
constexpr auto kReconnectBudget = std::chrono::seconds(20);
constexpr int kMaxConflictRetries = 20;

using PgResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

enum class ErrorClass { kNone, kConflict, kConnection, kOther };

std::string Trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

bool IsConnectionState(const std::string& state) {
  // 08: connection exception; 57P01..57P03: admin/crash shutdown, cannot connect now.
  return state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" || state == "57P03";
}

class PgConnection {
 public:
  explicit PgConnection(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~PgConnection() { Close(); }

  bool connected() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

  Status Connect() {
    Close();
    conn_ = PQconnectdb(conninfo_.c_str());
    if (conn_ == nullptr)
      return Unavailable("cannot allocate a PostgreSQL connection", std::string(kStoreUnavailable));
    if (PQstatus(conn_) != CONNECTION_OK) {
      // The message names host and port, never the password.
      std::string msg = Trimmed(PQerrorMessage(conn_));
      Close();
      return Unavailable("cannot connect to PostgreSQL: " + msg, std::string(kStoreUnavailable));
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
    return Status::Ok();
  }

  void Close() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
    statements_.clear();
  }

  // Runs one statement; `last_error` tells the caller whether a retry may help.
  Result<PgResultPtr> Run(std::string_view sql, const std::vector<Value>& params, ErrorClass* last_error) {
    *last_error = ErrorClass::kNone;
    if (!connected()) {
      *last_error = ErrorClass::kConnection;
      return Unavailable("not connected to PostgreSQL", std::string(kStoreUnavailable));
    }
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      std::string name = "s" + std::to_string(statements_.size());
      std::string translated = TranslateSqlForPostgres(sql);
      std::vector<Oid> types = ParamTypes(params);
      PgResultPtr prepared(PQprepare(conn_, name.c_str(), translated.c_str(), static_cast<int>(types.size()),
                                     types.data()),
                           &PQclear);
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        return ErrorFor(prepared.get(), std::string(sql).substr(0, 120), last_error);
      }
      it = statements_.emplace(std::string(sql), Prepared{name, std::move(types)}).first;
    }
    // A parameter whose kind differs from the prepared one (e.g. NULL first, then a string) is
    // sent as text and coerced by the server; blobs are always sent in binary.
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0), formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) continue;
      if (const auto* n = std::get_if<int64_t>(&v)) {
        text[i] = std::to_string(*n);
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        text[i] = *s;
      } else {
        const Blob& b = std::get<Blob>(v);
        if (it->second.types[i] == kByteaOid) {
          values[i] = reinterpret_cast<const char*>(b.data());
          lengths[i] = static_cast<int>(b.size());
          formats[i] = 1;
          if (b.empty()) values[i] = "";
          continue;
        }
        text[i] = "\\x" + HexEncode(b);
      }
      values[i] = text[i].c_str();
      lengths[i] = static_cast<int>(text[i].size());
    }
    PgResultPtr res(PQexecPrepared(conn_, it->second.name.c_str(), static_cast<int>(params.size()), values.data(),
                                   lengths.data(), formats.data(), 0),
                    &PQclear);
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return ErrorFor(res.get(), std::string(sql).substr(0, 120), last_error);
    }
    return res;
  }

  // A plain command without parameters (BEGIN, COMMIT, ...).
  Status Command(const char* sql, ErrorClass* last_error) {
    *last_error = ErrorClass::kNone;
    if (!connected()) {
      *last_error = ErrorClass::kConnection;
      return Unavailable("not connected to PostgreSQL", std::string(kStoreUnavailable));
    }
    PgResultPtr res(PQexec(conn_, sql), &PQclear);
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFor(res.get(), sql, last_error);
    return Status::Ok();
  }

 private:
  struct Prepared {
    std::string name;
    std::vector<Oid> types;
  };

  static std::string HexEncode(const Blob& b) {
    static const char* kDigits = "0123456789abcdef";
    std::string out;
    out.reserve(b.size() * 2);
    for (uint8_t c : b) {
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
    return out;
  }

  static std::vector<Oid> ParamTypes(const std::vector<Value>& params) {
    std::vector<Oid> types;
    types.reserve(params.size());
    for (const Value& v : params) {
      // Strings and NULLs are left untyped so that the server infers them from the column,
      // as SQLite's dynamic typing does.
      if (std::holds_alternative<int64_t>(v)) {
        types.push_back(kInt8Oid);
      } else if (std::holds_alternative<Blob>(v)) {
        types.push_back(kByteaOid);
      } else {
        types.push_back(0);
      }
    }
    return types;
  }

  Status ErrorFor(const PGresult* res, const std::string& what, ErrorClass* last_error) {
    const char* state_c = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string state = state_c ? state_c : "";
    std::string msg = res ? Trimmed(PQresultErrorMessage(res)) : "";
    if (msg.empty()) msg = Trimmed(PQerrorMessage(conn_));
    if (PQstatus(conn_) != CONNECTION_OK || IsConnectionState(state) || (state.empty() && res == nullptr)) {
      *last_error = ErrorClass::kConnection;
      Close();
      return Unavailable("PostgreSQL connection lost: " + msg, std::string(kStoreUnavailable));
    }
    if (state == "40001" || state == "40P01" || state == "55P03") {
      *last_error = ErrorClass::kConflict;
      return Aborted("transaction conflict: " + msg, std::string(kStoreBusy));
    }
    *last_error = ErrorClass::kOther;
    if (state == "23505")
      return AlreadyExists("already exists (" + msg + ")", std::string(kAlreadyExists));
    if (state.rfind("23", 0) == 0)
      return FailedPrecondition("constraint failed (" + msg + ")", std::string(kConstraintFailed));
    if (state == "53100")
      return Unavailable("database disk full: " + msg, std::string(kStoreUnavailable));
    if (state.rfind("XX", 0) == 0)
      return DataLoss("database corrupt: " + msg, std::string(kStoreCorrupt));
    return Internal("database error: " + msg + " in: " + what, std::string(kStoreError));
  }

  std::string conninfo_;
  PGconn* conn_ = nullptr;
  std::map<std::string, Prepared, std::less<>> statements_;
};

Value DecodeText(Oid type, const char* p, int len) {
  std::string_view s(p, static_cast<size_t>(len));
  switch (type) {
    case kInt8Oid:
    case kInt4Oid:
    case kInt2Oid:
    case kOidOid:
    case kNumericOid: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size()) return v;
      return std::string(s);
    }
    case kBoolOid: return int64_t{s == "t" ? 1 : 0};
    case kByteaOid: {
      Blob out;
      if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') {
        auto nibble = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return 0;
        };
        out.reserve((s.size() - 2) / 2);
        for (size_t i = 2; i + 1 < s.size(); i += 2) {
          out.push_back(static_cast<uint8_t>(nibble(s[i]) << 4 | nibble(s[i + 1])));
        }
      }
      return out;
    }
    default: return std::string(s);
  }
}

class PgTransaction final : public Transaction {
 public:
  explicit PgTransaction(PgConnection* conn) : conn_(conn) {}

  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, Run(sql, params));
    const char* n = PQcmdTuples(res.get());
    return static_cast<int64_t>(n && *n ? std::strtoll(n, nullptr, 10) : 0);
  }

  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) override {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, Run(sql, params));
    int ncol = PQnfields(res.get());
    auto names = std::make_shared<std::vector<std::string>>();
    std::vector<Oid> types;
    for (int c = 0; c < ncol; ++c) {
      names->push_back(PQfname(res.get(), c));
      types.push_back(PQftype(res.get(), c));
    }
    Rows rows;
    int nrow = PQntuples(res.get());
    rows.reserve(static_cast<size_t>(nrow));
    for (int r = 0; r < nrow; ++r) {
      std::vector<Value> values;
      values.reserve(static_cast<size_t>(ncol));
      for (int c = 0; c < ncol; ++c) {
        if (PQgetisnull(res.get(), r, c)) {
          values.emplace_back(nullptr);
        } else {
          values.push_back(DecodeText(types[static_cast<size_t>(c)], PQgetvalue(res.get(), r, c),
                                      PQgetlength(res.get(), r, c)));
        }
      }
      rows.emplace_back(names, std::move(values));
    }
    return rows;
  }

  // The class of the first failure inside the callback: the transaction is then unusable
  // (PostgreSQL aborts it), so the caller decides between retry and rollback from this.
  ErrorClass failure() const { return failure_; }

  // Group commit (store/write_group.h): a savepoint per member. Rolling back to it makes the
  // transaction usable again after a member's failed statement (failure class kOther only).
  Status Savepoint() { return Command("SAVEPOINT vouch_group_member"); }
  Status ReleaseSavepoint() { return Command("RELEASE SAVEPOINT vouch_group_member"); }
  Status RollbackToSavepoint() {
    if (failure_ == ErrorClass::kConflict || failure_ == ErrorClass::kConnection) {
      return Aborted("the transaction cannot continue", std::string(kStoreBusy));
    }
    ErrorClass e;
    Status st = conn_->Command("ROLLBACK TO SAVEPOINT vouch_group_member", &e);
    if (st.ok()) {
      failure_ = ErrorClass::kNone;
    } else if (failure_ == ErrorClass::kNone) {
      failure_ = e;
    }
    return st;
  }

 private:
  Status Command(const char* sql) {
    if (failure_ != ErrorClass::kNone) {
      return Aborted("an earlier statement of this transaction failed",
                     std::string(kStoreTxAborted));
    }
    ErrorClass e;
    Status st = conn_->Command(sql, &e);
    if (!st.ok()) failure_ = e;
    return st;
  }

  Result<PgResultPtr> Run(std::string_view sql, const std::vector<Value>& params) {
    if (failure_ != ErrorClass::kNone) {
      return Aborted("an earlier statement of this transaction failed",
                     std::string(kStoreTxAborted));
    }
    ErrorClass e;
    auto res = conn_->Run(sql, params, &e);
    if (!res.ok()) failure_ = e;
    return res;
  }

  PgConnection* conn_;
  ErrorClass failure_ = ErrorClass::kNone;
};

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(std::string conninfo, size_t pool_size) {
    for (size_t i = 0; i < pool_size; ++i) {
      pool_.push_back(std::make_unique<PgConnection>(conninfo));
      free_.push_back(pool_.back().get());
    }
  }

  // Group commit (store/write_group.h): concurrent writers of this instance share one
  // transaction, one cluster writer lock and one commit.
  Status Write(const std::function<Status(Transaction&)>& fn) override {
    return groups_.Submit(fn, [this](const std::vector<internal::GroupMember*>& group) { RunGroup(group); });
  }
  Status Read(const std::function<Status(Transaction&)>& fn) override { return Run(fn, false); }

  std::string_view backend() const override { return "postgres"; }

  Status Ping() override {
    return Read([](Transaction& tx) { return tx.Query("SELECT 1").status(); });
  }

  // One connection attempt, no retries: for startup, so that a wrong URL fails at once.
  Status Probe() {
    Lease lease(this, Acquire());
    return lease.get()->connected() ? Status::Ok() : lease.get()->Connect();
  }

 private:
  class Lease {
   public:
    Lease(PostgresDatabase* db, PgConnection* c) : db_(db), c_(c) {}
    ~Lease() { db_->Release(c_); }
    PgConnection* get() const { return c_; }

   private:
    PostgresDatabase* db_;
    PgConnection* c_;
  };

  Status Run(const std::function<Status(Transaction&)>& fn, bool write) {
    auto deadline = std::chrono::steady_clock::now() + kReconnectBudget;
    auto backoff = std::chrono::milliseconds(20);
    int conflicts = 0;
    Status last = Unavailable("PostgreSQL unreachable", std::string(kStoreUnavailable));
    while (true) {
      ErrorClass failure = ErrorClass::kNone;
      {
        Lease lease(this, Acquire());
        PgConnection* conn = lease.get();
        Status st = conn->connected() ? Status::Ok() : conn->Connect();
        if (st.ok()) {
          st = Attempt(conn, fn, write, &failure);
          if (st.ok() || failure == ErrorClass::kNone || failure == ErrorClass::kOther) return st;
        } else {
          failure = ErrorClass::kConnection;
        }
        last = st;
      }
      if (failure == ErrorClass::kConflict) {
        if (++conflicts > kMaxConflictRetries) return last;
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + conflicts));
        continue;
      }
      // A connection failure: back off and retry until the budget is spent.
      if (std::chrono::steady_clock::now() + backoff > deadline) return last;
      std::this_thread::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::milliseconds(1000));
    }
  }

  // One try. `failure` is kConflict or kConnection when another try may succeed.
  Status Attempt(PgConnection* conn, const std::function<Status(Transaction&)>& fn, bool write,
                 ErrorClass* failure) {
    ErrorClass e;
    Status st = conn->Command(write ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                                    : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                              &e);
    if (!st.ok()) {
      *failure = e;
      return st;
    }
    PgTransaction tx(conn);
    if (write) {
      st = tx.Exec("SELECT pg_advisory_xact_lock(?)", {kWriterLockKey}).status();
    }
    if (st.ok()) st = fn(tx);
    if (tx.failure() == ErrorClass::kConflict || tx.failure() == ErrorClass::kConnection) {
      *failure = tx.failure();
      if (conn->connected()) (void)conn->Command("ROLLBACK", &e);
      return st.ok() ? Aborted("a statement failed inside the transaction", std::string(kStoreBusy))
                     : st;
    }
    if (!st.ok()) {
      *failure = ErrorClass::kOther;
      (void)conn->Command("ROLLBACK", &e);
      return st;
    }
    if (tx.failure() != ErrorClass::kNone) {
      // The callback swallowed a failed statement; PostgreSQL will not commit this transaction.
      *failure = ErrorClass::kOther;
      (void)conn->Command("ROLLBACK", &e);
      return Aborted("a statement failed inside the transaction", std::string(kStoreTxAborted));
    }
    st = conn->Command("COMMIT", &e);
    if (st.ok()) return st;
    if (e == ErrorClass::kConnection) {
      // The outcome is unknown: never run the callback twice for one commit that may have landed.
      *failure = ErrorClass::kOther;
      return Unavailable("PostgreSQL connection lost during COMMIT; the outcome is unknown",
                         std::string(kStoreUnavailable));
    }
    *failure = e;
    return st;
  }

  void RunGroup(const std::vector<internal::GroupMember*>& group) {
    if (group.size() == 1) {
      group[0]->result = Run([&](Transaction& tx) { return internal::CallMember(*group[0]->fn, tx); }, true);
      return;
    }
    // Run() may call this more than once (conflicts, a connection lost before COMMIT): every
    // member starts again from a clean result each time.
    Status st = Run(
        [&](Transaction& t) -> Status {
          auto& tx = static_cast<PgTransaction&>(t);
          for (internal::GroupMember* m : group) m->result = Status::Ok();
          bool any_ok = false;
          for (internal::GroupMember* m : group) {
            VOUCH_RETURN_IF_ERROR(tx.Savepoint());
            m->result = internal::CallMember(*m->fn, tx);
            if (tx.failure() == ErrorClass::kConflict || tx.failure() == ErrorClass::kConnection) {
              // The whole transaction is lost; Run() retries the group or reports this.
              return m->result.ok() ? Aborted("a statement failed inside the transaction",
                                              std::string(kStoreBusy))
                                    : m->result;
            }
            if (m->result.ok() && tx.failure() != ErrorClass::kNone) {
              m->result = Aborted("a statement failed inside the transaction",
                                  std::string(kStoreTxAborted));
            }
            if (m->result.ok()) {
              VOUCH_RETURN_IF_ERROR(tx.ReleaseSavepoint());
              any_ok = true;
            } else {
              VOUCH_RETURN_IF_ERROR(tx.RollbackToSavepoint());
            }
          }
          return any_ok
                     ? Status::Ok()
                     : Aborted("every write of the group failed", std::string(kStoreGroupFailed));
        },
        true);
    if (st.ok()) return;
    for (internal::GroupMember* m : group) {
      if (m->result.ok()) m->result = st;  // the group did not commit: nobody's changes are there
    }
  }

  PgConnection* Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    PgConnection* c = free_.back();
    free_.pop_back();
    return c;
  }
  void Release(PgConnection* c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(c);
    }
    cv_.notify_one();
  }

  std::vector<std::unique_ptr<PgConnection>> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PgConnection*> free_;
  internal::WriteGroups groups_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url, size_t pool_size) {
  // Validate the URL and reach the server once, so that a typo fails at startup.
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? Trimmed(err) : "invalid connection URL";
    PQfreemem(err);
    return InvalidArgument("invalid PostgreSQL URL: " + msg, std::string(kInvalidStoreUrl));
  }
  PQconninfoFree(opts);
  auto db = std::make_unique<PostgresDatabase>(url, std::max<size_t>(pool_size, 1));
  VOUCH_RETURN_IF_ERROR(db->Probe());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace vouch::store
