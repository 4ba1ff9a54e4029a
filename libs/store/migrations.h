#pragma once

#include <string>
#include <vector>

namespace vouch::store {

// Schema migrations in order; migration N (1-based) brings the schema to version N. Each is a
// list of portable SQL statements (SQLite and PostgreSQL). Never edit a released migration:
// append a new one.
const std::vector<std::vector<std::string>>& Migrations();

}  // namespace vouch::store
