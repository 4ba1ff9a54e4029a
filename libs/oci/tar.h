#pragma once

// Reading image layers (and docker-archive files) with libarchive, treating every entry as
// hostile: paths are normalised and refused when absolute or when they climb with "..", symlinks
// whose target leaves the root are refused, device nodes and sockets are refused, and sizes are
// bounded (per entry, per layer, number of entries). Truncated or corrupt streams fail with the
// decoder's message. gzip, zstd and plain tar are detected from the bytes.
//
// And writing deterministic tar streams (mtime 0, uid/gid 0, sorted by the caller) for the
// converter's new layer and for docker-archive output. Not thread-safe per object.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "oci/image.h"

namespace vouch::oci {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kFifo };
  Type type = Type::kFile;
  std::string path;         // normalised: relative, no "./", no leading or trailing '/', never ".."
  std::string link_target;  // symlink: as stored; hard link: normalised path of the target
  uint32_t mode = 0;        // permission bits (07777)
  int64_t uid = 0;
  int64_t gid = 0;
  uint64_t size = 0;        // bytes of content (kFile only)
};

// Checked against each entry's header before its content is decompressed, so a decompression
// bomb costs at most max_total_bytes of inflating (docs/convert.md, "Limits").
struct TarLimits {
  uint64_t max_total_bytes = 64ull << 30;  // sum of file sizes: counted_before + this stream
  uint64_t max_entry_bytes = 16ull << 30;
  uint64_t max_entries = 2'000'000;
  size_t max_path_bytes = 4096;
  uint64_t counted_before = 0;  // file bytes of earlier layers of the same image
  // Progress and cancellation (with a diff_id only): called about every MiB of decompressed
  // stream with the compressed bytes consumed so far; a non-ok Status stops the read with it.
  std::function<Status(uint64_t compressed_bytes)> on_progress;
};

// Reads the content of the current entry (kFile only).
class EntryData {
 public:
  virtual ~EntryData() = default;
  // Returns the number of bytes read, 0 at the end; an error for a truncated or corrupt stream.
  virtual Result<size_t> Read(std::span<uint8_t> buf) = 0;
};

// Called once per entry in stream order. Entries not read by the callback are skipped.
using TarEntryFn = std::function<Status(const TarEntry& entry, EntryData& data)>;

//
// With `diff_id`, the decompressed stream is also hashed as it is parsed (one decompression) and
// "sha256:<hex>" of all of it, the OCI diff_id, is stored there on success. Bytes after the tar
// end-of-archive marker are hashed too (they are part of the diff_id) but bounded by
// kMaxTrailingBytes, so a layer cannot hide a decompression bomb behind its end marker.
inline constexpr uint64_t kMaxTrailingBytes = 16ull << 20;
Status ReadTarFile(const std::string& path, const TarLimits& limits, const TarEntryFn& fn,
                   std::string* diff_id = nullptr);
Status ReadTarMemory(std::string_view bytes, const TarLimits& limits, const TarEntryFn& fn,
                     std::string* diff_id = nullptr);

// "./a//b/" -> "a/b"; refuses absolute paths, "..", empty names and NUL bytes. "." and "./" give "".
Result<std::string> NormalizeEntryPath(std::string_view raw);
// The path a symlink at `link_path` (normalised) pointing to `target` resolves to, lexically,
// relative to the root; refuses a target that climbs above the root. Absolute targets are taken
// relative to the image root (as a container runtime resolves them).
Result<std::string> ResolveSymlink(std::string_view link_path, std::string_view target);

// Writes a tar stream (pax restricted) compressed with `compression`.
class TarWriter {
 public:
  // Output to a file (created 0644, replaced) or, with an empty path, to memory (see data()).
  static Result<std::unique_ptr<TarWriter>> Create(const std::string& path, Compression compression);
  ~TarWriter();
  Status AddDirectory(std::string_view path, uint32_t mode);
  Status AddFile(std::string_view path, uint32_t mode, std::string_view content);
  // Streams a file from disk.
  Status AddFileFromDisk(std::string_view path, uint32_t mode, const std::string& source);
  Status Close();
  // The bytes written (memory mode, after Close()).
  const std::string& data() const { return memory_; }

 private:
  TarWriter() = default;
  void* archive_ = nullptr;  // struct archive*, owned
  std::string memory_;
  bool closed_ = false;
  friend long TarWriterAppend(void*, void*, const void*, size_t);  // NOLINT
};

}  // namespace vouch::oci
