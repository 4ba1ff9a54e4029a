#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace vouch::store {

using Blob = std::vector<uint8_t>;
// A bound parameter or a column value. Integers are 64-bit; times are unix seconds.
using Value = std::variant<std::nullptr_t, int64_t, std::string, Blob>;

// One result row; columns by index or by name. Accessors are lenient (a NULL reads as 0/""),
// callers that care test IsNull().
class Row {
 public:
  Row() : names_(std::make_shared<std::vector<std::string>>()) {}
  Row(std::shared_ptr<const std::vector<std::string>> names, std::vector<Value> values)
      : names_(std::move(names)), values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t i) const;
  int64_t Int(size_t i) const;
  std::string Str(size_t i) const;
  Blob Bytes(size_t i) const;
  bool IsNull(std::string_view col) const { return IsNull(Index(col)); }
  int64_t Int(std::string_view col) const { return Int(Index(col)); }
  std::string Str(std::string_view col) const { return Str(Index(col)); }
  Blob Bytes(std::string_view col) const { return Bytes(Index(col)); }

 private:
  size_t Index(std::string_view col) const;
  std::shared_ptr<const std::vector<std::string>> names_;
  std::vector<Value> values_;
};

using Rows = std::vector<Row>;

// SQL executed inside one transaction. Not thread-safe; valid only inside the callback that
// received it. Placeholders are `?`.
class Transaction {
 public:
  virtual ~Transaction() = default;
  // Returns the number of rows changed.
  virtual Result<int64_t> Exec(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  virtual Result<Rows> Query(std::string_view sql, const std::vector<Value>& params = {}) = 0;
  // Convenience: at most one row expected; NotFound when none.
  Result<Row> QueryOne(std::string_view sql, const std::vector<Value>& params, std::string_view what);
};

// How a read-write group is ordered against the store's other writers (docs/cluster.md). SQLite
// has one writer and treats both alike. On PostgreSQL, kSerial holds the cluster writer lock
// exclusively for the whole transaction (read-modify-write of shared values: approvals, CRL
// numbers, token uses, nonces, settings); kRowKeyed holds it shared, so row-keyed groups of every
// instance run concurrently, their correctness resting on the rows' own keys and row locks
// (certificate issuance, instance creation, heartbeats). Audit entries of both are chained at
// the end of the group under the audit lock. A group never mixes modes.
enum class WriteMode { kSerial, kRowKeyed };

// A database. Thread-safe: any number of threads may call Read/Write concurrently.
class Database {
 public:
  virtual ~Database() = default;

  // Runs `fn` in a read-write transaction and commits if it returns ok; rolls back otherwise
  // (the Status of `fn` is returned). Writers are serialised (PostgreSQL: across every instance
  // sharing the database). A commit is durable when this returns ok (SQLite: synchronous=FULL in
  // WAL mode). `fn` may run more than once (PostgreSQL retries a transaction after a conflict or a
  // lost connection), so it must not have effects outside `tx` other than setting its outputs.
  virtual Status Write(const std::function<Status(Transaction&)>& fn) = 0;
  // The same in a given mode (above); Write(fn) is kSerial.
  virtual Status Write(const std::function<Status(Transaction&)>& fn, WriteMode mode) {
    (void)mode;
    return Write(fn);
  }
  // Runs `fn` in a read-only snapshot transaction.
  virtual Status Read(const std::function<Status(Transaction&)>& fn) = 0;
  // One SELECT on its own: the rows of a single statement, which sees one consistent snapshot by
  // itself. Anything but a statement starting with SELECT is InvalidArgument. By default Read()
  // around one Query (SQLite); PostgreSQL runs it without BEGIN/COMMIT (autocommit), one round
  // trip instead of two, retried after a conflict or a lost connection as Read() is. For reads
  // that are one statement only: several QueryOnce calls see several snapshots.
  virtual Result<Rows> QueryOnce(std::string_view sql, const std::vector<Value>& params);

  // "sqlite" or "postgres".
  virtual std::string_view backend() const = 0;
  // Cheap liveness check for /readyz.
  virtual Status Ping() = 0;

  // Applies pending schema migrations (idempotent). Returns the resulting version.
  Result<int> Migrate();
};

// QueryOnce's check: `sql` starts with the keyword SELECT (leading whitespace and case aside).
bool IsSelectStatement(std::string_view sql);

// Opens "sqlite:/path/to/file.db" or a plain path (SQLite), creating the file with mode 0600, or
// "postgres://user[:password]@host[:port]/db[?sslmode=...]" (PostgreSQL; any libpq URI).
Result<std::unique_ptr<Database>> OpenDatabase(const std::string& url);
Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path, size_t readers = 4);
// A pool of up to `pool_size` libpq connections, opened lazily and re-opened after a failure.
// Fails (after retrying for a few seconds) when the server cannot be reached.
Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url, size_t pool_size = 8);

}  // namespace vouch::store
