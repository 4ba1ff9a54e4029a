#include "evidence/snp_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/encoding.h"

namespace vouch::evidence {
namespace {

namespace off = snp_offsets;

std::vector<uint8_t> ReadTestFile(const std::string& rel) {
  std::string path = std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const char kGoSevGuest[] = "sev-snp/go-sev-guest-milan/attestation.bin";
const char kTrusteeVcek[] = "sev-snp/trustee-milan/test-report.bin";
const char kTrusteeVlek[] = "sev-snp/trustee-milan/test-vlek-report.bin";

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

// A well-formed synthetic report with a distinct, recognisable value in every field.
std::vector<uint8_t> SyntheticReport(uint32_t version) {
  std::vector<uint8_t> b(kSnpReportSize, 0);
  PutU32(b, off::kVersion, version);
  PutU32(b, off::kGuestSvn, 0x11223344);
  PutU64(b, off::kPolicy, 0x00000000000b1f05ULL);  // abi 31.5, SMT, bit17, DEBUG
  for (size_t i = 0; i < 16; ++i) b[off::kFamilyId + i] = static_cast<uint8_t>(0x10 + i);
  for (size_t i = 0; i < 16; ++i) b[off::kImageId + i] = static_cast<uint8_t>(0x20 + i);
  PutU32(b, off::kVmpl, 2);
  PutU32(b, off::kSignatureAlgo, 1);
  PutU64(b, off::kCurrentTcb, 0x0102030405060708ULL);
  PutU64(b, off::kPlatformInfo, 0x25);
  PutU32(b, off::kKeyInfo, 0x1 | 0x2 | (1U << 2));  // author key, mask chip key, VLEK
  for (size_t i = 0; i < 64; ++i) b[off::kReportData + i] = static_cast<uint8_t>(0x50 + i);
  for (size_t i = 0; i < 48; ++i) b[off::kMeasurement + i] = static_cast<uint8_t>(0x90 + i);
  for (size_t i = 0; i < 32; ++i) b[off::kHostData + i] = static_cast<uint8_t>(0xC0 + i);
  for (size_t i = 0; i < 48; ++i) b[off::kIdKeyDigest + i] = static_cast<uint8_t>(0xE0 + i);
  for (size_t i = 0; i < 48; ++i) b[off::kAuthorKeyDigest + i] = static_cast<uint8_t>(0x10 + i);
  for (size_t i = 0; i < 32; ++i) b[off::kReportId + i] = static_cast<uint8_t>(0x40 + i);
  for (size_t i = 0; i < 32; ++i) b[off::kReportIdMa + i] = static_cast<uint8_t>(0x60 + i);
  PutU64(b, off::kReportedTcb, 0xD9180000000000A4ULL);
  if (version >= 3) {
    b[off::kCpuidFamId] = 0x1A;
    b[off::kCpuidModId] = 0x02;
    b[off::kCpuidStep] = 0x01;
  }
  for (size_t i = 0; i < 64; ++i) b[off::kChipId + i] = static_cast<uint8_t>(0xA0 + i);
  PutU64(b, off::kCommittedTcb, 0x1112131415161718ULL);
  b[off::kCurrentBuild] = 0x31;
  b[off::kCurrentMinor] = 0x37;
  b[off::kCurrentMajor] = 0x01;
  b[off::kCommittedBuild] = 0x30;
  b[off::kCommittedMinor] = 0x36;
  b[off::kCommittedMajor] = 0x02;
  PutU64(b, off::kLaunchTcb, 0x2122232425262728ULL);
  if (version >= 5) {
    PutU64(b, off::kLaunchMitVector, 0x3132333435363738ULL);
    PutU64(b, off::kCurrentMitVector, 0x4142434445464748ULL);
  }
  for (size_t i = 0; i < 72; ++i) b[off::kSignatureR + i] = static_cast<uint8_t>(i + 1);
  for (size_t i = 0; i < 72; ++i) b[off::kSignatureS + i] = static_cast<uint8_t>(0x80 + i);
  return b;
}

TEST(SnpReportLayout, OffsetsMatchTheAbiTable) {
  // ATTESTATION-FORMATS.md §6 and docs/formats/sev-snp-report.md.
  EXPECT_EQ(kSnpReportSize, 1184u);
  EXPECT_EQ(kSnpSignedSize, 0x2A0u);
  EXPECT_EQ(off::kVersion, 0x000u);
  EXPECT_EQ(off::kGuestSvn, 0x004u);
  EXPECT_EQ(off::kPolicy, 0x008u);
  EXPECT_EQ(off::kFamilyId, 0x010u);
  EXPECT_EQ(off::kImageId, 0x020u);
  EXPECT_EQ(off::kVmpl, 0x030u);
  EXPECT_EQ(off::kSignatureAlgo, 0x034u);
  EXPECT_EQ(off::kCurrentTcb, 0x038u);
  EXPECT_EQ(off::kPlatformInfo, 0x040u);
  EXPECT_EQ(off::kKeyInfo, 0x048u);
  EXPECT_EQ(off::kReportData, 0x050u);
  EXPECT_EQ(off::kMeasurement, 0x090u);
  EXPECT_EQ(off::kHostData, 0x0C0u);
  EXPECT_EQ(off::kIdKeyDigest, 0x0E0u);
  EXPECT_EQ(off::kAuthorKeyDigest, 0x110u);
  EXPECT_EQ(off::kReportId, 0x140u);
  EXPECT_EQ(off::kReportIdMa, 0x160u);
  EXPECT_EQ(off::kReportedTcb, 0x180u);
  EXPECT_EQ(off::kCpuidFamId, 0x188u);
  EXPECT_EQ(off::kChipId, 0x1A0u);
  EXPECT_EQ(off::kCommittedTcb, 0x1E0u);
  EXPECT_EQ(off::kCurrentBuild, 0x1E8u);
  EXPECT_EQ(off::kCommittedBuild, 0x1ECu);
  EXPECT_EQ(off::kLaunchTcb, 0x1F0u);
  EXPECT_EQ(off::kLaunchMitVector, 0x1F8u);
  EXPECT_EQ(off::kCurrentMitVector, 0x200u);
  EXPECT_EQ(off::kSignatureR, 0x2A0u);
  EXPECT_EQ(off::kSignatureS, 0x2E8u);
  EXPECT_EQ(off::kSignatureReserved, 0x330u);
}

TEST(SnpReportParser, ParsesEveryFieldOfASyntheticV5Report) {
  auto bytes = SyntheticReport(5);
  auto r = ParseSnpReport(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 5u);
  EXPECT_EQ(r->guest_svn, 0x11223344u);
  EXPECT_EQ(r->policy.raw, 0xb1f05u);
  EXPECT_EQ(r->policy.abi_minor, 0x05);
  EXPECT_EQ(r->policy.abi_major, 0x1F);
  EXPECT_TRUE(r->policy.smt);
  EXPECT_TRUE(r->policy.reserved_one);
  EXPECT_FALSE(r->policy.migrate_ma);
  EXPECT_TRUE(r->policy.debug);
  EXPECT_FALSE(r->policy.single_socket);
  EXPECT_EQ(r->family_id[0], 0x10);
  EXPECT_EQ(r->family_id[15], 0x1F);
  EXPECT_EQ(r->image_id[0], 0x20);
  EXPECT_EQ(r->vmpl, 2u);
  EXPECT_EQ(r->signature_algo, 1u);
  EXPECT_EQ(r->current_tcb, 0x0102030405060708ULL);
  EXPECT_EQ(r->platform_info.raw, 0x25u);
  EXPECT_TRUE(r->platform_info.smt_enabled);
  EXPECT_FALSE(r->platform_info.tsme_enabled);
  EXPECT_TRUE(r->platform_info.ecc_enabled);
  EXPECT_TRUE(r->platform_info.alias_check_complete);
  EXPECT_TRUE(r->author_key_en);
  EXPECT_TRUE(r->mask_chip_key);
  EXPECT_EQ(r->signing_key, SnpSigningKey::kVlek);
  EXPECT_EQ(r->report_data[0], 0x50);
  EXPECT_EQ(r->report_data[63], 0x50 + 63);
  EXPECT_EQ(r->measurement[0], 0x90);
  EXPECT_EQ(r->measurement[47], 0x90 + 47);
  EXPECT_EQ(r->host_data[31], 0xC0 + 31);
  EXPECT_EQ(r->id_key_digest[0], 0xE0);
  EXPECT_EQ(r->author_key_digest[47], 0x10 + 47);
  EXPECT_EQ(r->report_id[0], 0x40);
  EXPECT_EQ(r->report_id_ma[31], 0x60 + 31);
  EXPECT_EQ(r->reported_tcb, 0xD9180000000000A4ULL);
  EXPECT_EQ(r->cpuid_fam_id, 0x1A);
  EXPECT_EQ(r->cpuid_mod_id, 0x02);
  EXPECT_EQ(r->cpuid_step, 0x01);
  EXPECT_EQ(r->ProductFromCpuid(), SnpProduct::kTurin);
  EXPECT_EQ(r->chip_id[0], 0xA0);
  EXPECT_EQ(r->chip_id[63], 0xA0 + 63);
  EXPECT_EQ(r->committed_tcb, 0x1112131415161718ULL);
  EXPECT_EQ(r->current_build, 0x31);
  EXPECT_EQ(r->current_minor, 0x37);
  EXPECT_EQ(r->current_major, 0x01);
  EXPECT_EQ(r->committed_build, 0x30);
  EXPECT_EQ(r->committed_minor, 0x36);
  EXPECT_EQ(r->committed_major, 0x02);
  EXPECT_EQ(r->launch_tcb, 0x2122232425262728ULL);
  EXPECT_EQ(r->launch_mit_vector, 0x3132333435363738ULL);
  EXPECT_EQ(r->current_mit_vector, 0x4142434445464748ULL);
  EXPECT_EQ(r->signature_r[0], 1);
  EXPECT_EQ(r->signature_r[71], 72);
  EXPECT_EQ(r->signature_s[0], 0x80);
  EXPECT_EQ(r->signature_s[71], 0x80 + 71);
}

TEST(SnpReportParser, V2HasNoCpuidAndNoMitigationVectors) {
  auto r = ParseSnpReport(SyntheticReport(2));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->cpuid_fam_id.has_value());
  EXPECT_FALSE(r->launch_mit_vector.has_value());
  EXPECT_EQ(r->ProductFromCpuid(), SnpProduct::kUnknown);
  auto r3 = ParseSnpReport(SyntheticReport(3));
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_TRUE(r3->cpuid_fam_id.has_value());
  EXPECT_FALSE(r3->current_mit_vector.has_value());
}

TEST(SnpReportParser, ParsesGoSevGuestMilanReport) {
  auto bytes = ReadTestFile(kGoSevGuest);
  auto r = ParseSnpReport(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(r->vmpl, 0u);
  EXPECT_EQ(r->policy.raw, 0xb0000u);
  EXPECT_TRUE(r->policy.debug);
  EXPECT_EQ(r->signature_algo, 1u);
  EXPECT_EQ(r->signing_key, SnpSigningKey::kVcek);
  EXPECT_FALSE(r->mask_chip_key);
  EXPECT_EQ(r->reported_tcb, 0x4405000000000002ULL);
  auto tcb = SnpTcbVersion::Decode(r->reported_tcb, SnpProduct::kMilan);
  EXPECT_EQ(tcb.bootloader, 2);
  EXPECT_EQ(tcb.tee, 0);
  EXPECT_EQ(tcb.snp, 5);
  EXPECT_EQ(tcb.microcode, 68);
  EXPECT_FALSE(tcb.fmc.has_value());
  EXPECT_EQ(HexEncode(std::span<const uint8_t>(r->report_data).first(6)), "010203040500");
  EXPECT_EQ(HexEncode(std::span<const uint8_t>(r->chip_id).first(4)), "3ac3fe21");
  EXPECT_EQ(r->current_major, 1);
  EXPECT_EQ(r->current_minor, 0x31);
  EXPECT_EQ(r->current_build, 3);
}

TEST(SnpReportParser, ParsesTrusteeVcekAndVlekReports) {
  auto vcek = ParseSnpReport(ReadTestFile(kTrusteeVcek));
  ASSERT_TRUE(vcek.ok()) << vcek.status().ToString();
  EXPECT_EQ(vcek->version, 2u);
  EXPECT_EQ(vcek->policy.raw, 0x3001fu);
  EXPECT_FALSE(vcek->policy.debug);
  EXPECT_EQ(vcek->guest_svn, 4u);
  auto t = SnpTcbVersion::Decode(vcek->reported_tcb, SnpProduct::kMilan);
  EXPECT_EQ(t.bootloader, 3);
  EXPECT_EQ(t.snp, 8);
  EXPECT_EQ(t.microcode, 115);

  auto vlek = ParseSnpReport(ReadTestFile(kTrusteeVlek));
  ASSERT_TRUE(vlek.ok()) << vlek.status().ToString();
  EXPECT_EQ(vlek->version, 3u);
  EXPECT_EQ(vlek->signing_key, SnpSigningKey::kVlek);
  EXPECT_EQ(vlek->vmpl, 1u);
  EXPECT_EQ(vlek->cpuid_fam_id, 0x19);
  EXPECT_EQ(vlek->cpuid_mod_id, 0x01);
  EXPECT_EQ(vlek->cpuid_step, 0x01);
  EXPECT_EQ(vlek->ProductFromCpuid(), SnpProduct::kMilan);
  auto tv = SnpTcbVersion::Decode(vlek->reported_tcb, SnpProduct::kMilan);
  EXPECT_EQ(tv.bootloader, 4);
  EXPECT_EQ(tv.tee, 0);
  EXPECT_EQ(tv.snp, 24);
  EXPECT_EQ(tv.microcode, 217);
}

TEST(SnpTcbVersion, DecodesMilanGenoaAndTurinLayouts) {
  // bytes (LE): 01 02 03 04 05 06 07 08
  const uint64_t raw = 0x0807060504030201ULL;
  auto milan = SnpTcbVersion::Decode(raw, SnpProduct::kMilan);
  EXPECT_EQ(milan.bootloader, 1);
  EXPECT_EQ(milan.tee, 2);
  EXPECT_EQ(milan.snp, 7);
  EXPECT_EQ(milan.microcode, 8);
  EXPECT_FALSE(milan.fmc.has_value());
  EXPECT_EQ(SnpTcbVersion::Decode(raw, SnpProduct::kGenoa), milan);
  auto turin = SnpTcbVersion::Decode(raw, SnpProduct::kTurin);
  EXPECT_EQ(turin.fmc, 1);
  EXPECT_EQ(turin.bootloader, 2);
  EXPECT_EQ(turin.tee, 3);
  EXPECT_EQ(turin.snp, 4);
  EXPECT_EQ(turin.microcode, 8);
}

TEST(SnpProduct, FromCpuidAndName) {
  EXPECT_EQ(SnpProductFromCpuid(0x19, 0x01), SnpProduct::kMilan);
  EXPECT_EQ(SnpProductFromCpuid(0x19, 0x11), SnpProduct::kGenoa);
  EXPECT_EQ(SnpProductFromCpuid(0x19, 0xA0), SnpProduct::kGenoa);
  EXPECT_EQ(SnpProductFromCpuid(0x1A, 0x02), SnpProduct::kTurin);
  EXPECT_EQ(SnpProductFromCpuid(0x19, 0x50), SnpProduct::kUnknown);
  EXPECT_EQ(SnpProductFromCpuid(0x17, 0x01), SnpProduct::kUnknown);
  EXPECT_EQ(SnpProductFromName("Milan-B0"), SnpProduct::kMilan);
  EXPECT_EQ(SnpProductFromName("Milan"), SnpProduct::kMilan);
  EXPECT_EQ(SnpProductFromName("Genoa-B1"), SnpProduct::kGenoa);
  EXPECT_EQ(SnpProductFromName("Turin"), SnpProduct::kTurin);
  EXPECT_EQ(SnpProductFromName("Rome-B0"), SnpProduct::kUnknown);
  EXPECT_EQ(SnpProductFromName(""), SnpProduct::kUnknown);
  EXPECT_EQ(SnpProductName(SnpProduct::kGenoa), "Genoa");
}

TEST(SnpReportParser, RejectsEveryWrongSizeWithAPreciseMessage) {
  auto bytes = ReadTestFile(kGoSevGuest);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = ParseSnpReport(std::span<const uint8_t>(bytes).first(n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().reason(), "snp_report_size");
    EXPECT_EQ(r.status().message(), "SNP report is " + std::to_string(n) + " bytes, expected 1184");
  }
  bytes.push_back(0);
  auto r = ParseSnpReport(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "snp_report_size");
}

TEST(SnpReportParser, RejectsUnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 6u, 0x100u, 0xFFFFFFFFu}) {
    auto bytes = SyntheticReport(3);
    PutU32(bytes, off::kVersion, v);
    auto r = ParseSnpReport(bytes);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().reason(), "unsupported_snp_version");
    EXPECT_NE(r.status().message().find("expected 2, 3 or 5"), std::string::npos);
  }
}

TEST(SnpReportParser, RejectsReservedSigningKeyValues) {
  for (uint32_t k = 2; k <= 6; ++k) {
    auto bytes = SyntheticReport(3);
    PutU32(bytes, off::kKeyInfo, k << 2);
    auto r = ParseSnpReport(bytes);
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().reason(), "snp_invalid_signing_key");
  }
  auto bytes = SyntheticReport(3);
  PutU32(bytes, off::kKeyInfo, 7U << 2);
  auto r = ParseSnpReport(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->signing_key, SnpSigningKey::kNone);
}

TEST(SnpReportParser, RejectsNonZeroReservedBytes) {
  struct Case {
    uint32_t version;
    size_t offset;
  };
  const Case cases[] = {
      {2, 0x04C}, {2, 0x04F}, {2, 0x188}, {2, 0x19F}, {3, 0x18B}, {3, 0x19F}, {5, 0x1EB},
      {5, 0x1EF}, {2, 0x1F8}, {3, 0x207}, {5, 0x208}, {5, 0x29F}, {5, 0x330}, {5, 0x49F},
  };
  for (const Case& c : cases) {
    auto bytes = SyntheticReport(c.version);
    bytes[c.offset] = 0x01;
    auto r = ParseSnpReport(bytes);
    ASSERT_FALSE(r.ok()) << "v" << c.version << " @" << c.offset;
    EXPECT_EQ(r.status().reason(), "snp_reserved_nonzero");
  }
  auto bytes = SyntheticReport(3);
  PutU32(bytes, off::kKeyInfo, 1U << 5);
  EXPECT_EQ(ParseSnpReport(bytes).status().reason(), "snp_reserved_nonzero");
  // The CPUID bytes are reserved in v2 but fields in v3+.
  bytes = SyntheticReport(3);
  EXPECT_TRUE(ParseSnpReport(bytes).ok());
}

TEST(SnpReportParser, AnySingleByteFlipNeverCrashes) {
  auto bytes = ReadTestFile(kTrusteeVlek);
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0xFF;
    auto r = ParseSnpReport(copy);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << i;
    }
  }
}

}  // namespace
}  // namespace vouch::evidence
