#include "rte/verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

Status VerifyFiles(const manifest::EnclaveManifest& m, const std::string& root) {
  std::vector<uint8_t> buf(1 << 20);
  for (const manifest::FileEntry& f : m.files) {
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
      continue;
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
  }
  return Status::Ok();
}

}  // namespace vouch::rte
