#pragma once

// Backups of a vouchd data directory and restores from them (docs/operations.md).
//
// A backup is one archive (archive_format.h): a consistent online copy of the store (SQLite's
// backup API, taken while vouchd serves), plus every regular file of the data directory except
// the master key (config.json, the TLS certificate and its sealed key, service-ca.pem, zone CA
// certificates, a dev data directory's sim/ folder). Secrets in the store and in *.sealed files
// stay sealed under the master key; the archive alone opens none of them.
//
// A restore checks everything before it writes: the archive's checksums, a schema no newer than
// this binary's, an empty (or --force) target, and that the master key unseals the sealed
// secrets of the archive (every zone CA key and the TLS key). It then builds the data directory
// in a staging directory beside the target and renames it into place, so a failed restore leaves
// nothing behind and an interrupted one leaves the target as it was.
//
// Functions are not thread-safe with respect to the same paths; they hold no global state.

#include <string>
#include <vector>

#include "backup/archive_format.h"
#include "base/clock.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::backup {

struct BackupOptions {
  std::string data_dir;
  std::string out;            // the archive file written (atomically, mode 0600)
  std::string vouch_version;  // recorded in the manifest
  // Test hook (vouchd backup --test-schema-version, hidden): records this schema version instead
  // of the store's, to produce a well-formed archive "from a newer vouchd". 0: the store's.
  int64_t schema_version_override = 0;
};

// Takes a backup; returns its manifest. The data directory's store may be in use.
// A PostgreSQL store is dumped with `pg_dump --format=custom` (one snapshot; Debian's
// postgresql-client on PATH).
Result<Manifest> CreateBackup(const BackupOptions& options, const Clock& clock);

// Checks an archive file without restoring it: checksums, manifest, the store copy opens as a
// SQLite database that passes PRAGMA integrity_check and whose schema version is the manifest's
// (PostgreSQL: `pg_restore --list` reads the dump), and that version is not newer than this
// binary's. Returns the manifest.
Result<Manifest> VerifyBackup(const std::string& archive_path);

// Where the master key of a restore comes from. Exactly one of the two.
struct MasterKeySource {
  std::string master_key_file;           // 32 raw bytes, as DIR/master.key
  std::vector<std::string> share_files;  // custodian share files (vouchd master-key split)
};

// Recovers the master key from `source`: the key file (32 bytes), or m custodian shares combined
// by libs/custody (refusals: too_few_shares, share_corrupt, share_mismatch, ...).
Result<crypto::SecretBytes> LoadRestoreMasterKey(const MasterKeySource& source);

struct RestoreOptions {
  std::string archive_path;
  std::string data_dir;
  bool force = false;  // a non-empty data_dir is moved aside to data_dir.before-restore-<time>
  // For an archive of a PostgreSQL store: the database to restore into (postgres://...), which
  // must hold no tables (never overwritten, not even with force). Refused for SQLite archives.
  std::string store_url;
};

struct RestoreResult {
  Manifest manifest;
  std::string moved_aside;  // where a previous data_dir went (with force), else ""
  size_t zones_checked = 0;
};

// Restores. The master key is written to data_dir/master.key (0600).
Result<RestoreResult> Restore(const RestoreOptions& options, const crypto::SecretBytes& master_key,
                              const Clock& clock);

}  // namespace vouch::backup
