#include "attest/snp_verifier.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "attest/amd_roots.h"
#include "base/encoding.h"
#include "crypto/x509.h"
#include "evidence/snp_report.h"
#include "testing/temp_dir.h"

namespace vouch::attest {
namespace {

namespace off = evidence::snp_offsets;

const std::string kDir = std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/sev-snp/";
const std::string kGoDir = kDir + "go-sev-guest-milan";
const std::string kTrusteeDir = kDir + "trustee-milan";

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

crypto::X509Ptr Der(const std::string& path) {
  auto bytes = ReadBytes(path);
  auto c = crypto::CertFromDer(bytes);
  EXPECT_TRUE(c.ok()) << path;
  return c.ok() ? std::move(*c) : nullptr;
}

TimePoint At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.value_or(TimePoint{});
}

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("<none>"); }

// Inside every certificate's validity (go-sev-guest VCEK 2022-09..2029-09, trustee VCEK
// 2023-01..2030-01, VLEK 2024-12-10..2025-12-10).
const char kMid2025[] = "2025-06-01T00:00:00Z";

class SnpVerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    go_report_ = new std::vector<uint8_t>(ReadBytes(kGoDir + "/attestation.bin"));
    vcek_report_ = new std::vector<uint8_t>(ReadBytes(kTrusteeDir + "/test-report.bin"));
    vlek_report_ = new std::vector<uint8_t>(ReadBytes(kTrusteeDir + "/test-vlek-report.bin"));
  }
  static void TearDownTestSuite() {
    delete go_report_;
    delete vcek_report_;
    delete vlek_report_;
  }
  static const AmdRootSet& Milan() { return BuiltinAmdRoots().at(0); }
  static const AmdRootSet& Genoa() { return BuiltinAmdRoots().at(1); }

  static std::vector<uint8_t>* go_report_;
  static std::vector<uint8_t>* vcek_report_;
  static std::vector<uint8_t>* vlek_report_;
};
std::vector<uint8_t>* SnpVerifierTest::go_report_ = nullptr;
std::vector<uint8_t>* SnpVerifierTest::vcek_report_ = nullptr;
std::vector<uint8_t>* SnpVerifierTest::vlek_report_ = nullptr;

// ---- The test vectors' expected verdicts (expected.json) --------------------------------

TEST_F(SnpVerifierTest, GoSevGuestMilanFolderIsAccepted) {
  Verdict v = VerifySnpReport(*go_report_, kGoDir, At(kMid2025));
  ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.platform, Platform::kSevSnp);
  EXPECT_EQ(v.tcb_status, "UpToDate");
  EXPECT_FALSE(v.error.has_value());
  EXPECT_EQ(v.ExitCode(), 0);
  EXPECT_EQ(v.details["product"], "Milan");
  EXPECT_EQ(v.details["product_name"], "Milan-B0");
  EXPECT_EQ(v.details["signing_key"], "vcek");
  EXPECT_EQ(v.details["report_version"], 2);
  EXPECT_EQ(v.measurements["reported_tcb"]["bootloader"], 2);
  EXPECT_EQ(v.measurements["reported_tcb"]["tee"], 0);
  EXPECT_EQ(v.measurements["reported_tcb"]["snp"], 5);
  EXPECT_EQ(v.measurements["reported_tcb"]["microcode"], 68);
  EXPECT_FALSE(v.measurements["reported_tcb"].contains("fmc"));
  EXPECT_EQ(v.measurements["reported_tcb"]["raw"], "4405000000000002");
  EXPECT_EQ(v.measurements["policy"], 0xb0000);
  EXPECT_EQ(v.measurements["debug"], true);
  EXPECT_EQ(v.measurements["vmpl"], 0);
  EXPECT_EQ(v.measurements["measurement"].get<std::string>().substr(0, 8), "b07af962");
  EXPECT_EQ(v.measurements["chip_id"].get<std::string>().substr(0, 8), "3ac3fe21");
  EXPECT_EQ(v.report_data_hex, "0102030405" + std::string(118, '0'));
  auto j = v.ToJson();
  EXPECT_EQ(j["platform"], "sev-snp");
  EXPECT_EQ(j["genuine"], true);
  EXPECT_EQ(j["tcb_status"], "UpToDate");
  EXPECT_FALSE(j.contains("error"));
}

TEST_F(SnpVerifierTest, GoSevGuestVcekOnlyValidInsideItsValidity) {
  EXPECT_TRUE(VerifySnpReport(*go_report_, kGoDir, At("2022-09-24T00:55:28Z")).genuine);
  // OpenSSL treats notAfter itself as expired; one second before is valid.
  EXPECT_TRUE(VerifySnpReport(*go_report_, kGoDir, At("2029-09-24T00:55:27Z")).genuine);
  for (const char* t : {"2022-09-24T00:55:27Z", "2029-09-24T00:55:29Z", "2049-01-01T00:00:00Z"}) {
    Verdict v = VerifySnpReport(*go_report_, kGoDir, At(t));
    EXPECT_FALSE(v.genuine) << t;
    EXPECT_EQ(Code(v), "snp_cert_expired") << t;
    EXPECT_EQ(v.ExitCode(), 2);
    EXPECT_TRUE(v.tcb_status.empty());
  }
}

TEST_F(SnpVerifierTest, TrusteeVcekReportIsAcceptedWithItsMatchingCertificate) {
  // The folder also holds two invalid VCEKs and a VLEK: the matching VCEK is chosen.
  Verdict v = VerifySnpReport(*vcek_report_, kTrusteeDir, At(kMid2025));
  ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.details["signing_key"], "vcek");
  EXPECT_EQ(v.details["certificate_file"], "test-vcek.der");
  EXPECT_EQ(v.measurements["reported_tcb"]["bootloader"], 3);
  EXPECT_EQ(v.measurements["reported_tcb"]["snp"], 8);
  EXPECT_EQ(v.measurements["reported_tcb"]["microcode"], 115);
  EXPECT_EQ(v.measurements["debug"], false);
  EXPECT_EQ(v.measurements["guest_svn"], 4);
}

TEST_F(SnpVerifierTest, TrusteeVlekReportIsAcceptedWithTheVlekChain) {
  Verdict v = VerifySnpReport(*vlek_report_, kTrusteeDir, At(kMid2025));
  ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.tcb_status, "UpToDate");
  EXPECT_EQ(v.details["signing_key"], "vlek");
  EXPECT_EQ(v.details["certificate_file"], "test-vlek.der");
  EXPECT_EQ(v.details["product"], "Milan");
  EXPECT_EQ(v.details["csp_id"], "CN=cc-us-east-2.amazonaws.com");
  EXPECT_EQ(v.details["cpuid"]["family"], 0x19);
  EXPECT_EQ(v.details["report_version"], 3);
  EXPECT_EQ(v.measurements["vmpl"], 1);
  EXPECT_EQ(v.measurements["reported_tcb"]["bootloader"], 4);
  EXPECT_EQ(v.measurements["reported_tcb"]["snp"], 24);
  EXPECT_EQ(v.measurements["reported_tcb"]["microcode"], 217);
}

TEST_F(SnpVerifierTest, TrusteeVlekIsExpiredOutsideItsOneYearValidity) {
  for (const char* t : {"2024-12-10T22:14:20Z", "2025-12-10T22:14:22Z"}) {
    Verdict v = VerifySnpReport(*vlek_report_, kTrusteeDir, At(t));
    EXPECT_FALSE(v.genuine) << t;
    EXPECT_EQ(Code(v), "snp_cert_expired") << t;
  }
}

TEST_F(SnpVerifierTest, TrusteeInvalidVceksAreRejected) {
  for (const char* name : {"test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"}) {
    // With the folder's chain bundle, by explicit paths.
    Verdict v = VerifySnpReportWithFiles(*vcek_report_, kTrusteeDir + "/" + name,
                                         kTrusteeDir + "/milan_ask_ark_asvk.pem", At(kMid2025));
    EXPECT_FALSE(v.genuine) << name;
    EXPECT_EQ(Code(v), "snp_chain_untrusted") << name << ": " << (v.error ? v.error->message() : "");
    // With the built-in Milan ASK given explicitly: its signature does not verify.
    auto leaf = Der(kTrusteeDir + "/" + name);
    Verdict w = VerifySnpReportWithCerts(*vcek_report_, leaf.get(), Milan().ask, Milan().ark, At(kMid2025));
    EXPECT_FALSE(w.genuine) << name;
    EXPECT_EQ(Code(w), "snp_chain_untrusted") << name;
    EXPECT_NE(w.error->message().find("is not signed by its issuer CN=SEV-Milan"), std::string::npos)
        << w.error->message();
    // With built-ins only.
    Verdict b = VerifySnpReportWithCerts(*vcek_report_, leaf.get(), nullptr, nullptr, At(kMid2025));
    EXPECT_EQ(Code(b), "snp_chain_untrusted") << name;
  }
}

TEST_F(SnpVerifierTest, ExplicitFilesAndBuiltinRootsVerify) {
  Verdict f = VerifySnpReportWithFiles(*vcek_report_, kTrusteeDir + "/test-vcek.der",
                                       kTrusteeDir + "/milan_ask_ark_asvk.pem", At(kMid2025));
  EXPECT_TRUE(f.genuine) << Code(f);
  Verdict g = VerifySnpReportWithFiles(*vlek_report_, kTrusteeDir + "/test-vlek.der", std::nullopt, At(kMid2025));
  EXPECT_TRUE(g.genuine) << Code(g);
  Verdict h = VerifySnpReportWithFiles(*go_report_, kGoDir + "/vcek.der", kGoDir + "/ask_ark_milan.pem", At(kMid2025));
  EXPECT_TRUE(h.genuine) << Code(h);
  auto vcek = Der(kGoDir + "/vcek.der");
  Verdict b = VerifySnpReportWithCerts(*go_report_, vcek.get(), nullptr, nullptr, At(kMid2025));
  EXPECT_TRUE(b.genuine) << Code(b);
  Verdict e = VerifySnpReportWithCerts(*go_report_, vcek.get(), Milan().ask, Milan().ark, At(kMid2025));
  EXPECT_TRUE(e.genuine) << Code(e);
}

TEST_F(SnpVerifierTest, LoadsChainFilesAndPicksTheSigningIntermediate) {
  auto vlek = LoadSnpCertChainFiles(kTrusteeDir + "/test-vlek.der", kTrusteeDir + "/milan_ask_ark_asvk.pem");
  ASSERT_TRUE(vlek.ok()) << vlek.status().ToString();
  EXPECT_EQ(crypto::SubjectCommonName(vlek->ask.get()), "SEV-VLEK-Milan");
  EXPECT_EQ(crypto::SubjectCommonName(vlek->ark.get()), "ARK-Milan");
  auto vcek = LoadSnpCertChainFiles(kTrusteeDir + "/test-vcek.der", kTrusteeDir + "/milan_ask_ark_asvk.pem");
  ASSERT_TRUE(vcek.ok());
  EXPECT_EQ(crypto::SubjectCommonName(vcek->ask.get()), "SEV-Milan");
  auto missing = LoadSnpCertChainFiles(kTrusteeDir + "/nope.der", std::nullopt);
  EXPECT_FALSE(missing.ok());
  auto not_leaf = LoadSnpCertChainFiles(kTrusteeDir + "/milan_ask_ark_asvk.pem", std::nullopt);
  EXPECT_FALSE(not_leaf.ok());
  Verdict v = VerifySnpReportWithFiles(*go_report_, kTrusteeDir + "/nope.der", std::nullopt, At(kMid2025));
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "snp_missing_collateral");
  // The report is judged first.
  std::vector<uint8_t> short_report(go_report_->begin(), go_report_->begin() + 100);
  Verdict m = VerifySnpReportWithFiles(short_report, kTrusteeDir + "/nope.der", std::nullopt, At(kMid2025));
  EXPECT_EQ(Code(m), "snp_malformed_report");
  EXPECT_EQ(m.error->message(), "SNP report is 100 bytes, expected 1184");
}

TEST_F(SnpVerifierTest, MissingOrEmptyCollateralIsNotGenuine) {
  Verdict none = VerifySnpReport(*go_report_, std::nullopt, At(kMid2025));
  EXPECT_FALSE(none.genuine);
  EXPECT_EQ(Code(none), "snp_missing_collateral");
  EXPECT_EQ(none.measurements["reported_tcb"]["microcode"], 68);  // still described
  Verdict nodir = VerifySnpReport(*go_report_, kDir + "does-not-exist", At(kMid2025));
  EXPECT_EQ(Code(nodir), "snp_missing_collateral");
  test::TempDir dir("snp-empty");
  const std::filesystem::path tmp = dir.path();
  Verdict empty = VerifySnpReport(*go_report_, tmp.string(), At(kMid2025));
  EXPECT_EQ(Code(empty), "snp_missing_collateral");
  // Chain only, no leaf.
  std::filesystem::copy_file(kGoDir + "/ask_ark_milan.pem", tmp / "ask_ark_milan.pem");
  EXPECT_EQ(Code(VerifySnpReport(*go_report_, tmp.string(), At(kMid2025))), "snp_missing_collateral");
  // The leaf alone is enough: the ASK/ARK are built in.
  std::filesystem::copy_file(kGoDir + "/vcek.der", tmp / "vcek.der");
  std::filesystem::remove(tmp / "ask_ark_milan.pem");
  EXPECT_TRUE(VerifySnpReport(*go_report_, tmp.string(), At(kMid2025)).genuine);
}

TEST_F(SnpVerifierTest, ReportWithTheWrongFolderFailsOnTheBinding) {
  // go-sev-guest's report against trustee's certificates (same Milan chain, other chip/TCB).
  Verdict v = VerifySnpReport(*go_report_, kTrusteeDir, At(kMid2025));
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "snp_tcb_mismatch") << v.error->message();
  // trustee's VCEK report against go-sev-guest's VCEK.
  Verdict w = VerifySnpReport(*vcek_report_, kGoDir, At(kMid2025));
  EXPECT_EQ(Code(w), "snp_tcb_mismatch");
  // The VLEK report against a VCEK: the signing key kind differs.
  Verdict x = VerifySnpReport(*vlek_report_, kGoDir, At(kMid2025));
  EXPECT_EQ(Code(x), "snp_signing_key_mismatch");
  // The VCEK report against the VLEK.
  auto vlek = Der(kTrusteeDir + "/test-vlek.der");
  Verdict y = VerifySnpReportWithCerts(*vcek_report_, vlek.get(), nullptr, nullptr, At(kMid2025));
  EXPECT_EQ(Code(y), "snp_signing_key_mismatch");
}

// ---- Mutations ---------------------------------------------------------------------------

// The code a single-byte flip (xor 0xFF) at `i` must produce: the check that reads the byte.
std::string ExpectedFlipCode(const std::vector<uint8_t>& report, size_t i) {
  const uint32_t version = report[0];
  const bool vcek = ((report[off::kKeyInfo] >> 2) & 7) == 0;
  auto in = [i](size_t b, size_t e) { return i >= b && i < e; };
  if (in(off::kVersion, off::kVersion + 4)) return "snp_malformed_report";
  if (in(off::kSignatureAlgo, off::kSignatureAlgo + 4)) return "snp_unsupported_algo";
  if (in(off::kKeyInfo, off::kReportData)) return "snp_malformed_report";  // reserved bits / reserved0
  if (in(off::kReportedTcb, off::kReportedTcb + 8)) {
    const size_t b = i - off::kReportedTcb;  // Milan layout: 0 bl, 1 tee, 6 snp, 7 ucode
    return (b == 0 || b == 1 || b == 6 || b == 7) ? "snp_tcb_mismatch" : "snp_invalid_signature";
  }
  if (in(version >= 3 ? off::kReserved1 : off::kCpuidFamId, off::kChipId)) return "snp_malformed_report";
  if (in(off::kChipId, off::kChipId + 64)) return vcek ? "snp_hwid_mismatch" : "snp_invalid_signature";
  if (i == off::kCurrentMajor + 1 || i == off::kCommittedMajor + 1) return "snp_malformed_report";
  if (in(version >= 5 ? off::kReserved4 : off::kLaunchMitVector, off::kSignatureR)) return "snp_malformed_report";
  if (in(off::kSignatureReserved, evidence::kSnpReportSize)) return "snp_malformed_report";
  return "snp_invalid_signature";
}

void FlipEveryByte(const std::vector<uint8_t>& report, const std::string& dir, TimePoint at) {
  for (size_t i = 0; i < report.size(); ++i) {
    auto copy = report;
    copy[i] ^= 0xFF;
    Verdict v = VerifySnpReport(copy, dir, at);
    ASSERT_FALSE(v.genuine) << "flip at " << i;
    EXPECT_EQ(Code(v), ExpectedFlipCode(report, i)) << "flip at 0x" << std::hex << i << ": " << v.error->message();
    EXPECT_TRUE(v.tcb_status.empty());
  }
}

TEST_F(SnpVerifierTest, EveryByteFlipOfTheVcekReportFailsWithTheCodeOfTheCheckReadingIt) {
  FlipEveryByte(*go_report_, kGoDir, At(kMid2025));
}

TEST_F(SnpVerifierTest, EveryByteFlipOfTheVlekReportFailsWithTheCodeOfTheCheckReadingIt) {
  FlipEveryByte(*vlek_report_, kTrusteeDir, At(kMid2025));
}

TEST_F(SnpVerifierTest, SingleBitFlipsOfCheckedFields) {
  const TimePoint at = At(kMid2025);
  auto flip = [&](const std::vector<uint8_t>& base, size_t at_off, uint8_t mask) {
    auto c = base;
    c[at_off] ^= mask;
    return c;
  };
  // signing_key VCEK -> VLEK (0 -> 1) and -> none (7).
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kKeyInfo, 0x04), kGoDir, at)), "snp_signing_key_mismatch");
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kKeyInfo, 0x1C), kGoDir, at)), "snp_signing_key_mismatch");
  // VLEK -> VCEK.
  EXPECT_EQ(Code(VerifySnpReport(flip(*vlek_report_, off::kKeyInfo, 0x04), kTrusteeDir, at)),
            "snp_signing_key_mismatch");
  // mask_chip_key set: hwID is not compared, so only the signature catches it.
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kKeyInfo, 0x02), kGoDir, at)), "snp_invalid_signature");
  // author_key_en: signature.
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kKeyInfo, 0x01), kGoDir, at)), "snp_invalid_signature");
  // signature_algo 1 -> 0 / 2.
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kSignatureAlgo, 0x01), kGoDir, at)), "snp_unsupported_algo");
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kSignatureAlgo, 0x03), kGoDir, at)), "snp_unsupported_algo");
  // CPUID says Genoa (model 0x11) on a Milan chain.
  EXPECT_EQ(Code(VerifySnpReport(flip(*vlek_report_, off::kCpuidModId, 0x10), kTrusteeDir, at)),
            "snp_product_mismatch");
  // CPUID stepping is not checked against anything but the signature.
  EXPECT_EQ(Code(VerifySnpReport(flip(*vlek_report_, off::kCpuidStep, 0x01), kTrusteeDir, at)),
            "snp_invalid_signature");
  // Each low bit of each signature component.
  for (size_t i = off::kSignatureR; i < off::kSignatureReserved; ++i) {
    EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, i, 0x01), kGoDir, at)), "snp_invalid_signature") << i;
  }
  // All-zero signature.
  auto zero = *go_report_;
  std::fill(zero.begin() + off::kSignatureR, zero.begin() + off::kSignatureReserved, 0);
  EXPECT_EQ(Code(VerifySnpReport(zero, kGoDir, at)), "snp_invalid_signature");
  // A flipped measurement bit.
  EXPECT_EQ(Code(VerifySnpReport(flip(*go_report_, off::kMeasurement + 47, 0x80), kGoDir, at)),
            "snp_invalid_signature");
  // report_data.
  EXPECT_EQ(Code(VerifySnpReport(flip(*vlek_report_, off::kReportData, 0x01), kTrusteeDir, at)),
            "snp_invalid_signature");
}

TEST_F(SnpVerifierTest, TruncatedOrExtendedReportsAreMalformed) {
  for (size_t n = 0; n < go_report_->size(); ++n) {
    std::span<const uint8_t> cut(go_report_->data(), n);
    Verdict v = VerifySnpReport(cut, kGoDir, At(kMid2025));
    ASSERT_FALSE(v.genuine) << n;
    ASSERT_EQ(Code(v), "snp_malformed_report") << n;
    EXPECT_EQ(v.error->message(), "SNP report is " + std::to_string(n) + " bytes, expected 1184");
    EXPECT_EQ(v.details["parse_error"], "snp_report_size");
  }
  auto longer = *go_report_;
  longer.push_back(0);
  EXPECT_EQ(Code(VerifySnpReport(longer, kGoDir, At(kMid2025))), "snp_malformed_report");
}

// ---- Chain mutations -----------------------------------------------------------------------

std::vector<uint8_t> DerOf(X509* c) {
  auto d = crypto::CertToDer(c);
  EXPECT_TRUE(d.ok());
  return d.value_or(std::vector<uint8_t>{});
}

TEST_F(SnpVerifierTest, EveryChainLinkIsChecked) {
  const TimePoint at = At(kMid2025);
  auto vcek = Der(kGoDir + "/vcek.der");
  auto vlek = Der(kTrusteeDir + "/test-vlek.der");
  // Wrong intermediates and roots.
  EXPECT_EQ(Code(VerifySnpReportWithCerts(*go_report_, vcek.get(), Genoa().ask, Genoa().ark, at)),
            "snp_chain_untrusted");
  EXPECT_EQ(Code(VerifySnpReportWithCerts(*go_report_, vcek.get(), Milan().asvk, Milan().ark, at)),
            "snp_chain_untrusted");
  EXPECT_EQ(Code(VerifySnpReportWithCerts(*vlek_report_, vlek.get(), Milan().ask, Milan().ark, at)),
            "snp_chain_untrusted");
  Verdict wrong_ark = VerifySnpReportWithCerts(*go_report_, vcek.get(), Milan().ask, Genoa().ark, at);
  EXPECT_EQ(Code(wrong_ark), "snp_chain_untrusted");
  EXPECT_NE(wrong_ark.error->message().find("not signed by the pinned ARK-Genoa"), std::string::npos)
      << wrong_ark.error->message();
  // An intermediate posing as the root is not pinned.
  Verdict ask_as_root = VerifySnpReportWithCerts(*go_report_, vcek.get(), Milan().ask, Milan().ask, at);
  EXPECT_EQ(Code(ask_as_root), "snp_chain_untrusted");
  EXPECT_NE(ask_as_root.error->message().find("not one of the pinned AMD roots"), std::string::npos);
  // The VCEK itself as intermediate.
  EXPECT_EQ(Code(VerifySnpReportWithCerts(*go_report_, vcek.get(), vcek.get(), Milan().ark, at)),
            "snp_chain_untrusted");

  // Byte flips in each certificate's signature value (its last bytes) and inside its
  // to-be-signed part: any copy that still parses must be rejected as untrusted.
  struct Link {
    const char* name;
    X509* cert;
  };
  const Link links[] = {{"vcek", vcek.get()}, {"ask", Milan().ask}, {"ark", Milan().ark}};
  for (const Link& l : links) {
    std::vector<uint8_t> der = DerOf(l.cert);
    size_t n_parsed = 0;
    for (size_t i : {der.size() - 1, der.size() - 100, der.size() / 2, size_t{200}, size_t{120}, size_t{60}}) {
      auto bad = der;
      bad[i] ^= 0x01;
      auto c = crypto::CertFromDer(bad);
      if (!c.ok()) continue;
      ++n_parsed;
      X509* leaf = vcek.get();
      X509* ask = Milan().ask;
      X509* ark = Milan().ark;
      if (std::string(l.name) == "vcek") leaf = c->get();
      if (std::string(l.name) == "ask") ask = c->get();
      if (std::string(l.name) == "ark") ark = c->get();
      Verdict v = VerifySnpReportWithCerts(*go_report_, leaf, ask, ark, at);
      EXPECT_FALSE(v.genuine) << l.name << " flip at " << i;
      EXPECT_EQ(Code(v), "snp_chain_untrusted") << l.name << " flip at " << i << ": " << v.error->message();
    }
    EXPECT_GE(n_parsed, 3u) << l.name;
  }
}

TEST_F(SnpVerifierTest, FolderWithATamperedVcekIsRejected) {
  test::TempDir dir("snp-tamper");
  const std::filesystem::path tmp = dir.path();
  auto der = ReadBytes(kGoDir + "/vcek.der");
  der[der.size() - 5] ^= 0x01;
  {
    std::ofstream out(tmp / "vcek.der", std::ios::binary);
    out.write(reinterpret_cast<const char*>(der.data()), static_cast<std::streamsize>(der.size()));
  }
  Verdict v = VerifySnpReport(*go_report_, tmp.string(), At(kMid2025));
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "snp_chain_untrusted");
  // A non-certificate .der file next to it is ignored, not fatal.
  {
    std::ofstream out(tmp / "junk.der", std::ios::binary);
    out << "not a certificate";
  }
  std::filesystem::copy_file(kGoDir + "/vcek.der", tmp / "z-good.der");
  EXPECT_TRUE(VerifySnpReport(*go_report_, tmp.string(), At(kMid2025)).genuine);
}

}  // namespace
}  // namespace vouch::attest
