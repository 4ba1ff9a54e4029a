#include "base/file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/encoding.h"

namespace vouch {
namespace {
std::string Errno() { return std::strerror(errno); }
}  // namespace

Status WriteFileAtomicAt(int dir_fd, const std::string& name, std::string_view data, unsigned mode, bool durable) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("'" + name + "' is not a file name", "io_error");
  }
  uint8_t rnd[8];
  if (::getrandom(rnd, sizeof(rnd), 0) != static_cast<ssize_t>(sizeof(rnd))) {
    return Unavailable("getrandom failed: " + Errno(), "io_error");
  }
  const std::string tmp = std::string(kAtomicWriteTempPrefix) + name + "-" + HexEncode(rnd);
  const int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Unavailable("cannot create '" + tmp + "': " + Errno(), "io_error");
  Status st = Status::Ok();
  if (::fchmod(fd, mode) != 0) st = Unavailable("cannot set the mode of '" + tmp + "': " + Errno(), "io_error");
  size_t off = 0;
  while (st.ok() && off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = Unavailable("cannot write '" + tmp + "': " + Errno(), "io_error");
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (st.ok() && durable && ::fsync(fd) != 0) st = Unavailable("cannot sync '" + tmp + "': " + Errno(), "io_error");
  if (::close(fd) != 0 && st.ok()) st = Unavailable("cannot close '" + tmp + "': " + Errno(), "io_error");
  if (st.ok() && ::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    st = Unavailable("cannot rename to '" + name + "': " + Errno(), "io_error");
  }
  if (!st.ok()) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  if (durable) ::fsync(dir_fd);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode, bool durable) {
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Unavailable("cannot open the directory of '" + path + "': " + Errno(), "io_error");
  Status st = WriteFileAtomicAt(dfd, p.filename().string(), data, mode, durable);
  ::close(dfd);
  if (!st.ok()) return Unavailable("cannot write '" + path + "': " + st.message(), "io_error");
  return st;
}

Status MakeDirs(const std::string& path, unsigned mode) {
  std::error_code ec;
  bool existed = std::filesystem::is_directory(path, ec);
  std::filesystem::create_directories(path, ec);
  if (ec) return Unavailable("cannot create directory '" + path + "': " + ec.message(), "io_error");
  if (!existed) ::chmod(path.c_str(), mode);
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open '" + path + "': " + Errno(), "file_not_found");
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = Errno();
      ::close(fd);
      return Unavailable("cannot read '" + path + "': " + err, "io_error");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return ResourceExhausted("'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes", "file_too_large");
    }
  }
  ::close(fd);
  return out;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

}  // namespace vouch
