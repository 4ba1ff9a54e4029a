// The canary of lint.build_enforces_deps (tests/lint/CMakeLists.txt): a header of libs/store.
// Built in a target that links vouch::store it compiles; in one that links only vouch::evidence
// the compiler must not find it, because a target sees only the headers of what it links.
#include "store/database.h"

namespace vouch::lint {
// Uses the header, so the include is not merely found but needed.
[[maybe_unused]] inline constexpr auto kDepsCanarySize = sizeof(vouch::store::Database*);
}  // namespace vouch::lint
