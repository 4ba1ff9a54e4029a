#pragma once

// An online, consistent copy of a SQLite store while other connections (a serving vouchd) keep
// reading and writing it: SQLite's online backup API (sqlite3_backup_*), one step over the whole
// database inside a single read transaction, so the copy is one committed state (WAL readers do
// not block writers). Used by `vouchd backup` (libs/backup).

#include <string>

#include "base/result.h"

namespace vouch::store {

// Copies the SQLite database at `source_path` into a new file `dest_path` (created with mode
// 0600; it must not exist). Retries while the source is busy for up to `busy_timeout_ms`.
// On failure `dest_path` is removed. Thread-safe (opens its own connections).
Status SqliteOnlineBackup(const std::string& source_path, const std::string& dest_path,
                          int busy_timeout_ms = 30000);

}  // namespace vouch::store
