#pragma once

// BlobStore: content-addressed blobs on local disk for one conversion. Every blob that enters the
// store has had its SHA-256 computed over the bytes actually stored and compared with the digest
// (and size) it was announced with, so a blob found here is always the one its digest names.
//
// Blobs live in `<dir>/sha256/<hex>`; a blob that is already a verified file elsewhere (an OCI
// layout's blobs/ directory) can be registered in place instead of copied. Not thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/digest.h"

namespace vouch::oci {

inline constexpr uint64_t kUnknownSize = UINT64_MAX;

class BlobStore {
 public:
  // Creates `dir` (mode 0700) if needed.
  static Result<std::unique_ptr<BlobStore>> Create(std::string dir);
  ~BlobStore() = default;

  // Streams one blob into the store. Write() fails once more than `max_size` (or the expected
  // size) bytes arrive; Commit() fails with kDataLoss ("digest_mismatch") when the digest or size
  // differs from the expected one. An uncommitted writer removes its temporary file.
  class Writer {
   public:
    ~Writer();
    Status Write(std::span<const uint8_t> data);
    // The digest of what was written ("sha256:...").
    Result<std::string> Commit();
    uint64_t written() const { return written_; }

   private:
    friend class BlobStore;
    Writer(BlobStore* store, std::string tmp_path, int fd, std::string expected_digest, uint64_t expected_size,
           uint64_t max_size);
    BlobStore* store_;
    std::string tmp_path_;
    int fd_;
    std::string expected_digest_;
    uint64_t expected_size_;
    uint64_t max_size_;
    uint64_t written_ = 0;
    crypto::Sha256Hasher hasher_;
    bool done_ = false;
  };

  // `expected_digest` may be empty (the digest is then whatever was written).
  Result<std::unique_ptr<Writer>> NewWriter(std::string expected_digest, uint64_t expected_size,
                                            uint64_t max_size = kUnknownSize);
  Result<std::string> PutBytes(std::string_view data, std::string_view expected_digest = {});
  // Hashes `path` and registers it in place when digest and size match.
  Status AddExternal(const std::string& path, std::string_view expected_digest, uint64_t expected_size);

  bool Has(std::string_view digest) const { return paths_.count(std::string(digest)) != 0; }
  // The file holding a blob; empty when absent.
  std::string PathOf(std::string_view digest) const;
  Result<uint64_t> SizeOf(std::string_view digest) const;
  // Reads a small blob (config, manifest) whole; fails above `max_bytes`.
  Result<std::string> ReadSmall(std::string_view digest, size_t max_bytes) const;

  const std::string& dir() const { return dir_; }

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::map<std::string, std::string> paths_;  // digest -> file
  uint64_t tmp_counter_ = 0;
};

// Computes "sha256:<hex>" of a file and its size.
Result<std::pair<std::string, uint64_t>> HashFile(const std::string& path);

}  // namespace vouch::oci
