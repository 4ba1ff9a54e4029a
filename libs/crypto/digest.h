#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vouch::crypto {

using Sha256Digest = std::array<uint8_t, 32>;
using Sha384Digest = std::array<uint8_t, 48>;

Sha256Digest Sha256(std::span<const uint8_t> data);
Sha256Digest Sha256(std::string_view data);
Sha384Digest Sha384(std::span<const uint8_t> data);
Sha256Digest HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

// Incremental SHA-256 for streams (image layers). Not thread-safe; movable.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(Sha256Hasher&&) noexcept;
  Sha256Hasher& operator=(Sha256Hasher&&) noexcept;
  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data);
  Sha256Digest Finish();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace vouch::crypto
