#include "base/byte_reader.h"

namespace vouch {

bool ByteReader::ReadBytes(size_t n, Bytes* out) {
  if (n > remaining()) return false;
  *out = data_.subspan(offset_, n);
  offset_ += n;
  return true;
}

bool ByteReader::Skip(size_t n) {
  if (n > remaining()) return false;
  offset_ += n;
  return true;
}

bool ByteReader::ReadU8(uint8_t* out) {
  if (remaining() < 1) return false;
  *out = data_[offset_++];
  return true;
}

bool ByteReader::ReadU16(uint16_t* out) {
  if (remaining() < 2) return false;
  *out = LoadU16(data_, offset_);
  offset_ += 2;
  return true;
}

bool ByteReader::ReadU32(uint32_t* out) {
  if (remaining() < 4) return false;
  *out = LoadU32(data_, offset_);
  offset_ += 4;
  return true;
}

bool ByteReader::ReadU64(uint64_t* out) {
  if (remaining() < 8) return false;
  *out = LoadU64(data_, offset_);
  offset_ += 8;
  return true;
}

bool ByteReader::ReadU16BE(uint16_t* out) {
  if (remaining() < 2) return false;
  *out = static_cast<uint16_t>((data_[offset_] << 8) | data_[offset_ + 1]);
  offset_ += 2;
  return true;
}

bool ByteReader::ReadU32BE(uint32_t* out) {
  if (remaining() < 4) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | data_[offset_ + i];
  *out = v;
  offset_ += 4;
  return true;
}

uint16_t LoadU16(Bytes b, size_t off) {
  if (off > b.size() || b.size() - off < 2) return 0;
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}

uint32_t LoadU32(Bytes b, size_t off) {
  if (off > b.size() || b.size() - off < 4) return 0;
  uint32_t v = 0;
  for (size_t i = 4; i-- > 0;) v = (v << 8) | b[off + i];
  return v;
}

uint64_t LoadU64(Bytes b, size_t off) {
  if (off > b.size() || b.size() - off < 8) return 0;
  uint64_t v = 0;
  for (size_t i = 8; i-- > 0;) v = (v << 8) | b[off + i];
  return v;
}

}  // namespace vouch
