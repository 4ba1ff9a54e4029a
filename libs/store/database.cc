#include "store/database.h"

#include "store/migrations.h"
#include "store/reasons.h"

namespace vouch::store {

size_t Row::Index(std::string_view col) const {
  for (size_t i = 0; i < names_->size(); ++i) {
    if ((*names_)[i] == col) return i;
  }
  return values_.size();  // out of range: accessors return defaults
}

bool Row::IsNull(size_t i) const {
  return i >= values_.size() || std::holds_alternative<std::nullptr_t>(values_[i]);
}

int64_t Row::Int(size_t i) const {
  if (i >= values_.size()) return 0;
  if (auto* v = std::get_if<int64_t>(&values_[i])) return *v;
  return 0;
}

std::string Row::Str(size_t i) const {
  if (i >= values_.size()) return {};
  if (auto* v = std::get_if<std::string>(&values_[i])) return *v;
  if (auto* b = std::get_if<Blob>(&values_[i])) return std::string(b->begin(), b->end());
  if (auto* n = std::get_if<int64_t>(&values_[i])) return std::to_string(*n);
  return {};
}

Blob Row::Bytes(size_t i) const {
  if (i >= values_.size()) return {};
  if (auto* b = std::get_if<Blob>(&values_[i])) return *b;
  if (auto* v = std::get_if<std::string>(&values_[i])) return Blob(v->begin(), v->end());
  return {};
}

Result<Row> Transaction::QueryOne(std::string_view sql, const std::vector<Value>& params, std::string_view what) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows, Query(sql, params));
  if (rows.empty()) return NotFound(std::string(what) + " not found");
  return std::move(rows.front());
}

bool IsSelectStatement(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n' || sql[i] == '\t' || sql[i] == '\r')) ++i;
  static constexpr std::string_view kSelect = "select";
  if (sql.size() - i <= kSelect.size()) return false;
  for (size_t k = 0; k < kSelect.size(); ++k) {
    if ((sql[i + k] | 0x20) != kSelect[k]) return false;
  }
  const char next = sql[i + kSelect.size()];
  return next == ' ' || next == '\n' || next == '\t' || next == '\r' || next == '*' || next == '(';
}

Result<Rows> Database::QueryOnce(std::string_view sql, const std::vector<Value>& params) {
  if (!IsSelectStatement(sql)) return InvalidArgument("QueryOnce runs a SELECT only", std::string(kStoreError));
  Rows rows;
  VOUCH_RETURN_IF_ERROR(Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(rows, tx.Query(sql, params));
    return Status::Ok();
  }));
  return rows;
}

Result<int> Database::Migrate() {
  const auto& migrations = Migrations();
  int version = 0;
  Status st = Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").status());
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT version FROM schema_version"));
    if (rows.empty()) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO schema_version (version) VALUES (0)").status());
    } else {
      version = static_cast<int>(rows[0].Int(0));
    }
    if (version > static_cast<int>(migrations.size())) {
      return FailedPrecondition("database schema version " + std::to_string(version) +
                                    " is newer than this binary knows (" +
                                    std::to_string(migrations.size()) + ")",
                                std::string(kSchemaTooNew));
    }
    // Each migration is a list of statements applied in this one transaction.
    for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
      for (const std::string& stmt : migrations[i]) {
        // A statement for one backend only (migrations.h): run where the marker names this one.
        if (stmt.rfind(kMigrationOnlyPrefix, 0) == 0) {
          const size_t end = stmt.find("*/");
          if (end == std::string::npos) return Internal("malformed migration statement", std::string(kStoreError));
          const std::string_view only(stmt.data() + kMigrationOnlyPrefix.size(), end - kMigrationOnlyPrefix.size());
          if (only != backend()) continue;
        }
        Status s = tx.Exec(stmt).status();
        if (!s.ok()) return s.WithContext("migration " + std::to_string(i + 1));
      }
    }
    version = static_cast<int>(migrations.size());
    return tx.Exec("UPDATE schema_version SET version = ?", {int64_t{version}}).status();
  });
  if (!st.ok()) return st;
  return version;
}

}  // namespace vouch::store
