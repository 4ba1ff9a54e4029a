#include "evidence/snp_cert_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "evidence/snp_report.h"

namespace vouch::evidence {
namespace {

std::vector<uint8_t> Bytes(size_t n, uint8_t fill) { return std::vector<uint8_t>(n, fill); }

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<uint8_t> ThreeCertTable() {
  auto vcek = Bytes(100, 0xA1), ask = Bytes(200, 0xB2), ark = Bytes(300, 0xC3);
  std::vector<SnpCertTableInput> in = {{kSnpGuidVcek, vcek}, {kSnpGuidAsk, ask}, {kSnpGuidArk, ark}};
  auto t = BuildSnpCertTable(in);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return *t;
}

std::string Reason(std::span<const uint8_t> b) {
  auto t = ParseSnpCertTable(b);
  return t.ok() ? std::string("ok") : t.status().reason();
}

TEST(SnpCertTable, GuidsAreTheGhcbOnesInRfc4122ByteOrder) {
  EXPECT_EQ(FormatSnpGuid(kSnpGuidVcek), "63da758d-e664-4564-adc5-f4b93be8accd");
  EXPECT_EQ(FormatSnpGuid(kSnpGuidVlek), "a8074bc2-a25a-483e-aae6-39c045a0b8a1");
  EXPECT_EQ(FormatSnpGuid(kSnpGuidAsk), "4ab7b379-bbac-4fe4-a02f-05aef327c782");
  EXPECT_EQ(FormatSnpGuid(kSnpGuidArk), "c0b406a4-a803-4952-9743-3fb6014cd0ae");
  EXPECT_EQ(SnpCertKindOf(kSnpGuidVlek), SnpCertKind::kVlek);
  EXPECT_EQ(SnpCertKindName(SnpCertKindOf(SnpGuid{1})), "other");
  EXPECT_EQ(*SnpGuidOf(SnpCertKind::kArk), kSnpGuidArk);
  EXPECT_FALSE(SnpGuidOf(SnpCertKind::kOther).has_value());
}

TEST(SnpCertTable, BuildThenParseRoundTrips) {
  auto b = ThreeCertTable();
  ASSERT_EQ(b.size(), 4 * 24 + 600u);
  // Layout pinned: first entry VCEK at offset 96, length 100; terminator at 72..95 all zero.
  EXPECT_TRUE(std::equal(kSnpGuidVcek.begin(), kSnpGuidVcek.end(), b.begin()));
  EXPECT_EQ(b[16], 96);
  EXPECT_EQ(b[20], 100);
  for (size_t i = 72; i < 96; ++i) EXPECT_EQ(b[i], 0) << i;
  auto t = ParseSnpCertTable(b);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->entries.size(), 3u);
  EXPECT_EQ(t->header_size, 96u);
  EXPECT_EQ(t->trailing_bytes, 0u);
  ASSERT_NE(t->Find(SnpCertKind::kAsk), nullptr);
  EXPECT_EQ(t->Find(SnpCertKind::kAsk)->data, Bytes(200, 0xB2));
  EXPECT_EQ(t->Find(SnpCertKind::kArk)->offset, 96u + 300u);
  EXPECT_EQ(t->Find(SnpCertKind::kVlek), nullptr);
}

TEST(SnpCertTable, EmptyAndAllZeroInputsAreEmptyTables) {
  EXPECT_EQ(Reason({}), "ok");
  auto page = Bytes(4096, 0);
  auto t = ParseSnpCertTable(page);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->entries.empty());
  EXPECT_EQ(t->trailing_bytes, 4096u - 24u);
  auto only = BuildSnpCertTable({});
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(*only, Bytes(24, 0));
}

TEST(SnpCertTable, TrailingPaddingIsToleratedAndCounted) {
  auto b = ThreeCertTable();
  b.resize(4096, 0);
  auto t = ParseSnpCertTable(b);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->trailing_bytes, 4096u - 696u);
}

TEST(SnpCertTable, UnknownGuidIsKeptAsOther) {
  auto data = Bytes(10, 1);
  SnpGuid other = {0xec, 0xae, 0x0c, 0x0f, 0x95, 0x02, 0x43, 0xb1, 0xaf, 0xa2, 0x0a, 0xe2, 0xe0, 0xd5, 0x65, 0xb6};
  std::vector<SnpCertTableInput> in = {{other, data}};
  auto b = BuildSnpCertTable(in);
  ASSERT_TRUE(b.ok());
  auto t = ParseSnpCertTable(*b);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->entries[0].kind, SnpCertKind::kOther);
}

TEST(SnpCertTable, RejectsEveryTruncation) {
  auto b = ThreeCertTable();
  // Cut inside the headers: no terminator. Cut inside the data: an entry out of range.
  for (size_t n = 1; n < b.size(); ++n) {
    std::string r = Reason(std::span<const uint8_t>(b).first(n));
    if (n < 96) {
      EXPECT_EQ(r, kSnpCertTableTruncated) << n;
    } else {
      EXPECT_EQ(r, kSnpCertTableEntryOutOfRange) << n;
    }
  }
}

TEST(SnpCertTable, RejectsMalformedEntries) {
  const auto good = ThreeCertTable();
  auto b = good;
  PutU32(b, 16, 200);  // VCEK now overlaps the ASK (offset 196.. )
  EXPECT_EQ(Reason(b), kSnpCertTableOverlap);
  b = good;
  PutU32(b, 16, 10);  // VCEK data inside the headers
  EXPECT_EQ(Reason(b), kSnpCertTableEntryOutOfRange);
  b = good;
  PutU32(b, 16, 0xFFFFFFF0u);  // offset + length beyond 2^32 (no wrap)
  EXPECT_EQ(Reason(b), kSnpCertTableEntryOutOfRange);
  b = good;
  PutU32(b, 20, 0xFFFFFFFFu);
  EXPECT_EQ(Reason(b), kSnpCertTableEntryOutOfRange);
  b = good;
  PutU32(b, 20, 0);
  EXPECT_EQ(Reason(b), kSnpCertTableEmptyEntry);
  b = good;
  std::copy(kSnpGuidVcek.begin(), kSnpGuidVcek.end(), b.begin() + 24);  // ASK entry relabelled VCEK
  EXPECT_EQ(Reason(b), kSnpCertTableDuplicateGuid);
  b = good;
  PutU32(b, 72 + 16, 5);  // terminator with a nonzero offset
  EXPECT_EQ(Reason(b), kSnpCertTableBadTerminator);
}

TEST(SnpCertTable, RejectsAbsurdSizesAndCounts) {
  EXPECT_EQ(Reason(Bytes(kSnpCertTableMaxSize + 1, 0)), kSnpCertTableTooLarge);
  // 65 nonzero headers (unterminated count beyond the limit).
  std::vector<uint8_t> b((kSnpCertTableMaxEntries + 2) * 24, 0);
  for (size_t i = 0; i <= kSnpCertTableMaxEntries; ++i) b[i * 24] = static_cast<uint8_t>(i + 1), b[i * 24 + 1] = 0x55;
  EXPECT_EQ(Reason(b), kSnpCertTableTooLarge);
  std::vector<std::vector<uint8_t>> data(kSnpCertTableMaxEntries + 1, Bytes(1, 1));
  std::vector<SnpCertTableInput> in;
  for (size_t i = 0; i < data.size(); ++i) {
    SnpGuid g{};
    g[0] = static_cast<uint8_t>(i + 1);
    in.push_back({g, data[i]});
  }
  EXPECT_EQ(BuildSnpCertTable(in).status().reason(), kSnpCertTableTooLarge);
}

TEST(SnpCertTable, BuilderRefusesWhatTheParserWould) {
  auto d = Bytes(3, 1);
  std::vector<SnpCertTableInput> dup = {{kSnpGuidVcek, d}, {kSnpGuidVcek, d}};
  EXPECT_EQ(BuildSnpCertTable(dup).status().reason(), kSnpCertTableDuplicateGuid);
  std::vector<SnpCertTableInput> empty = {{kSnpGuidVcek, {}}};
  EXPECT_EQ(BuildSnpCertTable(empty).status().reason(), kSnpCertTableEmptyEntry);
  std::vector<SnpCertTableInput> zero = {{SnpGuid{}, d}};
  EXPECT_EQ(BuildSnpCertTable(zero).status().reason(), kSnpCertTableBadTerminator);
}

TEST(SnpEvidence, SplitsReportAndTable) {
  std::vector<uint8_t> blob(kSnpReportSize, 7);
  auto only = SplitSnpEvidence(blob);
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->report.size(), kSnpReportSize);
  EXPECT_TRUE(only->cert_table.empty());
  auto table = ThreeCertTable();
  blob.insert(blob.end(), table.begin(), table.end());
  auto both = SplitSnpEvidence(blob);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->cert_table.size(), table.size());
  EXPECT_EQ(both->cert_table.data(), blob.data() + kSnpReportSize);
  EXPECT_EQ(SplitSnpEvidence(std::span<const uint8_t>(blob).first(1183)).status().reason(), kSnpEvidenceTruncated);
  std::vector<uint8_t> huge(kSnpReportSize + kSnpCertTableMaxSize + 1, 0);
  EXPECT_EQ(SplitSnpEvidence(huge).status().reason(), kSnpCertTableTooLarge);
}

}  // namespace
}  // namespace vouch::evidence
