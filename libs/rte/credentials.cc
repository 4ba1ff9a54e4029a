#include "rte/credentials.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/encoding.h"
#include "base/file.h"

namespace vouch::rte {
namespace {

constexpr std::string_view kTempPrefix = kAtomicWriteTempPrefix;  // base/file.h

// The refused path travels in the status message: "credentials path PATH: what; ...".
Status Refuse(const std::string& path, const std::string& what) {
  return FailedPrecondition("credentials path " + path + ": " + what + "; refusing to write the key there",
                            std::string(kCredentialsPathUnsafe));
}

std::string Basename(const std::string& p) { return p.substr(p.rfind('/') + 1); }

const char* Kind(mode_t m) {
  if (S_ISLNK(m)) return "a symlink";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISREG(m)) return "a file";
  return "a special file";
}

// Opens `dir` (absolute) below `root_fd` one component at a time, never following a symlink;
// missing components are made (the last one 0700).
Result<int> OpenDir(int root_fd, const std::string& dir) {
  int fd = ::dup(root_fd);
  if (fd < 0) return Internal(std::string("dup: ") + std::strerror(errno));
  std::string so_far;
  size_t i = 1;
  while (i <= dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string::npos) j = dir.size();
    const std::string name = dir.substr(i, j - i);
    i = j + 1;
    if (name.empty()) continue;
    so_far += "/" + name;
    const bool last = i > dir.size();
    int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(fd, name.c_str(), last ? 0700 : 0755) != 0 && errno != EEXIST) {
        int err = errno;
        ::close(fd);
        return Refuse(so_far, std::string("cannot be created (") + std::strerror(err) + ")");
      }
      next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int err = errno;
      struct stat st {};
      std::string what = std::string("cannot be opened (") + std::strerror(err) + ")";
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        what = std::string("is ") + Kind(st.st_mode) + ", not a directory";
      }
      ::close(fd);
      return Refuse(so_far, what);
    }
    ::close(fd);
    fd = next;
  }
  return fd;
}

// Leaves `fd` (the credentials directory) empty and 0700, or refuses.
Status MakeFresh(int fd, const std::string& dir, const std::vector<std::string>& names) {
  struct stat self {};
  if (::fstat(fd, &self) != 0) return Refuse(dir, std::string("cannot stat (") + std::strerror(errno) + ")");
  if (self.st_uid != ::geteuid()) {
    return Refuse(dir, "is owned by uid " + std::to_string(self.st_uid) + ", not by this process");
  }
  int dfd = ::dup(fd);
  DIR* d = dfd < 0 ? nullptr : ::fdopendir(dfd);
  if (d == nullptr) {
    if (dfd >= 0) ::close(dfd);
    return Refuse(dir, "cannot be read");
  }
  std::vector<std::string> remove;
  Status result = Status::Ok();
  while (struct dirent* de = ::readdir(d)) {
    const std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    const bool ours = std::find(names.begin(), names.end(), name) != names.end() || name.rfind(kTempPrefix, 0) == 0;
    if (!ours || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
      result = Refuse(dir + "/" + name, std::string("is ") + Kind(st.st_mode) +
                                            " that vouch-rte did not write (a foreign entry in the credentials "
                                            "directory)");
      break;
    }
    remove.push_back(name);
  }
  ::closedir(d);
  VOUCH_RETURN_IF_ERROR(result);
  for (const std::string& name : remove) {
    if (::unlinkat(fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return Refuse(dir + "/" + name, std::string("cannot be removed (") + std::strerror(errno) + ")");
    }
  }
  if (::fchmod(fd, 0700) != 0) return Refuse(dir, std::string("cannot chmod 0700 (") + std::strerror(errno) + ")");
  return Status::Ok();
}

}  // namespace

CredentialStore::~CredentialStore() {
  for (auto& [dir, fd] : dirs_) ::close(fd);
}

Result<std::unique_ptr<CredentialStore>> CredentialStore::Open(const manifest::CertificateRequest& request,
                                                               const std::string& root, std::string* refused_path) {
  auto result = OpenImpl(request, root);
  if (!result.ok() && refused_path != nullptr) {
    // "credentials path PATH: what"
    const std::string& msg = result.status().message();
    const size_t start = msg.find(' ', msg.find(' ') + 1) + 1;
    *refused_path = msg.substr(start, msg.find(": ", start) - start);
  }
  return result;
}

Result<std::unique_ptr<CredentialStore>> CredentialStore::OpenImpl(const manifest::CertificateRequest& request,
                                                                   const std::string& root) {
  std::unique_ptr<CredentialStore> store(new CredentialStore());
  int root_fd = ::open(root.empty() ? "/" : root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return Refuse(root, std::string("cannot open the root (") + std::strerror(errno) + ")");
  std::map<std::string, std::vector<std::string>> names;
  for (const std::string* p : {&request.key_path, &request.cert_path, &request.ca_path}) {
    names[manifest::ParentDir(*p)].push_back(Basename(*p));
  }
  for (const auto& [dir, files] : names) {
    auto fd = OpenDir(root_fd, dir);
    if (!fd.ok()) {
      ::close(root_fd);
      return fd.status();
    }
    store->dirs_[dir] = *fd;
    Status fresh = MakeFresh(*fd, dir, files);
    if (!fresh.ok()) {
      ::close(root_fd);
      return fresh;
    }
  }
  ::close(root_fd);
  return store;
}

Status CredentialStore::Write(const std::string& path, std::string_view data, unsigned mode) {
  auto it = dirs_.find(manifest::ParentDir(path));
  if (it == dirs_.end()) return InvalidArgument(path + " is not a credentials path of the manifest");
  const int dir = it->second;
  const std::string name = Basename(path);
  // Not fsynced: made again at every start (runtime.h ReplaceFile).
  const Status st = WriteFileAtomicAt(dir, name, data, mode, /*durable=*/false);
  if (!st.ok()) return Internal("cannot write " + path + " (" + st.message() + ")", "write_failed");
  return Status::Ok();
}

}  // namespace vouch::rte
