#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vouch::crypto {

// Bytes that are wiped (OPENSSL_cleanse) when destroyed or reassigned. Move-only, so a
// secret is never silently duplicated. Never log the contents.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : data_(n) {}
  explicit SecretBytes(std::span<const uint8_t> b) : data_(b.begin(), b.end()) {}
  explicit SecretBytes(std::string_view s) : data_(s.begin(), s.end()) {}
  ~SecretBytes() { Wipe(); }
  SecretBytes(SecretBytes&& o) noexcept : data_(std::move(o.data_)) { o.data_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_.data(); }
  const uint8_t* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  std::span<const uint8_t> span() const { return data_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_.data()), data_.size()}; }

 private:
  void Wipe();
  std::vector<uint8_t> data_;
};

// Constant-time equality (time depends only on the lengths).
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace vouch::crypto
