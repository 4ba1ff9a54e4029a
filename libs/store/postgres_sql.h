#pragma once

#include <string>
#include <string_view>

namespace vouch::store {

// Rewrites the portable SQL subset (libs/store/README.md) for PostgreSQL, in one place:
//   `?` placeholders      -> $1, $2, ...
//   INTEGER (64-bit)      -> BIGINT
//   BLOB                  -> BYTEA
// Text inside '...' literals, "..." identifiers and -- comments is left alone. Pure function.
std::string TranslateSqlForPostgres(std::string_view sql);

}  // namespace vouch::store
