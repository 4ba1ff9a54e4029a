#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch {

// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename, fsync of
// the directory) with permission bits `mode`. A crash leaves either the old or the new file.
// With durable = false the two fsyncs are skipped: readers still see the old or the new content,
// never a mix, but a crash of the machine may lose the change (for state that is made again
// anyway, such as a runtime's freshly issued credentials).
Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode = 0644, bool durable = true);
// The same inside the directory open as `dir_fd` (the caller keeps it open): `name` is a plain
// file name, the temporary file is `kAtomicWriteTempPrefix` + name + "-" + 16 random hex digits,
// created exclusively and without following symbolic links. A crash may leave such a temporary
// file behind; owners of a directory remove names with that prefix when they start.
Status WriteFileAtomicAt(int dir_fd, const std::string& name, std::string_view data, unsigned mode = 0644,
                         bool durable = true);
inline constexpr std::string_view kAtomicWriteTempPrefix = ".vouch-tmp-";
// Creates a directory (and parents) with `mode` if missing.
Status MakeDirs(const std::string& path, unsigned mode = 0755);
// Reads a whole file up to `max_bytes`.
Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes = 64 << 20);
bool FileExists(const std::string& path);

}  // namespace vouch
