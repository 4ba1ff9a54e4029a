#include "attest/sim_vendor.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "attest/pck_extension.h"
#include "base/encoding.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"
#include "testing/temp_dir.h"

namespace vouch::attest {
namespace {

namespace fs = std::filesystem;

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("(none)"); }

evidence::SgxReportBody EnclaveBody() {
  evidence::SgxReportBody b;
  for (size_t i = 0; i < 32; ++i) {
    b.mr_enclave[i] = static_cast<uint8_t>(i);
    b.mr_signer[i] = static_cast<uint8_t>(0x80 + i);
  }
  b.isv_prod_id = 7;
  b.isv_svn = 3;
  b.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit;
  return b;
}

struct SimFixture {
  test::TempDir tmp{"sim-test"};  // removed with the fixture
  std::string dir;
  std::unique_ptr<SimVendor> vendor;
  std::vector<uint8_t> quote;
};

SimFixture MakeSim(const std::string& name, SimVendorOptions options) {
  SimFixture f;
  f.dir = f.tmp.File(name);
  auto v = SimVendor::Create(f.dir, options);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  f.vendor = std::move(*v);
  const uint8_t rd[] = {0xAB, 0xCD, 0xEF};
  auto q = f.vendor->platform().Quote(EnclaveBody(), rd);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  f.quote = std::move(*q);
  return f;
}

TEST(SimVendor, EachTcbOptionGivesItsStatusAndIsMarkedInsecure) {
  struct Case {
    SimTcb tcb;
    const char* status;
    std::vector<std::string> advisories;
    int exit;
  };
  const Case cases[] = {
      {SimTcb::kUpToDate, "UpToDate", {}, 0},
      {SimTcb::kSwHardeningNeeded, "SWHardeningNeeded", {kSimAdvisoryId}, 0},
      {SimTcb::kOutOfDate, "OutOfDate", {kSimAdvisoryId, "INTEL-SA-00828"}, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(SimTcbName(c.tcb));
    SimVendorOptions o;
    o.tcb = c.tcb;
    auto f = MakeSim(std::string(SimTcbName(c.tcb)), o);
    DcapTrustOptions trust;
    trust.allow_sim = true;
    Verdict v = VerifyDcapQuote(f.quote, f.dir, std::chrono::system_clock::now(), trust);
    ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
    EXPECT_TRUE(v.insecure_sim);
    EXPECT_EQ(v.tcb_status, c.status);
    EXPECT_EQ(v.advisory_ids, c.advisories);
    EXPECT_EQ(v.ExitCode(), c.exit);
    EXPECT_EQ(v.details["trust_root"], "sim");
    EXPECT_EQ(v.measurements["isvprodid"], 7);
    EXPECT_EQ(v.measurements["isvsvn"], 3);
    EXPECT_EQ(v.measurements["debug"], false);
    EXPECT_EQ(v.measurements["mrenclave"], HexEncode(EnclaveBody().mr_enclave));
    EXPECT_EQ(v.report_data_hex.substr(0, 8), "abcdef00");
    EXPECT_EQ(v.ToJson()["insecure_sim"], true);

    // Without allow_sim the production root is used: the sim chain is untrusted.
    Verdict strict = VerifyDcapQuote(f.quote, f.dir, std::chrono::system_clock::now());
    EXPECT_FALSE(strict.genuine);
    EXPECT_EQ(Code(strict), "chain_untrusted");
    // A sim root passed explicitly still needs allow_sim.
    DcapTrustOptions explicit_root;
    explicit_root.trust_root = f.vendor->root();
    Verdict no_allow = VerifyDcapQuote(f.quote, f.dir, std::chrono::system_clock::now(), explicit_root);
    EXPECT_FALSE(no_allow.genuine);
    EXPECT_EQ(Code(no_allow), "sim_not_allowed");
  }
}

TEST(SimVendor, RevokedPlatformIsNotGenuine) {
  SimVendorOptions o;
  o.revoked = true;
  auto f = MakeSim("revoked", o);
  DcapTrustOptions trust;
  trust.allow_sim = true;
  Verdict v = VerifyDcapQuote(f.quote, f.dir, std::chrono::system_clock::now(), trust);
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "pck_revoked");
  EXPECT_TRUE(v.insecure_sim);
  EXPECT_EQ(v.ExitCode(), 2);
}

TEST(SimVendor, QuoteIsARealSgxQuoteV3) {
  auto f = MakeSim("format", {});
  auto q = evidence::ParseSgxQuoteV3(f.quote);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->cert_data.type, 5);
  EXPECT_EQ(q->trailing_bytes, 0u);
  EXPECT_EQ(q->qe_auth_data.size(), 32u);
  EXPECT_EQ(q->sgx_report->mr_enclave, EnclaveBody().mr_enclave);
  EXPECT_EQ(q->qe_report.isv_svn, kSimQeIsvSvn);
  auto chain = crypto::CertsFromPem(ToString(q->cert_data.data));
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 3u);
  EXPECT_TRUE(IsSimRootCa((*chain)[2].get()));
  EXPECT_EQ(crypto::SubjectCommonName((*chain)[2].get()), kSimRootCommonName);
  auto ext = ParsePckSgxExtension((*chain)[0].get());
  ASSERT_TRUE(ext.ok()) << ext.status().ToString();
  EXPECT_EQ(ext->fmspc, f.vendor->platform().fmspc());
  EXPECT_EQ(ext->comp_svns, f.vendor->platform().comp_svns());
  EXPECT_EQ(ext->pcesvn, f.vendor->platform().pcesvn());
  for (const char* file : {kTcbInfoFile, kQeIdentityFile, kRootCaCrlFile, kPckCrlFile, kTcbSignChainFile,
                           kTrustedRootFile, kPckCertFile, kPckSignChainFile}) {
    EXPECT_TRUE(fs::exists(f.dir + "/" + file)) << file;
  }
  auto perms = fs::status(f.dir + "/" + kSimSecretsFile).permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  // The raw-body overload gives the same body.
  auto enc = evidence::EncodeSgxReportBody(EnclaveBody());
  auto q2 = f.vendor->platform().Quote(std::span<const uint8_t>(enc), std::span<const uint8_t>());
  ASSERT_TRUE(q2.ok());
  auto p2 = evidence::ParseSgxQuoteV3(*q2);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->sgx_report->mr_signer, EnclaveBody().mr_signer);
  const uint8_t too_long[65] = {};
  EXPECT_FALSE(f.vendor->platform().Quote(EnclaveBody(), too_long).ok());
}

TEST(SimVendor, LoadGivesAPlatformWhoseQuotesVerify) {
  auto f = MakeSim("load", {});
  auto loaded = SimVendor::Load(f.dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  auto q = (*loaded)->platform().Quote(EnclaveBody(), std::span<const uint8_t>());
  ASSERT_TRUE(q.ok());
  DcapTrustOptions trust;
  trust.allow_sim = true;
  Verdict v = VerifyDcapQuote(*q, f.dir, std::chrono::system_clock::now(), trust);
  EXPECT_TRUE(v.genuine) << Code(v);
  EXPECT_FALSE(SimVendor::Create(f.dir, {}).ok());  // never overwrites
  EXPECT_FALSE(SimVendor::Load(f.dir + "/nope").ok());
}

TEST(SimVendor, CollateralExpiresAfterItsValidity) {
  SimVendorOptions o;
  o.collateral_validity = std::chrono::hours(24 * 30);
  auto f = MakeSim("expiry", o);
  DcapTrustOptions trust;
  trust.allow_sim = true;
  auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(VerifyDcapQuote(f.quote, f.dir, now, trust).genuine);
  Verdict late = VerifyDcapQuote(f.quote, f.dir, now + std::chrono::hours(24 * 31), trust);
  EXPECT_FALSE(late.genuine);
  EXPECT_TRUE(Code(late) == "crl_expired" || Code(late) == "collateral_expired") << Code(late);
}

// CollateralValidUntil is the first expiry: quotes verify up to it and not after it.
TEST(SimVendor, CollateralValidUntilIsTheFirstExpiry) {
  SimVendorOptions o;
  o.now = std::chrono::system_clock::now() - std::chrono::hours(1);
  o.collateral_validity = std::chrono::hours(24 * 30);
  auto f = MakeSim("valid-until", o);
  auto collateral = DcapCollateral::LoadDir(f.dir);
  ASSERT_TRUE(collateral.ok());
  DcapTrustOptions trust;
  trust.allow_sim = true;
  auto verifier = DcapVerifier::Create(*collateral, trust);
  ASSERT_TRUE(verifier.ok());
  EXPECT_TRUE((*verifier)->CollateralStatus().ok()) << (*verifier)->CollateralStatus().ToString();
  TimePoint until = (*verifier)->CollateralValidUntil();
  auto want = *o.now + o.collateral_validity;
  EXPECT_LE(std::chrono::abs(until - want), std::chrono::seconds(1));
  EXPECT_TRUE((*verifier)->Verify(f.quote, until - std::chrono::seconds(1)).genuine);
  EXPECT_FALSE((*verifier)->Verify(f.quote, until + std::chrono::seconds(1)).genuine);
}

TEST(SimLocalAttestation, ReportMacVerifiesOnlyForItsTarget) {
  auto f = MakeSim("local", {});
  const SimPlatform& p = f.vendor->platform();
  std::array<uint8_t, 32> target{};
  target.fill(0x42);
  std::array<uint8_t, 32> other{};
  other.fill(0x43);
  auto report = p.MakeReport(EnclaveBody(), target);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->size(), 432u);
  EXPECT_TRUE(p.VerifyReport(*report, target));
  EXPECT_FALSE(p.VerifyReport(*report, other));
  auto parsed = evidence::ParseSgxReport(*report);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->body.mr_enclave, EnclaveBody().mr_enclave);
  // Every flipped bit of body or MAC breaks it (the KEYID is not MACed, as on hardware).
  for (size_t i = 0; i < report->size(); ++i) {
    if (i >= evidence::sgx_report_offsets::kKeyId && i < evidence::sgx_report_offsets::kMac) continue;
    auto m = *report;
    m[i] ^= 0x01;
    EXPECT_FALSE(p.VerifyReport(m, target)) << i;
  }
  EXPECT_FALSE(p.VerifyReport(std::span<const uint8_t>(*report).first(431), target));
  // The key depends on the target and is stable across loads.
  auto k1 = p.ReportKey(target);
  auto k2 = p.ReportKey(other);
  EXPECT_EQ(k1.size(), 16u);
  EXPECT_FALSE(crypto::ConstantTimeEquals(k1.span(), k2.span()));
  auto loaded = SimVendor::Load(f.dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE((*loaded)->platform().VerifyReport(*report, target));
  // Another platform cannot forge it.
  auto g = MakeSim("local2", {});
  EXPECT_FALSE(g.vendor->platform().VerifyReport(*report, target));
}

TEST(SimLocalAttestation, CmacMatchesRfc4493) {
  // RFC 4493 example 2: AES-128 key 2b7e1516..., message 6bc1bee2... (16 bytes).
  auto key = HexDecode("2b7e151628aed2a6abf7158809cf4f3c");
  auto msg = HexDecode("6bc1bee22e409f96e93d7e117393172a");
  ASSERT_TRUE(key.ok() && msg.ok());
  auto mac = SimAesCmac128(crypto::SecretBytes(std::span<const uint8_t>(*key)), *msg);
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(HexEncode(*mac), "070a16b46b4d4144f79bdd9dd04a287c");
}

TEST(SimVendor, ParsesTcbNames) {
  EXPECT_EQ(*ParseSimTcb("out-of-date"), SimTcb::kOutOfDate);
  EXPECT_EQ(*ParseSimTcb("sw-hardening-needed"), SimTcb::kSwHardeningNeeded);
  EXPECT_FALSE(ParseSimTcb("fresh").ok());
}

}  // namespace
}  // namespace vouch::attest
