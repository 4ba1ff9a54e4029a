#include "pki/der.h"

namespace vouch::pki::der {

bool Reader::Read(Element* out) {
  std::span<const uint8_t> d = data_;
  if (d.size() < 2) return false;
  uint8_t tag = d[0];
  if ((tag & 0x1f) == 0x1f) return false;  // high tag numbers: never used by what we parse
  size_t header = 2;
  size_t len = d[1];
  if (len & 0x80) {
    size_t n = len & 0x7f;
    // 0x80 is the BER indefinite form; more than 4 length bytes is never a sane input.
    if (n == 0 || n > 4 || d.size() < 2 + n) return false;
    if (d[2] == 0) return false;  // non-minimal: leading zero length byte
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | d[2 + i];
    if (len < 0x80) return false;  // non-minimal: should have used the short form
    header += n;
  }
  if (d.size() - header < len) return false;
  out->tag = tag;
  out->contents = d.subspan(header, len);
  out->whole = d.subspan(0, header + len);
  data_ = d.subspan(header + len);
  return true;
}

bool Reader::Read(uint8_t tag, Element* out) {
  if (!PeekTag(tag)) return false;
  return Read(out);
}

bool ParseUint64(std::span<const uint8_t> c, uint64_t* out) {
  if (c.empty()) return false;
  if (c[0] & 0x80) return false;  // negative
  if (c.size() > 1 && c[0] == 0 && !(c[1] & 0x80)) return false;  // non-minimal
  if (c[0] == 0) c = c.subspan(1);
  if (c.size() > 8) return false;
  uint64_t v = 0;
  for (uint8_t b : c) v = (v << 8) | b;
  *out = v;
  return true;
}

void Writer::AddElement(uint8_t tag, std::span<const uint8_t> contents) {
  out_.push_back(tag);
  size_t len = contents.size();
  if (len < 0x80) {
    out_.push_back(static_cast<uint8_t>(len));
  } else {
    uint8_t buf[sizeof(size_t)];
    size_t n = 0;
    for (size_t v = len; v != 0; v >>= 8) buf[n++] = static_cast<uint8_t>(v & 0xff);
    out_.push_back(static_cast<uint8_t>(0x80 | n));
    while (n > 0) out_.push_back(buf[--n]);
  }
  out_.insert(out_.end(), contents.begin(), contents.end());
}

void Writer::AddUint64(uint64_t value) {
  uint8_t buf[9];
  size_t n = 0;
  do {
    buf[n++] = static_cast<uint8_t>(value & 0xff);
    value >>= 8;
  } while (value != 0);
  if (buf[n - 1] & 0x80) buf[n++] = 0;  // keep it positive
  uint8_t be[9];
  for (size_t i = 0; i < n; ++i) be[i] = buf[n - 1 - i];
  AddElement(kTagInteger, {be, n});
}

}  // namespace vouch::pki::der
