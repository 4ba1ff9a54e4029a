#pragma once

// The vouch backup archive (docs/operations.md, "Archive format"): one file, hand-parsed with a
// bounds-checked cursor, every byte covered by a SHA-256.
//
//   offset  size  field
//   0       8     magic "VOUCHBK1"
//   8       4     format version, u32 little-endian (1)
//   12      4     manifest length M, u32 little-endian (1 <= M <= kMaxManifestBytes)
//   16      M     manifest, UTF-8 JSON (below)
//   16+M    ...   file contents, concatenated in manifest order (sizes from the manifest)
//   end-32  32    SHA-256 of every byte before it
//
// Manifest: {"format": 1, "vouch_version": "0.1.0", "schema_version": N, "created_at": RFC 3339,
//            "store": "sqlite", "files": [{"path", "size", "sha256" (hex), "mode"}...]}
// Paths are relative, '/'-separated, components of [A-Za-z0-9._-] other than "." and "..";
// a path whose last component starts with "master.key" is refused: the master key is never
// archived. Parsing checks, in order: size, magic, version, archive checksum, manifest, that the
// contents add up to exactly the bytes present, each file's checksum.
//
// Pure functions over memory; thread-safe.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::backup {

inline constexpr std::string_view kMagic = "VOUCHBK1";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kTrailerBytes = 32;
inline constexpr size_t kMaxManifestBytes = 4 << 20;
inline constexpr size_t kMaxFiles = 100000;

// Reason codes of this library's refusals.
inline constexpr std::string_view kArchiveCorrupt = "backup_archive_corrupt";
inline constexpr std::string_view kSchemaTooNew = "backup_schema_too_new";
inline constexpr std::string_view kDataDirNotEmpty = "data_dir_not_empty";
inline constexpr std::string_view kMasterKeyMismatch = "master_key_mismatch";
// A backup asked for while DATA/master.key.next shows an interrupted master-key rotation.
inline constexpr std::string_view kRotationInProgress = "rotation_in_progress";
inline constexpr std::string_view kUnsupportedStore = "backup_unsupported_store";
inline constexpr std::string_view kInvalidMasterKeyFile = "invalid_master_key_file";
inline constexpr std::string_view kStoreToolFailed = "backup_store_tool_failed";  // pg_dump/pg_restore
inline constexpr std::string_view kStoreNotEmpty = "store_not_empty";
inline constexpr std::string_view kInvalidConfig = "invalid_config";  // as api::kInvalidConfig

struct FileEntry {
  std::string path;
  uint32_t mode = 0600;  // permission bits (restored as mode & 0644)
  std::string data;
};

struct ManifestFile {
  std::string path;
  uint64_t size = 0;
  std::string sha256;  // lower-case hex
  uint32_t mode = 0600;
};

struct Manifest {
  uint32_t format = kFormatVersion;
  std::string vouch_version;
  int64_t schema_version = 0;
  std::string created_at;
  std::string store;  // "sqlite"
  std::vector<ManifestFile> files;
};

struct Archive {
  Manifest manifest;
  // Views into the parsed buffer, in manifest order; valid while that buffer lives.
  std::vector<std::span<const uint8_t>> contents;
};

// True when `path` is an acceptable archive member name (see above).
bool IsValidMemberPath(std::string_view path);

// Builds an archive: fills in the manifest's files (size, SHA-256, mode) from `files`, which
// must have valid, distinct paths (InvalidArgument otherwise).
Result<std::string> EncodeArchive(const Manifest& header, const std::vector<FileEntry>& files);

// Parses and checks an archive (every checksum). DataLoss with reason kArchiveCorrupt on any
// defect, naming what was expected and what was seen.
Result<Archive> ParseArchive(std::span<const uint8_t> data);

}  // namespace vouch::backup
