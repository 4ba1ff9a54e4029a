#include <gtest/gtest.h>

#include <vector>

#include "base/byte_reader.h"
#include "base/clock.h"
#include "base/encoding.h"
#include "base/result.h"

namespace vouch {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd", "odd_number");
  return x / 2;
}

Result<int> Quarter(int x) {
  VOUCH_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Result, CarriesValueOrStatus) {
  auto r = Quarter(8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  auto e = Quarter(6);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().reason(), "odd_number");
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

TEST(Status, ReasonFallsBackToCodeName) {
  Status s(StatusCode::kNotFound, "no zone 'x'");
  EXPECT_EQ(s.reason(), "not_found");
  EXPECT_EQ(s.WithContext("loading").message(), "loading: no zone 'x'");
}

TEST(ByteReader, ReadsLittleEndianAndStopsAtEnd) {
  std::vector<uint8_t> data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader r(data);
  uint16_t a;
  uint32_t b;
  ASSERT_TRUE(r.ReadU16(&a));
  EXPECT_EQ(a, 0x0201);
  ASSERT_TRUE(r.ReadU32(&b));
  EXPECT_EQ(b, 0x06050403u);
  uint16_t c = 0xffff;
  EXPECT_FALSE(r.ReadU16(&c));
  EXPECT_EQ(c, 0xffff);
  EXPECT_EQ(r.offset(), 6u);
  Bytes rest;
  EXPECT_FALSE(r.ReadBytes(2, &rest));
  EXPECT_TRUE(r.ReadBytes(1, &rest));
  EXPECT_TRUE(r.empty());
}

TEST(ByteReader, RejectsHugeLengthsWithoutOverflow) {
  std::vector<uint8_t> data(4);
  ByteReader r(data);
  Bytes out;
  EXPECT_FALSE(r.ReadBytes(SIZE_MAX, &out));
  EXPECT_FALSE(r.Skip(SIZE_MAX));
  EXPECT_EQ(LoadU32(data, SIZE_MAX), 0u);
}

TEST(Encoding, HexRoundTripAndRejectsBadInput) {
  std::vector<uint8_t> data = {0x00, 0xAB, 0xff};
  EXPECT_EQ(HexEncode(data), "00abff");
  auto d = HexDecode("00ABff");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, data);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

TEST(Encoding, Base64MatchesRfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Base64Encode(AsBytes(plain[i])), enc[i]);
    auto d = Base64Decode(enc[i]);
    ASSERT_TRUE(d.ok()) << enc[i];
    EXPECT_EQ(ToString(*d), plain[i]);
  }
  EXPECT_FALSE(Base64Decode("Zm9").ok());
  EXPECT_FALSE(Base64Decode("Zm9*").ok());
  EXPECT_FALSE(Base64Decode("Zh==").ok());  // non-canonical
  EXPECT_EQ(Base64UrlEncode(std::vector<uint8_t>{0xfb, 0xff}), "-_8");
  EXPECT_TRUE(Base64UrlDecode("-_8").ok());
}

TEST(Clock, Rfc3339RoundTrip) {
  auto t = ParseRfc3339("2025-02-13T12:34:56Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(ToUnixSeconds(*t), 1739450096);
  EXPECT_EQ(FormatRfc3339(*t), "2025-02-13T12:34:56Z");
  auto off = ParseRfc3339("2025-02-13T14:34:56.123+02:00");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, *t);
  EXPECT_EQ(ToUnixSeconds(*ParseRfc3339("1970-01-01")), 0);
  EXPECT_FALSE(ParseRfc3339("2025-13-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseRfc3339("2025-02-13T12:34:56").ok());
  EXPECT_FALSE(ParseRfc3339("garbage").ok());
}

}  // namespace
}  // namespace vouch
