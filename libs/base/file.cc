#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vouch {
namespace {
std::string Errno() { return std::strerror(errno); }
}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode, bool durable) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Unavailable("cannot create '" + tmp + "': " + Errno(), "io_error");
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = Errno();
      ::close(fd);
      ::unlink(tmp.c_str());
      return Unavailable("cannot write '" + tmp + "': " + err, "io_error");
    }
    off += static_cast<size_t>(n);
  }
  if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Unavailable("cannot sync '" + tmp + "': " + Errno(), "io_error");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = Errno();
    ::unlink(tmp.c_str());
    return Unavailable("cannot rename to '" + path + "': " + err, "io_error");
  }
  if (!durable) return Status::Ok();
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
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
