// The PostgreSQL backend of store::Database (libpq).
//
// Concurrency model (docs/cluster.md): several vouchd instances may share one PostgreSQL. Every
// read-write transaction first takes one transaction-scoped advisory lock, the cluster writer
// lock: exclusively for a serial group (store::WriteMode::kSerial), so that a read-modify-write
// (approval counts, CRL numbers, join token uses, nonces, settings) never interleaves with another
// writer's, or shared for a row-keyed group (kRowKeyed: certificate issuance, instance creation,
// heartbeats), which runs concurrently with other row-keyed groups of every instance and relies on
// its rows' own keys and row locks. Audit entries are chained at the end of the group under a
// second advisory lock, the audit lock, held until COMMIT (store/audit_internal.h). Statements run
// at READ COMMITTED, so each one sees everything committed before it. Read-only transactions run
// at REPEATABLE READ (one snapshot) and take no lock. Commands whose answer is only "ok" (BEGIN,
// the locks, savepoints) are sent in one libpq pipeline with the next statement, so they cost no
// round trip of their own. Serialisation failures, deadlocks and lost connections before COMMIT
// are retried (the callback runs again on a fresh transaction); a connection lost during COMMIT is
// reported as Unavailable, because its outcome is unknown.
//
// A group's audit entries are its last statement, and COMMIT is sent in the same pipeline
// (FlushAuditAndCommit). This keeps every guarantee: the server runs a pipeline's queries in
// order and, after an error, skips the rest up to the sync, so COMMIT runs only after the entries'
// statement succeeded; a failed statement leaves the transaction open and aborted, and Attempt
// rolls it back (retrying a conflict) exactly as for any failed statement; an error answered by
// COMMIT means the server rolled back, as for COMMIT sent alone; a connection lost at any point of
// that pipeline is reported as a COMMIT of unknown outcome (never retried), because COMMIT may
// have been sent and run. QueryOnce runs one SELECT in autocommit (no BEGIN/COMMIT): a single
// statement sees one snapshot, and a read is safe to retry.
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "store/audit_internal.h"
#include "store/database.h"
#include "store/postgres_sql.h"
#include "store/reasons.h"
#include "store/write_group.h"

namespace vouch::store {
namespace {

// Any keys: all vouchd instances use the same ones. ASCII "vouchwr" and "vouchau".
constexpr int64_t kWriterLockKey = 0x766f7563687772;
constexpr int64_t kAuditLockKey = 0x766f7563686175;
// Row-keyed groups of one instance that may run at once (each on its own connection).
constexpr size_t kMaxRowKeyedLeaders = 3;
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
  // Outside any transaction block (what an autocommit statement needs).
  bool idle() const { return conn_ != nullptr && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

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
    pending_.clear();
  }

  // Queues a command without parameters whose answer is only "ok" (BEGIN, a lock, a savepoint):
  // it is sent in one pipeline with the next statement or command, and its failure is reported
  // as that statement's.
  void Defer(std::string sql) { pending_.push_back(std::move(sql)); }
  void ClearDeferred() { pending_.clear(); }

  // Runs one statement; `last_error` tells the caller whether a retry may help. With `commit`,
  // COMMIT follows the statement in the same pipeline (one round trip): ok means both succeeded
  // (the transaction committed); a failed statement means the server skipped COMMIT (the
  // transaction stays open and aborted, for the caller's ROLLBACK); kConnection means the outcome
  // of COMMIT is unknown.
  Result<PgResultPtr> Run(std::string_view sql, const std::vector<Value>& params, ErrorClass* last_error,
                          bool commit = false) {
    *last_error = ErrorClass::kNone;
    if (!connected()) {
      *last_error = ErrorClass::kConnection;
      return Unavailable("not connected to PostgreSQL", std::string(kStoreUnavailable));
    }
    auto it = statements_.find(sql);
    const bool prepare = it == statements_.end();
    std::string name, translated;
    std::vector<Oid> types;
    if (prepare) {
      name = "s" + std::to_string(statements_.size());
      translated = TranslateSqlForPostgres(sql);
      types = ParamTypes(params);
    } else {
      name = it->second.name;
      types = it->second.types;
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
        if (i < types.size() && types[i] == kByteaOid) {
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
    Step exec;
    exec.exec_name = &name;
    exec.nparams = static_cast<int>(params.size());
    exec.values = values.data();
    exec.lengths = lengths.data();
    exec.formats = formats.data();
    const std::string what(std::string(sql).substr(0, 120));
    if (!pending_.empty() || commit) {
      Step prep;
      prep.prepare_name = &name;
      prep.prepare_sql = &translated;
      prep.types = &types;
      bool prepared = false;
      auto res = Pipeline(prepare ? &prep : nullptr, exec, what, last_error, &prepared, commit);
      if (prepare && prepared) statements_.emplace(std::string(sql), Prepared{name, std::move(types)});
      return res;
    }
    if (prepare) {
      PgResultPtr prepared(PQprepare(conn_, name.c_str(), translated.c_str(), static_cast<int>(types.size()),
                                     types.data()),
                           &PQclear);
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) return ErrorFor(prepared.get(), what, last_error);
      statements_.emplace(std::string(sql), Prepared{name, types});
    }
    PgResultPtr res(PQexecPrepared(conn_, name.c_str(), exec.nparams, exec.values, exec.lengths, exec.formats, 0),
                    &PQclear);
    ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorFor(res.get(), what, last_error);
    return res;
  }

  // A plain command without parameters (BEGIN, COMMIT, ...).
  Status Command(const char* sql, ErrorClass* last_error) {
    *last_error = ErrorClass::kNone;
    if (!connected()) {
      *last_error = ErrorClass::kConnection;
      return Unavailable("not connected to PostgreSQL", std::string(kStoreUnavailable));
    }
    if (!pending_.empty()) {
      Step plain;
      plain.plain = sql;
      return Pipeline(nullptr, plain, sql, last_error, nullptr).status();
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

  // One query of a pipeline: a plain command, a prepare or a prepared statement's execution.
  struct Step {
    const char* plain = nullptr;
    const std::string* prepare_name = nullptr;
    const std::string* prepare_sql = nullptr;
    const std::vector<Oid>* types = nullptr;
    const std::string* exec_name = nullptr;
    int nparams = 0;
    const char* const* values = nullptr;
    const int* lengths = nullptr;
    const int* formats = nullptr;
  };

  bool Send(const Step& q) {
    if (q.plain != nullptr) return PQsendQueryParams(conn_, q.plain, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    if (q.prepare_name != nullptr) {
      return PQsendPrepare(conn_, q.prepare_name->c_str(), q.prepare_sql->c_str(), static_cast<int>(q.types->size()),
                           q.types->data()) == 1;
    }
    return PQsendQueryPrepared(conn_, q.exec_name->c_str(), q.nparams, q.values, q.lengths, q.formats, 0) == 1;
  }

  Status Lost(ErrorClass* last_error) {
    std::string msg = conn_ != nullptr ? Trimmed(PQerrorMessage(conn_)) : "";
    *last_error = ErrorClass::kConnection;
    Close();
    return Unavailable("PostgreSQL connection lost: " + msg, std::string(kStoreUnavailable));
  }

  // Sends the deferred commands, then `prepare` (if any) and `last`, and COMMIT after it when
  // `commit`, in one pipeline (one round trip) and returns the result of `last`. The first query
  // that failed decides the error (the server skips the later ones, COMMIT included, up to the
  // pipeline's sync). `prepared` tells whether `prepare` succeeded.
  Result<PgResultPtr> Pipeline(const Step* prepare, const Step& last, const std::string& what, ErrorClass* last_error,
                               bool* prepared, bool commit = false) {
    std::vector<std::string> commands;
    commands.swap(pending_);
    if (PQenterPipelineMode(conn_) != 1) return Lost(last_error);
    bool sent = true;
    for (const std::string& c : commands) {
      Step q;
      q.plain = c.c_str();
      sent = sent && Send(q);
    }
    if (prepare != nullptr) sent = sent && Send(*prepare);
    sent = sent && Send(last);
    Step commit_step;
    commit_step.plain = "COMMIT";
    if (commit) sent = sent && Send(commit_step);
    sent = sent && PQpipelineSync(conn_) == 1;
    if (!sent) return Lost(last_error);
    const size_t last_index = commands.size() + (prepare != nullptr ? 1 : 0);
    const size_t expected = last_index + 1 + (commit ? 1 : 0);
    std::vector<PgResultPtr> results;
    bool synced = false;
    int nulls = 0;
    while (true) {
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {
        // One null ends each query's results; two in a row, or a broken connection, end it all.
        if (PQstatus(conn_) != CONNECTION_OK || ++nulls > 1) break;
        continue;
      }
      nulls = 0;
      if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        synced = true;
        break;
      }
      results.emplace_back(r, &PQclear);
    }
    if (!synced || results.size() != expected || PQexitPipelineMode(conn_) != 1) {
      // The connection broke (or the protocol went astray): it is closed and re-opened later.
      return Lost(last_error);
    }
    for (size_t i = 0; i < results.size(); ++i) {
      ExecStatusType st = PQresultStatus(results[i].get());
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (prepare != nullptr && i == commands.size() && prepared != nullptr) *prepared = true;
        continue;
      }
      if (st == PGRES_PIPELINE_ABORTED) continue;  // after the failure reported below
      const std::string name = i < commands.size() ? commands[i] : i > last_index ? "COMMIT" : what;
      return ErrorFor(results[i].get(), name, last_error);
    }
    if (PQresultStatus(results[last_index].get()) == PGRES_PIPELINE_ABORTED) {
      *last_error = ErrorClass::kOther;
      return Aborted("a pipelined statement was skipped", std::string(kStoreTxAborted));
    }
    // COMMIT of a transaction that had failed answers ROLLBACK (not expected here: a statement is
    // only sent while the transaction is healthy, and a failed one skips COMMIT).
    if (commit && std::string_view(PQcmdStatus(results.back().get())) != "COMMIT") {
      *last_error = ErrorClass::kOther;
      return Aborted("the transaction was rolled back at COMMIT", std::string(kStoreTxAborted));
    }
    return std::move(results[last_index]);
  }

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
  std::vector<std::string> pending_;
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

// The rows of a statement's result (column names shared by every row).
Rows RowsOf(const PGresult* res) {
  int ncol = PQnfields(res);
  auto names = std::make_shared<std::vector<std::string>>();
  std::vector<Oid> types;
  for (int c = 0; c < ncol; ++c) {
    names->push_back(PQfname(res, c));
    types.push_back(PQftype(res, c));
  }
  Rows rows;
  int nrow = PQntuples(res);
  rows.reserve(static_cast<size_t>(nrow));
  for (int r = 0; r < nrow; ++r) {
    std::vector<Value> values;
    values.reserve(static_cast<size_t>(ncol));
    for (int c = 0; c < ncol; ++c) {
      if (PQgetisnull(res, r, c)) {
        values.emplace_back(nullptr);
      } else {
        values.push_back(DecodeText(types[static_cast<size_t>(c)], PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
    }
    rows.emplace_back(names, std::move(values));
  }
  return rows;
}

class PgTransaction final : public Transaction, public internal::AuditSink {
 public:
  // `audit`: where a write transaction defers its audit entries (null for reads).
  explicit PgTransaction(PgConnection* conn, internal::DeferredAudit* audit = nullptr) : conn_(conn), audit_(audit) {}

  Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params) override {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, Run(sql, params));
    const char* n = PQcmdTuples(res.get());
    return static_cast<int64_t>(n && *n ? std::strtoll(n, nullptr, 10) : 0);
  }

  Result<Rows> Query(std::string_view sql, const std::vector<Value>& params) override {
    VOUCH_ASSIGN_OR_RETURN(PgResultPtr res, Run(sql, params));
    return RowsOf(res.get());
  }

  bool DefersAudit() const override { return audit_ != nullptr && defer_; }
  void DeferAudit(AuditEntry e) override { audit_->Add(std::move(e)); }
  internal::DeferredAudit* audit() { return audit_; }

  // Chains the group's deferred audit entries under the audit lock, which is then held until
  // COMMIT: groups append one at a time and the chain's order is their commit order. The entries'
  // statement is the group's last, so COMMIT travels in its pipeline (commit_sent(): the caller
  // must not send COMMIT again; see the header comment for why nothing else changes).
  Status FlushAuditAndCommit() {
    if (audit_ == nullptr || audit_->empty()) return Status::Ok();
    if (failure_ != ErrorClass::kNone) {
      return Aborted("an earlier statement of this transaction failed", std::string(kStoreTxAborted));
    }
    conn_->Defer("SELECT pg_advisory_xact_lock(" + std::to_string(kAuditLockKey) + ")");
    defer_ = false;
    Status st = WriteAuditEntries(audit_->entries());
    defer_ = true;
    return st;
  }
  // True once a statement went out with COMMIT behind it (FlushAuditAndCommit): then ok and no
  // failure() means committed, kConnection means unknown, any other failure means COMMIT was
  // skipped and the transaction awaits ROLLBACK.
  bool commit_sent() const { return commit_sent_; }

  // The class of the first failure inside the callback: the transaction is then unusable
  // (PostgreSQL aborts it), so the caller decides between retry and rollback from this.
  ErrorClass failure() const { return failure_; }

  // Group commit (store/write_group.h): a savepoint per member. Rolling back to it makes the
  // transaction usable again after a member's failed statement (failure class kOther only).
  // SAVEPOINT and RELEASE travel in the pipeline of the next statement.
  void Savepoint() {
    if (audit_ != nullptr) audit_->BeginMember();
    if (failure_ == ErrorClass::kNone) conn_->Defer("SAVEPOINT vouch_group_member");
  }
  void ReleaseSavepoint() {
    if (failure_ == ErrorClass::kNone) conn_->Defer("RELEASE SAVEPOINT vouch_group_member");
  }
  Status RollbackToSavepoint() {
    if (audit_ != nullptr) audit_->DropMember();
    if (failure_ == ErrorClass::kConflict || failure_ == ErrorClass::kConnection) {
      return Aborted("the transaction cannot continue", std::string(kStoreBusy));
    }
    ErrorClass e;
    Status st = conn_->Command("ROLLBACK TO SAVEPOINT vouch_group_member", &e);
    if (st.ok()) {
      failure_ = ErrorClass::kNone;
    } else {
      failure_ = e;
    }
    return st;
  }

 private:
  Result<PgResultPtr> Run(std::string_view sql, const std::vector<Value>& params, bool commit = false) {
    if (failure_ != ErrorClass::kNone) {
      return Aborted("an earlier statement of this transaction failed",
                     std::string(kStoreTxAborted));
    }
    if (commit_sent_) return Aborted("the transaction has ended", std::string(kStoreTxAborted));
    ErrorClass e;
    commit_sent_ = commit;
    auto res = conn_->Run(sql, params, &e, commit);
    if (!res.ok()) failure_ = e;
    return res;
  }

  // internal::WriteAuditEntries in two round trips whatever the count: the head (its query
  // travels with the audit lock), then every entry and the head's move in one statement (the
  // entries as arrays, one prepared statement for any number of them).
  Status WriteAuditEntries(std::vector<AuditEntry>& entries) {
    VOUCH_ASSIGN_OR_RETURN(Rows last, Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", {}));
    int64_t seq = last.empty() ? 0 : last[0].Int(0);
    std::string prev = last.empty() ? std::string(kAuditGenesis) : last[0].Str(1);
    std::vector<std::string> seqs, ats;
    std::vector<std::string_view> actors, actions, targets, outcomes, details, prevs, hashes;
    for (AuditEntry& e : entries) {
      e.seq = ++seq;
      e.prev_hash = prev;
      e.hash = AuditHash(e);
      prev = e.hash;
    }
    for (const AuditEntry& e : entries) {
      seqs.push_back(std::to_string(e.seq));
      ats.push_back(std::to_string(e.at));
      actors.push_back(e.actor);
      actions.push_back(e.action);
      targets.push_back(e.target);
      outcomes.push_back(e.outcome);
      details.push_back(e.detail);
      prevs.push_back(e.prev_hash);
      hashes.push_back(e.hash);
    }
    auto ints = [](const std::vector<std::string>& v) {
      std::string out = "{";
      for (size_t i = 0; i < v.size(); ++i) out += (i > 0 ? "," : "") + v[i];
      return out + "}";
    };
    return Run("WITH entries AS (INSERT INTO audit (seq, at, actor, action, target, outcome, detail, prev_hash, hash) "
               "SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
               "?::text[], ?::text[])) "
               "INSERT INTO settings (key, value) VALUES ('audit_head', ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               {ints(seqs), ints(ats), PgTextArray(actors), PgTextArray(actions), PgTextArray(targets), PgTextArray(outcomes),
                PgTextArray(details), PgTextArray(prevs), PgTextArray(hashes), prev},
               /*commit=*/true)
        .status();
  }

  PgConnection* conn_;
  internal::DeferredAudit* audit_;
  bool defer_ = true;
  bool commit_sent_ = false;
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
  // transaction, one cluster writer lock and one commit. Serial and row-keyed writers queue
  // apart, so a group never mixes modes; row-keyed groups run a few at once.
  Status Write(const std::function<Status(Transaction&)>& fn) override { return Write(fn, WriteMode::kSerial); }
  Status Write(const std::function<Status(Transaction&)>& fn, WriteMode mode) override {
    internal::WriteGroups& groups = mode == WriteMode::kRowKeyed ? row_keyed_ : serial_;
    return groups.Submit(fn, [this, mode](const std::vector<internal::GroupMember*>& group) { RunGroup(group, mode); });
  }
  Status Read(const std::function<Status(Transaction&)>& fn) override { return Run(fn, false, WriteMode::kSerial); }

  // One SELECT in autocommit: no BEGIN/COMMIT, one round trip (the statement is prepared once per
  // connection, as in a transaction). A single statement sees one snapshot by itself, and a read
  // commits nothing, so retrying it after a lost connection is as safe as retrying a Read().
  Result<Rows> QueryOnce(std::string_view sql, const std::vector<Value>& params) override {
    if (!IsSelectStatement(sql)) return InvalidArgument("QueryOnce runs a SELECT only", std::string(kStoreError));
    Rows rows;
    VOUCH_RETURN_IF_ERROR(Retrying([&](PgConnection* conn, ErrorClass* failure) -> Status {
      conn->ClearDeferred();
      if (!conn->idle()) {
        // Never expected (every transaction ends in COMMIT or ROLLBACK); a fresh connection rather
        // than a statement inside someone's transaction.
        Status st = conn->Connect();
        if (!st.ok()) {
          *failure = ErrorClass::kConnection;
          return st;
        }
      }
      auto res = conn->Run(sql, params, failure);
      if (!res.ok()) return res.status();
      rows = RowsOf(res->get());
      return Status::Ok();
    }));
    return rows;
  }

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

  Status Run(const std::function<Status(Transaction&)>& fn, bool write, WriteMode mode) {
    return Retrying([&](PgConnection* conn, ErrorClass* failure) { return Attempt(conn, fn, write, mode, failure); });
  }

  // Runs `attempt` on a pooled, connected connection; again after a conflict (a few times) or a
  // lost connection (within kReconnectBudget), as `attempt`'s `failure` says.
  Status Retrying(const std::function<Status(PgConnection*, ErrorClass*)>& attempt) {
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
          st = attempt(conn, &failure);
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
  Status Attempt(PgConnection* conn, const std::function<Status(Transaction&)>& fn, bool write, WriteMode mode,
                 ErrorClass* failure) {
    ErrorClass e;
    // BEGIN and the writer lock travel with the first statement (one pipeline).
    conn->ClearDeferred();
    conn->Defer(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (write) {
      conn->Defer(std::string(mode == WriteMode::kRowKeyed ? "SELECT pg_advisory_xact_lock_shared("
                                                           : "SELECT pg_advisory_xact_lock(") +
                  std::to_string(kWriterLockKey) + ")");
    }
    internal::DeferredAudit audit;
    PgTransaction tx(conn, write ? &audit : nullptr);
    Status st = fn(tx);
    if (tx.commit_sent()) {
      // COMMIT went out with the group's last statement (the audit entries).
      if (tx.failure() == ErrorClass::kConnection) {
        // As for a lost COMMIT below: it may have landed, so the group never runs again.
        *failure = ErrorClass::kOther;
        return Unavailable("PostgreSQL connection lost during COMMIT; the outcome is unknown",
                           std::string(kStoreUnavailable));
      }
      if (st.ok() && tx.failure() == ErrorClass::kNone) return st;  // committed
      // Otherwise the statement or COMMIT failed and nothing was committed: as any failed
      // statement below (ROLLBACK; a conflict is retried).
    }
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

  void RunGroup(const std::vector<internal::GroupMember*>& group, WriteMode mode) {
    const bool single = group.size() == 1;
    // Run() may call this more than once (conflicts, a connection lost before COMMIT): every
    // member starts again from a clean result each time.
    Status st = Run(
        [&](Transaction& t) -> Status {
          auto& tx = static_cast<PgTransaction&>(t);
          for (internal::GroupMember* m : group) m->result = Status::Ok();
          bool any_ok = false;
          for (internal::GroupMember* m : group) {
            if (!single) tx.Savepoint();
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
              if (!single) tx.ReleaseSavepoint();
              any_ok = true;
            } else if (single) {
              return m->result;  // rolled back by Attempt
            } else {
              VOUCH_RETURN_IF_ERROR(tx.RollbackToSavepoint());
            }
          }
          if (!any_ok) return Aborted("every write of the group failed", std::string(kStoreGroupFailed));
          // The audit entries of the members that succeeded, in the order they ran.
          return tx.FlushAuditAndCommit();
        },
        true, mode);
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
  internal::WriteGroups serial_;
  internal::WriteGroups row_keyed_{512, kMaxRowKeyedLeaders};
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
