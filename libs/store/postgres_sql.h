#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vouch::store {

// Rewrites the portable SQL subset (libs/store/README.md) for PostgreSQL, in one place:
//   `?` placeholders      -> $1, $2, ...
//   INTEGER (64-bit)      -> BIGINT
//   BLOB                  -> BYTEA
// Text inside '...' literals, "..." identifiers and -- comments is left alone. Pure function.
std::string TranslateSqlForPostgres(std::string_view sql);

// PostgreSQL array literals ("{...}") for `unnest(?::text[])` / `?::bigint[]` / `= ANY(?::text[])`:
// bound as ONE parameter and cast, never spliced into SQL. Text elements are each quoted, with
// quotes and backslashes escaped. Pure functions.
std::string PgTextArray(const std::vector<std::string_view>& items);
std::string PgIntArray(const std::vector<int64_t>& items);

}  // namespace vouch::store
