#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vouch::store {

// Schema migrations in order; migration N (1-based) brings the schema to version N. Each is a
// list of portable SQL statements (SQLite and PostgreSQL). Never edit a released migration:
// append a new one. A statement that starts with kMigrationOnlyPrefix + backend + "*/" (e.g.
// "/*only:postgres*/ ALTER TABLE ...") runs on that backend only (Database::backend()); the
// other backend skips it, so a migration may be a no-op on one of them.
inline constexpr std::string_view kMigrationOnlyPrefix = "/*only:";
const std::vector<std::vector<std::string>>& Migrations();

}  // namespace vouch::store
