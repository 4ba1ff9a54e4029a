#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

// A minimal strict DER reader and writer (X.690 §10), internal to pki. Only what the CSR
// parser and the measurement extension need: single-byte tags, definite minimal lengths.
// Parsing is bounds-checked; every failing read returns false and leaves the cursor unchanged.
namespace vouch::pki::der {

inline constexpr uint8_t kTagBoolean = 0x01;
inline constexpr uint8_t kTagInteger = 0x02;
inline constexpr uint8_t kTagBitString = 0x03;
inline constexpr uint8_t kTagOctetString = 0x04;
inline constexpr uint8_t kTagNull = 0x05;
inline constexpr uint8_t kTagOid = 0x06;
inline constexpr uint8_t kTagUtf8String = 0x0c;
inline constexpr uint8_t kTagUtcTime = 0x17;
inline constexpr uint8_t kTagGeneralizedTime = 0x18;
inline constexpr uint8_t kTagSequence = 0x30;
inline constexpr uint8_t kTagSet = 0x31;
inline constexpr uint8_t kTagContext0Constructed = 0xa0;
inline constexpr uint8_t kTagContext3Constructed = 0xa3;

struct Element {
  uint8_t tag = 0;
  std::span<const uint8_t> contents;  // the value octets
  std::span<const uint8_t> whole;     // tag, length and value octets
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  bool empty() const { return data_.empty(); }
  std::span<const uint8_t> rest() const { return data_; }

  // Reads any element. Rejects multi-byte tags, indefinite and non-minimal lengths.
  bool Read(Element* out);
  // Reads an element that must carry `tag`.
  bool Read(uint8_t tag, Element* out);
  // True if the next element has `tag` (does not consume).
  bool PeekTag(uint8_t tag) const { return !data_.empty() && data_[0] == tag; }

 private:
  std::span<const uint8_t> data_;
};

// Decodes a non-negative INTEGER of at most 8 bytes (after a possible 0x00 pad); false for
// negative, non-minimal or too large encodings.
bool ParseUint64(std::span<const uint8_t> integer_contents, uint64_t* out);

// Appends DER encodings to a byte vector.
class Writer {
 public:
  void AddElement(uint8_t tag, std::span<const uint8_t> contents);
  void AddUint64(uint64_t value);
  void AddUtf8(std::string_view text) {
    AddElement(kTagUtf8String, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  void AddOctets(std::span<const uint8_t> octets) { AddElement(kTagOctetString, octets); }
  // Appends bytes that already are a DER encoding.
  void AddRaw(std::span<const uint8_t> encoded) { out_.insert(out_.end(), encoded.begin(), encoded.end()); }
  void Reserve(size_t n) { out_.reserve(n); }
  const std::vector<uint8_t>& bytes() const { return out_; }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

}  // namespace vouch::pki::der
