#include "oci/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/encoding.h"
#include "base/file.h"
#include "oci/image.h"
#include "oci/reasons.h"

namespace vouch::oci {
namespace {

Status Errno(const std::string& what) {
  // A full scratch file system is the user's to fix (a limit or more space), not an I/O fault.
  if (errno == ENOSPC || errno == EDQUOT) {
    return ResourceExhausted(what + ": " + std::strerror(errno) + " (scratch space is full)",
                             std::string(kScratchExhausted));
  }
  return Unavailable(what + ": " + std::strerror(errno), "io_error");
}

}  // namespace

Result<std::pair<std::string, uint64_t>> HashFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("opening " + path);
  crypto::Sha256Hasher h;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Errno("reading " + path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    h.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return std::make_pair("sha256:" + HexEncode(h.Finish()), total);
}

Result<std::unique_ptr<BlobStore>> BlobStore::Create(std::string dir) {
  VOUCH_RETURN_IF_ERROR(MakeDirs(dir + "/sha256", 0700));
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(dir)));
}

BlobStore::Writer::Writer(BlobStore* store, std::string tmp_path, int fd, std::string expected_digest,
                          uint64_t expected_size, uint64_t max_size)
    : store_(store),
      tmp_path_(std::move(tmp_path)),
      fd_(fd),
      expected_digest_(std::move(expected_digest)),
      expected_size_(expected_size),
      max_size_(max_size) {}

BlobStore::Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!done_) ::unlink(tmp_path_.c_str());
}

Status BlobStore::Writer::Write(std::span<const uint8_t> data) {
  if (done_ || fd_ < 0) return FailedPrecondition("blob writer already finished");
  const uint64_t limit = expected_size_ != kUnknownSize ? expected_size_ : max_size_;
  if (data.size() > limit - written_) {
    return DataLoss("blob " + (expected_digest_.empty() ? std::string("being written") : expected_digest_) +
                        " is larger than its announced size " + std::to_string(limit),
                    "blob_too_large");
  }
  hasher_.Update(data);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("writing " + tmp_path_);
    }
    off += static_cast<size_t>(n);
  }
  written_ += data.size();
  return Status::Ok();
}

Result<std::string> BlobStore::Writer::Commit() {
  if (done_) return FailedPrecondition("blob writer already finished");
  const std::string digest = "sha256:" + HexEncode(hasher_.Finish());
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Errno("closing " + tmp_path_);
  }
  fd_ = -1;
  if (expected_size_ != kUnknownSize && written_ != expected_size_) {
    return DataLoss("blob " + expected_digest_ + " is " + std::to_string(written_) + " bytes, expected " +
                        std::to_string(expected_size_) + " (truncated?)",
                    "digest_mismatch");
  }
  if (!expected_digest_.empty() && digest != expected_digest_) {
    return DataLoss("blob content hashes to " + digest + ", expected " + expected_digest_, "digest_mismatch");
  }
  const std::string final_path = store_->dir_ + "/sha256/" + DigestHex(digest);
  if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) return Errno("renaming " + tmp_path_);
  done_ = true;
  store_->paths_[digest] = final_path;
  return digest;
}

Result<std::unique_ptr<BlobStore::Writer>> BlobStore::NewWriter(std::string expected_digest, uint64_t expected_size,
                                                                uint64_t max_size) {
  if (!expected_digest.empty()) VOUCH_RETURN_IF_ERROR(ValidateDigest(expected_digest));
  std::string tmp = dir_ + "/tmp-" + std::to_string(::getpid()) + "-" + std::to_string(tmp_counter_++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("creating " + tmp);
  return std::unique_ptr<Writer>(new Writer(this, std::move(tmp), fd, std::move(expected_digest), expected_size, max_size));
}

Result<std::string> BlobStore::PutBytes(std::string_view data, std::string_view expected_digest) {
  VOUCH_ASSIGN_OR_RETURN(auto w, NewWriter(std::string(expected_digest), kUnknownSize));
  VOUCH_RETURN_IF_ERROR(w->Write(AsBytes(data)));
  return w->Commit();
}

Status BlobStore::AddExternal(const std::string& path, std::string_view expected_digest, uint64_t expected_size) {
  VOUCH_RETURN_IF_ERROR(ValidateDigest(expected_digest));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno("blob " + std::string(expected_digest));
  if (!S_ISREG(st.st_mode)) return DataLoss("blob " + path + " is not a regular file", "invalid_image");
  if (expected_size != kUnknownSize && static_cast<uint64_t>(st.st_size) != expected_size) {
    return DataLoss("blob " + std::string(expected_digest) + " is " + std::to_string(st.st_size) +
                        " bytes, expected " + std::to_string(expected_size),
                    "digest_mismatch");
  }
  VOUCH_ASSIGN_OR_RETURN(auto hashed, HashFile(path));
  if (hashed.first != expected_digest) {
    return DataLoss("blob " + path + " hashes to " + hashed.first + ", expected " + std::string(expected_digest),
                    "digest_mismatch");
  }
  paths_[std::string(expected_digest)] = path;
  return Status::Ok();
}

std::string BlobStore::PathOf(std::string_view digest) const {
  auto it = paths_.find(std::string(digest));
  return it == paths_.end() ? std::string() : it->second;
}

Result<uint64_t> BlobStore::SizeOf(std::string_view digest) const {
  std::string p = PathOf(digest);
  if (p.empty()) return NotFound("blob " + std::string(digest) + " is not in the store");
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return Errno("stat " + p);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> BlobStore::ReadSmall(std::string_view digest, size_t max_bytes) const {
  std::string p = PathOf(digest);
  if (p.empty()) return NotFound("blob " + std::string(digest) + " is not in the store");
  return ReadWholeFile(p, max_bytes);
}

}  // namespace vouch::oci
