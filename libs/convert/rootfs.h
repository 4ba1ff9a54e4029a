#pragma once

// RootFs: the file tree an overlay mount of an image's layers would show, computed from the layer
// tar streams without unpacking anything: later layers replace earlier entries, whiteouts
// (".wh.<name>") delete a lower entry and everything below it, opaque markers (".wh..wh..opq")
// hide a directory's lower contents, hard links take their target's content (OCI image-spec
// layer.md "Whiteouts", "Hardlinks"). Regular files are hashed (SHA-256) as they stream by.
//
// On top of the tar checks of oci/tar.h, an entry whose parent path is a symlink in the merged
// tree is refused (writing through it could land outside the directory the path names).
// Not thread-safe.

#include <cstdint>
#include <map>
#include <string>

#include "base/result.h"
#include "crypto/digest.h"
#include "oci/tar.h"

namespace vouch::convert {

struct FsNode {
  oci::TarEntry::Type type = oci::TarEntry::Type::kFile;  // never kHardlink (resolved)
  uint32_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  uint64_t size = 0;
  crypto::Sha256Digest sha256{};  // kFile
  std::string link_target;        // kSymlink
  size_t layer = 0;
};

class RootFs {
 public:
  // Applies one layer (a tar stream, plain/gzip/zstd) on top of what is there. With `diff_id`, also
  // stores the SHA-256 of the decompressed stream there ("sha256:<hex>", oci::ReadTarFile).
  Status ApplyLayerFile(const std::string& path, const oci::TarLimits& limits, std::string* diff_id = nullptr);
  Status ApplyLayerMemory(std::string_view bytes, const oci::TarLimits& limits, std::string* diff_id = nullptr);

  // Paths are normalised and relative ("bin/sh"); the root itself is not listed.
  const std::map<std::string, FsNode>& nodes() const { return nodes_; }
  uint64_t content_bytes() const { return content_bytes_; }

 private:
  Status Apply(const oci::TarEntry& entry, oci::EntryData& data);
  void RemoveTree(const std::string& path, bool include_self);
  std::map<std::string, FsNode> nodes_;
  size_t layer_ = 0;
  uint64_t content_bytes_ = 0;
};

// Resolves a program name (argv[0]) the way execvp in the container would, but once, against
// `fs`: a name holding '/' is taken as it is (relative to `workdir`), otherwise each absolute
// directory of `path_env` ("PATH" value; empty: the Docker default) is tried in order and the
// first executable regular file wins. Symlinks are followed inside the tree (absolute targets
// from the tree's root, at most 40); one whose resolution leaves the root is refused
// ("entrypoint_escapes_root"). Returns the absolute path of the regular file; not found:
// "entrypoint_not_found".
inline constexpr std::string_view kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
Result<std::string> ResolveProgram(const RootFs& fs, std::string_view name, std::string_view path_env,
                                   std::string_view workdir);

}  // namespace vouch::convert
