#include "rte/verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"

namespace vouch::rte {
namespace {

std::string Join(const std::string& root, std::string_view abs) {
  if (root.empty() || root == "/") return std::string(abs);
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + std::string(abs);
}

Status Violation(const std::string& path, const std::string& what) {
  return FailedPrecondition("integrity check failed: " + path + ": " + what, "integrity_violation");
}

}  // namespace

Result<LoadedManifest> LoadManifest(const std::string& root) {
  LoadedManifest out;
  VOUCH_ASSIGN_OR_RETURN(out.canonical, ReadWholeFile(Join(root, manifest::kManifestPath), manifest::kMaxManifestBytes));
  VOUCH_ASSIGN_OR_RETURN(std::string sig, ReadWholeFile(Join(root, manifest::kSignaturePath), 4096));
  VOUCH_ASSIGN_OR_RETURN(std::string signer_pem, ReadWholeFile(Join(root, manifest::kSignerPath), 16384));
  auto signer = crypto::PublicKeyFromPem(signer_pem);
  if (!signer.ok()) return signer.status().WithContext("manifest signer key");
  VOUCH_RETURN_IF_ERROR(manifest::VerifySignature(signer->get(), out.canonical, AsBytes(sig)));
  auto parsed = manifest::Parse(out.canonical);
  if (!parsed.ok()) return parsed.status();
  out.manifest = std::move(*parsed);
  out.mrenclave = HexEncode(manifest::Mrenclave(out.canonical));
  VOUCH_ASSIGN_OR_RETURN(auto mrsigner, manifest::Mrsigner(signer->get()));
  out.mrsigner = HexEncode(mrsigner);
  return out;
}

namespace {

// One manifest entry against the file system; `buf` is the caller's scratch buffer.
Status VerifyOne(const manifest::FileEntry& f, const std::string& root, std::vector<uint8_t>& buf) {
  const std::string path = Join(root, f.path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Violation(f.path, std::string("missing (") + std::strerror(errno) + ")");
  if (f.type == manifest::FileEntry::Type::kSymlink) {
    if (!S_ISLNK(st.st_mode)) return Violation(f.path, "expected a symlink");
    std::vector<char> target(static_cast<size_t>(st.st_size) + 2);
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0 || std::string(target.data(), static_cast<size_t>(n)) != f.target) {
      return Violation(f.path, "symlink target differs from the manifest (" + f.target + ")");
    }
    return Status::Ok();
  }
  if (!S_ISREG(st.st_mode)) return Violation(f.path, "expected a regular file");
  if (static_cast<uint64_t>(st.st_size) != f.size) {
    return Violation(f.path, "size " + std::to_string(st.st_size) + " differs from the manifest's " +
                                 std::to_string(f.size));
  }
  if ((st.st_mode & 07777) != f.mode) return Violation(f.path, "permission bits differ from the manifest");
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Violation(f.path, std::string("cannot open (") + std::strerror(errno) + ")");
  crypto::Sha256Hasher h;
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Violation(f.path, std::string("read error (") + std::strerror(errno) + ")");
    }
    if (n == 0) break;
    h.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (total != f.size || HexEncode(h.Finish()) != f.sha256) {
    return Violation(f.path, "content differs from the manifest (expected sha256 " + f.sha256 + ")");
  }
  return Status::Ok();
}

}  // namespace

Status VerifyFiles(const manifest::EnclaveManifest& m, const std::string& root) {
  // Hashing is most of a container's start-up cost beyond the app's own, so the files are shared
  // out over the cores, largest first. Every file is checked; the error reported is the first
  // failing one in manifest order, whatever the threads' timing.
  const size_t n = m.files.size();
  std::vector<Status> results(n);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return m.files[a].size > m.files[b].size; });
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<uint8_t> buf(1 << 20);
    for (size_t k = next.fetch_add(1); k < n; k = next.fetch_add(1)) {
      results[order[k]] = VerifyOne(m.files[order[k]], root, buf);
    }
  };
  uint64_t bytes = 0;
  for (const manifest::FileEntry& f : m.files) bytes += f.size;
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  // Below ~1 MB a second thread costs more than it saves.
  const size_t threads = bytes < (1u << 20) ? 1 : std::min<size_t>({cores, 8, n});
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  for (Status& st : results) {
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace vouch::rte
