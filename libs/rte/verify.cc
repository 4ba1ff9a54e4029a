#include "rte/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
  return FailedPrecondition("integrity check failed: " + path + ": " + what, std::string(kIntegrityViolation));
}

// The path named by a Violation / Unlisted message ("...: PATH: what").
std::string PathOf(const Status& st) {
  const std::string& msg = st.message();
  size_t start = msg.find(": ");
  if (start == std::string::npos) return {};
  start += 2;
  size_t end = msg.find(": ", start);
  return msg.substr(start, end == std::string::npos ? std::string::npos : end - start);
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
  if (f.type == manifest::FileEntry::Type::kDir) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : Violation(f.path, "expected a directory");
  }
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

namespace {

const char* TypeName(unsigned char t) {
  switch (t) {
    case DT_REG: return "file";
    case DT_DIR: return "directory";
    case DT_LNK: return "symlink";
    case DT_CHR: return "character device";
    case DT_BLK: return "block device";
    case DT_FIFO: return "fifo";
    case DT_SOCK: return "socket";
    default: return "entry of unknown type";
  }
}

unsigned char TypeOf(int dirfd, const char* name, unsigned char d_type) {
  if (d_type != DT_UNKNOWN) return d_type;
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return DT_UNKNOWN;
  return static_cast<unsigned char>(IFTODT(st.st_mode));
}

// Whether dirfd/name is the root of a mount: statx's STATX_ATTR_MOUNT_ROOT (Linux 5.8), else a
// device different from the directory's.
bool IsMountPoint(int dirfd, const char* name) {
  struct statx child {}, parent {};
  if (::statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &child) != 0) return false;
  if (child.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) return (child.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  if (::statx(dirfd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &parent) != 0) return false;
  return child.stx_dev_major != parent.stx_dev_major || child.stx_dev_minor != parent.stx_dev_minor;
}

class Walker {
 public:
  Walker(const manifest::EnclaveManifest& m, const std::string& root)
      : m_(m), root_(root), mounts_(RuntimeMountPaths(m)), cred_dirs_(manifest::CredentialDirs(m)) {
    runtime_paths_ = cred_dirs_;
    runtime_paths_.push_back(m.agent_socket);
  }

  Status Run() {
    for (const std::string& ro : m_.ro_dirs) {
      if (ro.empty() || ro.front() != '/') continue;
      if (ro == "/") {
        int fd = ::open(Join(root_, "/").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return Violation("/", std::string("cannot open (") + std::strerror(errno) + ")");
        VOUCH_RETURN_IF_ERROR(WalkDir(fd, "/"));
        continue;
      }
      if (!manifest::IsProtected(ro, m_.ro_dirs, m_.rw_dirs)) continue;
      const std::string parent = manifest::ParentDir(ro);
      if (manifest::IsProtected(parent, m_.ro_dirs, m_.rw_dirs)) continue;  // walked from further up
      int pfd = ::open(Join(root_, parent).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (pfd < 0) continue;  // nothing there; listed entries below are reported missing
      const std::string name = ro.substr(parent == "/" ? 1 : parent.size() + 1);
      Status st = Entry(pfd, name.c_str(), ro, DT_UNKNOWN);
      ::close(pfd);
      if (st.code() == StatusCode::kNotFound) continue;
      VOUCH_RETURN_IF_ERROR(st);
    }
    return Status::Ok();
  }

 private:
  static Status Unlisted(const std::string& path, const char* type) {
    return FailedPrecondition(std::string("unlisted entry: ") + path + ": a " + type +
                                  " the manifest does not list, in a protected directory",
                              std::string(kUnlistedEntry));
  }

  bool ListedBelow(const std::string& path) const {
    const std::string prefix = path + "/";
    auto it = std::lower_bound(m_.files.begin(), m_.files.end(), prefix,
                               [](const manifest::FileEntry& e, const std::string& p) { return e.path < p; });
    return it != m_.files.end() && it->path.compare(0, prefix.size(), prefix) == 0;
  }

  // Takes ownership of `fd`.
  Status WalkDir(int fd, const std::string& abs) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return Violation(abs, std::string("cannot read the directory (") + std::strerror(errno) + ")");
    }
    struct Closer {
      DIR* d;
      ~Closer() { ::closedir(d); }
    } closer{d};
    while (true) {
      errno = 0;
      struct dirent* de = ::readdir(d);
      if (de == nullptr) {
        if (errno != 0) return Violation(abs, std::string("cannot read the directory (") + std::strerror(errno) + ")");
        return Status::Ok();
      }
      if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
      const std::string child = (abs == "/" ? std::string() : abs) + "/" + de->d_name;
      Status st = Entry(::dirfd(d), de->d_name, child, de->d_type);
      if (st.code() == StatusCode::kNotFound) continue;  // gone meanwhile
      VOUCH_RETURN_IF_ERROR(st);
    }
  }

  Status Entry(int dirfd, const char* name, const std::string& abs, unsigned char d_type) {
    if (!manifest::IsProtected(abs, m_.ro_dirs, m_.rw_dirs)) return Status::Ok();
    const unsigned char type = TypeOf(dirfd, name, d_type);
    if (type == DT_UNKNOWN) return NotFound(abs);
    const bool mount_name = std::find(mounts_.begin(), mounts_.end(), abs) != mounts_.end();
    if (mount_name && !ListedBelow(abs) && IsMountPoint(dirfd, name)) return Status::Ok();
    // The manifest, its signature and the signer's key cannot list themselves; LoadManifest
    // checked them (signature over the manifest's exact bytes, the key is mrsigner).
    if (type == DT_REG && (abs == manifest::kManifestPath || abs == manifest::kSignaturePath ||
                           abs == manifest::kSignerPath)) {
      return Status::Ok();
    }
    const manifest::FileEntry* e = manifest::FindEntry(m_, abs);
    if (e != nullptr) {
      if (e->type != manifest::FileEntry::Type::kDir) return Status::Ok();  // type and content: VerifyOne
      if (type != DT_DIR) return Violation(abs, "expected a directory, found a " + std::string(TypeName(type)));
      return Descend(dirfd, name, abs);
    }
    // The credentials directories: CredentialStore refuses anything in them it did not write.
    if (std::find(cred_dirs_.begin(), cred_dirs_.end(), abs) != cred_dirs_.end()) return Status::Ok();
    if (type == DT_DIR) {
      for (const std::string& p : runtime_paths_) {
        if (p.size() > abs.size() && manifest::PathUnder(p, abs)) return Descend(dirfd, name, abs);
      }
    }
    return Unlisted(abs, TypeName(type));
  }

  Status Descend(int dirfd, const char* name, const std::string& abs) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Violation(abs, std::string("cannot open the directory (") + std::strerror(errno) + ")");
    return WalkDir(fd, abs);
  }

  const manifest::EnclaveManifest& m_;
  const std::string root_;
  const std::vector<std::string> mounts_;
  const std::vector<std::string> cred_dirs_;
  std::vector<std::string> runtime_paths_;
};

}  // namespace

std::vector<std::string> RuntimeMountPaths(const manifest::EnclaveManifest& m) {
  std::vector<std::string> out(std::begin(kRuntimeMounts), std::end(kRuntimeMounts));
  if (!m.agent_socket.empty() && m.agent_socket.front() == '/') {
    out.push_back(m.agent_socket);
    if (manifest::ParentDir(m.agent_socket) != "/") out.push_back(manifest::ParentDir(m.agent_socket));
  }
  return out;
}

Status CheckNoUnlistedEntries(const manifest::EnclaveManifest& m, const std::string& root, std::string* bad_path) {
  Status st = Walker(m, root).Run();
  if (!st.ok() && bad_path != nullptr) *bad_path = PathOf(st);
  return st;
}

Status VerifyFiles(const manifest::EnclaveManifest& m, const std::string& root, std::string* bad_path) {
  // Hashing is most of a container's start-up cost beyond the app's own, so the files are shared
  // out over the cores, largest first. Every file is checked; the error reported is the first
  // failing one in manifest order, whatever the threads' timing. The unlisted-entry walk
  // (readdir, no reading of contents) runs on this thread while the helpers hash.
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
  Status unlisted = CheckNoUnlistedEntries(m, root, bad_path);
  work();
  for (std::thread& t : helpers) t.join();
  if (!unlisted.ok()) return unlisted;
  for (Status& st : results) {
    if (!st.ok()) {
      if (bad_path != nullptr) *bad_path = PathOf(st);
      return st;
    }
  }
  return Status::Ok();
}

}  // namespace vouch::rte
