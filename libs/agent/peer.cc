#include "agent/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::agent {
namespace {

constexpr size_t kMaxCached = 256;
constexpr uint64_t kMaxExeBytes = uint64_t{1} << 30;

int PidfdOpen(int64_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// The pid a pidfd refers to now (/proc/self/fdinfo: "Pid:\tN"; -1 once the process was reaped).
int64_t PidOfPidfd(int pidfd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(pidfd));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pid:", 0) == 0) {
      try {
        return std::stoll(line.substr(4));
      } catch (...) {
        return -1;
      }
    }
  }
  return -1;
}

Result<Sha256> HashFd(int fd) {
  crypto::Sha256Hasher h;
  uint8_t buf[65536];
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(std::string("reading an executable: ") + std::strerror(errno));
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > kMaxExeBytes) return FailedPrecondition("executable larger than 1 GiB");
    h.Update(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  }
  return h.Finish();
}

}  // namespace

Result<Sha256> Sha256OfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  auto h = HashFd(fd);
  ::close(fd);
  return h;
}

std::vector<Sha256> DefaultRteHashes() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "vouch-rte";
  auto h = Sha256OfFile(path);
  if (!h.ok()) return {};
  return {*h};
}

Result<Sha256> ParseSha256Hex(std::string_view hex) {
  auto raw = HexDecode(hex);
  if (!raw.ok() || raw->size() != 32) {
    return InvalidArgument(
        "a SHA-256 must be 64 hex digits, got '" + std::string(hex.substr(0, 80)) + "'",
        "invalid_sha256");
  }
  Sha256 out;
  std::copy(raw->begin(), raw->end(), out.begin());
  return out;
}

Result<Sha256> RteRecognizer::HashExe(int64_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/exe";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return PermissionDenied(
        "cannot open the calling process's executable (" + path + ": " + std::strerror(errno) + ")",
        std::string(kPeerExited));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return PermissionDenied("cannot stat the calling process's executable",
                            std::string(kPeerExited));
  }
  auto key =
      std::make_tuple(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<int64_t>(st.st_size),
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                      static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ::close(fd);
      return it->second;
    }
  }
  auto h = HashFd(fd);
  ::close(fd);
  if (!h.ok()) return h.status();
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_[key] = *h;
  return *h;
}

Status RteRecognizer::Check(const PeerProcess& peer) {
  if (known_.empty()) {
    return PermissionDenied(
        "this agent knows no vouch-rte executable (--rte-sha256, or a vouch-rte next to "
        "vouch-agent)",
        std::string(kRteUnknown));
  }
  if (peer.pid <= 0) {
    return PermissionDenied(
        "the calling process is not known (no peer credentials: a TCP listener, or a process "
        "in a pid namespace the agent cannot see)",
        std::string(kPeerUnknown));
  }
  int own_pidfd = -1;
  int pidfd = peer.pidfd;
  if (pidfd < 0) {
    // Kernels without SO_PEERPIDFD: a pidfd made now (the pid may have changed hands between
    // connect() and here; docs/agent.md).
    own_pidfd = PidfdOpen(peer.pid);
    if (own_pidfd < 0) {
      return PermissionDenied("the calling process " + std::to_string(peer.pid) + " is gone",
                              std::string(kPeerExited));
    }
    pidfd = own_pidfd;
  }
  auto finish = [&](Status st) {
    if (own_pidfd >= 0) ::close(own_pidfd);
    return st;
  };
  if (PidOfPidfd(pidfd) != peer.pid) {
    return finish(PermissionDenied("the calling process " + std::to_string(peer.pid) + " exited",
                                   std::string(kPeerExited)));
  }
  auto hash = HashExe(peer.pid);
  // Still the same process: its pid was never free, so the executable hashed was its own.
  if (PidOfPidfd(pidfd) != peer.pid) {
    return finish(PermissionDenied(
        "the calling process " + std::to_string(peer.pid) + " exited during the check",
        std::string(kPeerExited)));
  }
  if (!hash.ok()) return finish(hash.status());
  for (const Sha256& k : known_) {
    if (k == *hash) return finish(Status::Ok());
  }
  return finish(PermissionDenied("the calling process (pid " + std::to_string(peer.pid) +
                                     ", executable sha256 " + HexEncode(*hash) +
                                     ") is not a vouch-rte this agent knows",
                                 std::string(kPeerNotVouchRte)));
}

}  // namespace vouch::agent
