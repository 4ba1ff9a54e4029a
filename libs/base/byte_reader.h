#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace vouch {

using Bytes = std::span<const uint8_t>;

// A bounds-checked cursor over untrusted bytes (after boringssl's CBS). Every read either
// succeeds and advances, or fails, returns false and leaves the cursor where it was.
// Integers are decoded explicitly as little-endian unless the name says BE.
// Does not own the bytes; they must outlive the reader.
class ByteReader {
 public:
  explicit ByteReader(Bytes data) : data_(data) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return data_.size() - offset_; }
  size_t size() const { return data_.size(); }
  bool empty() const { return remaining() == 0; }
  Bytes rest() const { return data_.subspan(offset_); }

  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadU16BE(uint16_t* out);
  bool ReadU32BE(uint32_t* out);
  // Reads `n` bytes as a view into the underlying data.
  bool ReadBytes(size_t n, Bytes* out);
  // Copies exactly N bytes into a fixed array.
  template <size_t N>
  bool ReadArray(uint8_t (&out)[N]) {
    Bytes b;
    if (!ReadBytes(N, &b)) return false;
    for (size_t i = 0; i < N; ++i) out[i] = b[i];
    return true;
  }
  bool Skip(size_t n);

 private:
  Bytes data_;
  size_t offset_ = 0;
};

// Little-endian decoders for a span already known to be long enough (asserted by callers
// through ByteReader or explicit size checks). They never read out of bounds: a short
// span yields 0.
uint16_t LoadU16(Bytes b, size_t off);
uint32_t LoadU32(Bytes b, size_t off);
uint64_t LoadU64(Bytes b, size_t off);

}  // namespace vouch
