// SEV-SNP verifier tests against a chain the test makes itself (its own ARK/ASK/ASVK, trusted
// through VerifySnpReportWithRoots), so that reports can be re-signed after changing one
// field and every binding check (Turin layout, fmcSPL, hwID forms, mask_chip_key, product,
// key types, signature schemes) can be reached with a valid signature.
#include <gtest/gtest.h>

#include <openssl/rsa.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attest/amd_roots.h"
#include "attest/snp_verifier.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/snp_report.h"

namespace vouch::attest {
namespace {

namespace off = evidence::snp_offsets;
using crypto::EvpPkeyPtr;
using crypto::X509Ptr;

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("<none>"); }

std::vector<uint8_t> DerInt(uint8_t v) {
  if (v < 0x80) return {0x02, 0x01, v};
  return {0x02, 0x02, 0x00, v};
}
std::vector<uint8_t> DerIa5(const std::string& s) {
  std::vector<uint8_t> out(2 + s.size());
  out[0] = 0x16;
  out[1] = static_cast<uint8_t>(s.size());
  std::copy(s.begin(), s.end(), out.begin() + 2);
  return out;
}

void AddExt(X509* cert, const std::string& oid, const std::vector<uint8_t>& value) {
  crypto::Asn1ObjectPtr obj(OBJ_txt2obj(oid.c_str(), 1));
  ASSERT_TRUE(obj);
  crypto::Asn1OctetStringPtr data(ASN1_OCTET_STRING_new());
  ASSERT_EQ(ASN1_OCTET_STRING_set(data.get(), value.data(), static_cast<int>(value.size())), 1);
  crypto::X509ExtensionPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), 0, data.get()));
  ASSERT_TRUE(ext);
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

void AddNidExt(X509* cert, int nid, const char* value) {
  crypto::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, nullptr, nid, value));
  ASSERT_TRUE(ext);
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

enum class SigScheme { kPssSha384, kPkcs1Sha384, kPssSha256 };

struct CertSpec {
  std::string cn;
  X509* issuer = nullptr;  // null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  EVP_PKEY* key = nullptr;
  bool ca = false;
  long not_before_s = -3600;  // relative to now
  long not_after_s = 365L * 24 * 3600;
  SigScheme scheme = SigScheme::kPssSha384;
};

X509Ptr MakeCert(const CertSpec& s) {
  X509Ptr c(X509_new());
  EXPECT_TRUE(c);
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), 0);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Test AMD"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(c.get(), s.issuer ? X509_get_subject_name(s.issuer) : name);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), s.not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), s.not_after_s);
  X509_set_pubkey(c.get(), s.key);
  if (s.ca) {
    AddNidExt(c.get(), NID_basic_constraints, "critical,CA:TRUE");
    AddNidExt(c.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  return c;
}

void Sign(X509* c, EVP_PKEY* key, SigScheme scheme) {
  crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = scheme == SigScheme::kPssSha256 ? EVP_sha256() : EVP_sha384();
  ASSERT_EQ(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key), 1);
  if (scheme != SigScheme::kPkcs1Sha384) {
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, scheme == SigScheme::kPssSha256 ? 32 : 48), 1);
    ASSERT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md), 1);
  }
  ASSERT_GT(X509_sign_ctx(c, ctx.get()), 0);
}

struct LeafSpec {
  bool vlek = false;
  std::string product_name = "Turin-C1";
  std::optional<uint8_t> bl = 4, tee = 1, snp = 22, ucode = 0x55, fmc = 3;
  std::vector<uint8_t> hwid;  // extension value as stored; empty: no extension
  bool rsa_key = false;
  long not_after_s = 365L * 24 * 3600;
  SigScheme scheme = SigScheme::kPssSha384;
};

class SnpSyntheticTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ark_key = crypto::GenerateKey(crypto::KeyType::kRsa2048);
    auto ask_key = crypto::GenerateKey(crypto::KeyType::kRsa2048);
    auto asvk_key = crypto::GenerateKey(crypto::KeyType::kRsa2048);
    auto leaf_key = crypto::GenerateKey(crypto::KeyType::kEcP384);
    auto other_leaf_key = crypto::GenerateKey(crypto::KeyType::kEcP384);
    auto rsa_leaf_key = crypto::GenerateKey(crypto::KeyType::kRsa2048);
    ASSERT_TRUE(ark_key.ok() && ask_key.ok() && asvk_key.ok() && leaf_key.ok() && other_leaf_key.ok() &&
                rsa_leaf_key.ok());
    s_ = new Shared;
    s_->ark_key = std::move(*ark_key);
    s_->ask_key = std::move(*ask_key);
    s_->asvk_key = std::move(*asvk_key);
    s_->leaf_key = std::move(*leaf_key);
    s_->other_leaf_key = std::move(*other_leaf_key);
    s_->rsa_leaf_key = std::move(*rsa_leaf_key);
    s_->ark = MakeCert({"ARK-Turin", nullptr, nullptr, s_->ark_key.get(), true});
    Sign(s_->ark.get(), s_->ark_key.get(), SigScheme::kPssSha384);
    s_->ask = MakeCert({"SEV-Turin", s_->ark.get(), s_->ark_key.get(), s_->ask_key.get(), true});
    Sign(s_->ask.get(), s_->ark_key.get(), SigScheme::kPssSha384);
    s_->asvk = MakeCert({"SEV-VLEK-Turin", s_->ark.get(), s_->ark_key.get(), s_->asvk_key.get(), true});
    Sign(s_->asvk.get(), s_->ark_key.get(), SigScheme::kPssSha384);
    s_->roots.push_back(AmdRootSet{evidence::SnpProduct::kTurin, s_->ark.get(), s_->ask.get(), s_->asvk.get()});
    for (size_t i = 0; i < 64; ++i) s_->chip_id[i] = static_cast<uint8_t>(0xC0 ^ i);
  }
  static void TearDownTestSuite() { delete s_; }

  struct Shared {
    EvpPkeyPtr ark_key, ask_key, asvk_key, leaf_key, other_leaf_key, rsa_leaf_key;
    X509Ptr ark, ask, asvk;
    std::vector<AmdRootSet> roots;
    std::array<uint8_t, 64> chip_id{};
  };
  static Shared* s_;

  static std::vector<uint8_t> RawHwid() { return {s_->chip_id.begin(), s_->chip_id.end()}; }

  static X509Ptr Leaf(const LeafSpec& spec) {
    EVP_PKEY* key = spec.rsa_key ? s_->rsa_leaf_key.get() : s_->leaf_key.get();
    X509* issuer = spec.vlek ? s_->asvk.get() : s_->ask.get();
    EVP_PKEY* issuer_key = spec.vlek ? s_->asvk_key.get() : s_->ask_key.get();
    CertSpec cs{spec.vlek ? "SEV-VLEK" : "SEV-VCEK", issuer, issuer_key, key, false};
    cs.not_after_s = spec.not_after_s;
    X509Ptr c = MakeCert(cs);
    const std::string p = "1.3.6.1.4.1.3704.1.";
    AddExt(c.get(), p + "1", DerInt(1));
    if (!spec.product_name.empty()) AddExt(c.get(), p + "2", DerIa5(spec.product_name));
    if (spec.bl) AddExt(c.get(), p + "3.1", DerInt(*spec.bl));
    if (spec.tee) AddExt(c.get(), p + "3.2", DerInt(*spec.tee));
    if (spec.snp) AddExt(c.get(), p + "3.3", DerInt(*spec.snp));
    if (spec.ucode) AddExt(c.get(), p + "3.8", DerInt(*spec.ucode));
    if (spec.fmc) AddExt(c.get(), p + "3.9", DerInt(*spec.fmc));
    if (!spec.hwid.empty()) AddExt(c.get(), p + "4", spec.hwid);
    if (spec.vlek) AddExt(c.get(), p + "5", DerIa5("CN=test-csp"));
    Sign(c.get(), issuer_key, spec.scheme);
    return c;
  }

  // A v3 Turin report: reported_tcb fmc 3, bl 4, tee 1, snp 22, ucode 0x55 (Turin layout).
  static std::vector<uint8_t> Report(bool vlek = false, bool mask_chip_key = false) {
    std::vector<uint8_t> b(evidence::kSnpReportSize, 0);
    b[off::kVersion] = 3;
    b[off::kPolicy + 2] = 0x03;  // SMT, reserved bit 17
    b[off::kSignatureAlgo] = 1;
    b[off::kKeyInfo] = static_cast<uint8_t>((vlek ? 1 : 0) << 2 | (mask_chip_key ? 2 : 0));
    for (size_t i = 0; i < 48; ++i) b[off::kMeasurement + i] = static_cast<uint8_t>(i);
    const uint8_t tcb[8] = {3, 4, 1, 22, 0, 0, 0, 0x55};
    for (size_t i = 0; i < 8; ++i) b[off::kReportedTcb + i] = tcb[i];
    b[off::kCpuidFamId] = 0x1A;
    b[off::kCpuidModId] = 0x02;
    b[off::kCpuidStep] = 0x01;
    if (!mask_chip_key) std::copy(s_->chip_id.begin(), s_->chip_id.end(), b.begin() + off::kChipId);
    return b;
  }

  static void SignReport(std::vector<uint8_t>& b, EVP_PKEY* key) {
    auto der = crypto::Sign(key, std::span<const uint8_t>(b).first(evidence::kSnpSignedSize), crypto::DigestAlg::kSha384);
    ASSERT_TRUE(der.ok());
    auto rs = crypto::EcdsaDerToRaw(*der, 48);
    ASSERT_TRUE(rs.ok());
    std::fill(b.begin() + off::kSignatureR, b.end(), 0);
    for (size_t i = 0; i < 48; ++i) {
      b[off::kSignatureR + i] = (*rs)[47 - i];
      b[off::kSignatureS + i] = (*rs)[95 - i];
    }
  }

  static std::vector<uint8_t> Signed(std::vector<uint8_t> b, EVP_PKEY* key = nullptr) {
    SignReport(b, key ? key : s_->leaf_key.get());
    return b;
  }

  static Verdict Verify(const std::vector<uint8_t>& report, X509* leaf, X509* ask = nullptr) {
    return VerifySnpReportWithRoots(report, leaf, ask, nullptr, std::chrono::system_clock::now(), s_->roots);
  }
};
SnpSyntheticTest::Shared* SnpSyntheticTest::s_ = nullptr;

TEST_F(SnpSyntheticTest, TurinVcekReportVerifiesWithTheTurinTcbLayout) {
  LeafSpec spec;
  spec.hwid = RawHwid();
  X509Ptr leaf = Leaf(spec);
  Verdict v = Verify(Signed(Report()), leaf.get());
  ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.details["product"], "Turin");
  EXPECT_EQ(v.details["signing_key"], "vcek");
  EXPECT_EQ(v.measurements["reported_tcb"]["fmc"], 3);
  EXPECT_EQ(v.measurements["reported_tcb"]["bootloader"], 4);
  EXPECT_EQ(v.measurements["reported_tcb"]["tee"], 1);
  EXPECT_EQ(v.measurements["reported_tcb"]["snp"], 22);
  EXPECT_EQ(v.measurements["reported_tcb"]["microcode"], 0x55);
  // The same chain is not trusted by the built-in AMD roots.
  Verdict b = VerifySnpReportWithCerts(Signed(Report()), leaf.get(), s_->ask.get(), s_->ark.get(),
                                       std::chrono::system_clock::now());
  EXPECT_EQ(Code(b), "snp_chain_untrusted");
}

TEST_F(SnpSyntheticTest, HwidAcceptedRawOrAsOctetString) {
  LeafSpec spec;
  spec.hwid.assign(2 + s_->chip_id.size(), 0);
  spec.hwid[0] = 0x04;
  spec.hwid[1] = 0x40;
  std::copy(s_->chip_id.begin(), s_->chip_id.end(), spec.hwid.begin() + 2);
  X509Ptr leaf = Leaf(spec);
  Verdict v = Verify(Signed(Report()), leaf.get());
  EXPECT_TRUE(v.genuine) << Code(v);
}

TEST_F(SnpSyntheticTest, HwidChecks) {
  LeafSpec other;
  other.hwid = RawHwid();
  other.hwid[10] ^= 1;
  X509Ptr leaf = Leaf(other);
  EXPECT_EQ(Code(Verify(Signed(Report()), leaf.get())), "snp_hwid_mismatch");
  // mask_chip_key: chip_id is zero and hwID not compared.
  Verdict masked = Verify(Signed(Report(false, true)), leaf.get());
  EXPECT_TRUE(masked.genuine) << Code(masked);
  LeafSpec short_hwid;
  short_hwid.hwid = std::vector<uint8_t>(63, 1);
  X509Ptr bad = Leaf(short_hwid);
  EXPECT_EQ(Code(Verify(Signed(Report()), bad.get())), "snp_malformed_certificate");
  LeafSpec no_hwid;
  X509Ptr none = Leaf(no_hwid);
  EXPECT_EQ(Code(Verify(Signed(Report()), none.get())), "snp_malformed_certificate");
}

TEST_F(SnpSyntheticTest, EverySplIsComparedWithReportedTcb) {
  struct Case {
    const char* name;
    std::optional<uint8_t> LeafSpec::*field;
  };
  const Case cases[] = {{"bl", &LeafSpec::bl},   {"tee", &LeafSpec::tee}, {"snp", &LeafSpec::snp},
                        {"ucode", &LeafSpec::ucode}, {"fmc", &LeafSpec::fmc}};
  for (const Case& c : cases) {
    LeafSpec differs;
    differs.hwid = RawHwid();
    differs.*c.field = static_cast<uint8_t>(*(differs.*c.field) + 1);
    X509Ptr leaf = Leaf(differs);
    Verdict v = Verify(Signed(Report()), leaf.get());
    EXPECT_EQ(Code(v), "snp_tcb_mismatch") << c.name;
    LeafSpec missing;
    missing.hwid = RawHwid();
    missing.*c.field = std::nullopt;
    X509Ptr leaf2 = Leaf(missing);
    EXPECT_EQ(Code(Verify(Signed(Report()), leaf2.get())), "snp_malformed_certificate") << c.name;
  }
  // A reported_tcb byte that is reserved in the Turin layout is covered only by the signature.
  LeafSpec ok;
  ok.hwid = RawHwid();
  X509Ptr leaf = Leaf(ok);
  auto r = Signed(Report());
  r[off::kReportedTcb + 5] ^= 1;
  EXPECT_EQ(Code(Verify(r, leaf.get())), "snp_invalid_signature");
  // Each checked reported_tcb byte (Turin: 0 fmc, 1 bl, 2 tee, 3 snp, 7 ucode), re-signed.
  for (size_t i : {0u, 1u, 2u, 3u, 7u}) {
    auto m = Report();
    m[off::kReportedTcb + i] ^= 1;
    EXPECT_EQ(Code(Verify(Signed(m), leaf.get())), "snp_tcb_mismatch") << i;
  }
}

TEST_F(SnpSyntheticTest, ProductMustAgreeAcrossCpuidCertificateAndRoot) {
  LeafSpec genoa;
  genoa.hwid = RawHwid();
  genoa.product_name = "Genoa-B1";
  X509Ptr leaf = Leaf(genoa);
  EXPECT_EQ(Code(Verify(Signed(Report()), leaf.get())), "snp_product_mismatch");
  LeafSpec turin;
  turin.hwid = RawHwid();
  X509Ptr good = Leaf(turin);
  auto milan_cpuid = Report();
  milan_cpuid[off::kCpuidFamId] = 0x19;
  milan_cpuid[off::kCpuidModId] = 0x01;
  EXPECT_EQ(Code(Verify(Signed(milan_cpuid), good.get())), "snp_product_mismatch");
  // No productName: the root's product decides.
  LeafSpec unnamed;
  unnamed.hwid = RawHwid();
  unnamed.product_name.clear();
  X509Ptr anon = Leaf(unnamed);
  EXPECT_TRUE(Verify(Signed(Report()), anon.get()).genuine);
}

TEST_F(SnpSyntheticTest, VlekUnderAsvk) {
  LeafSpec vlek;
  vlek.vlek = true;
  X509Ptr leaf = Leaf(vlek);
  Verdict v = Verify(Signed(Report(true)), leaf.get());
  ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.details["signing_key"], "vlek");
  EXPECT_EQ(v.details["csp_id"], "CN=test-csp");
  // A VLEK-signed report presented with the VCEK-kind certificate, and the reverse.
  LeafSpec vcek;
  vcek.hwid = RawHwid();
  X509Ptr vcek_leaf = Leaf(vcek);
  EXPECT_EQ(Code(Verify(Signed(Report(true)), vcek_leaf.get())), "snp_signing_key_mismatch");
  EXPECT_EQ(Code(Verify(Signed(Report(false)), leaf.get())), "snp_signing_key_mismatch");
  // The VLEK given with the ASK instead of the ASVK.
  EXPECT_EQ(Code(Verify(Signed(Report(true)), leaf.get(), s_->ask.get())), "snp_chain_untrusted");
}

TEST_F(SnpSyntheticTest, KeyAndSignatureSchemes) {
  LeafSpec rsa;
  rsa.hwid = RawHwid();
  rsa.rsa_key = true;
  X509Ptr rsa_leaf = Leaf(rsa);
  EXPECT_EQ(Code(Verify(Signed(Report()), rsa_leaf.get())), "snp_unsupported_algo");
  LeafSpec pkcs1;
  pkcs1.hwid = RawHwid();
  pkcs1.scheme = SigScheme::kPkcs1Sha384;
  X509Ptr p1 = Leaf(pkcs1);
  EXPECT_EQ(Code(Verify(Signed(Report()), p1.get())), "snp_chain_untrusted");
  LeafSpec sha256;
  sha256.hwid = RawHwid();
  sha256.scheme = SigScheme::kPssSha256;
  X509Ptr p2 = Leaf(sha256);
  EXPECT_EQ(Code(Verify(Signed(Report()), p2.get())), "snp_chain_untrusted");
  // Signed by another P-384 key.
  LeafSpec ok;
  ok.hwid = RawHwid();
  X509Ptr leaf = Leaf(ok);
  EXPECT_EQ(Code(Verify(Signed(Report(), s_->other_leaf_key.get()), leaf.get())), "snp_invalid_signature");
}

TEST_F(SnpSyntheticTest, ExpiredLeafIsRejected) {
  LeafSpec old;
  old.hwid = RawHwid();
  old.not_after_s = -60;
  X509Ptr leaf = Leaf(old);
  Verdict v = Verify(Signed(Report()), leaf.get());
  EXPECT_EQ(Code(v), "snp_cert_expired");
  EXPECT_NE(v.error->message().find("verification time is"), std::string::npos);
}

TEST_F(SnpSyntheticTest, V5ReportVerifies) {
  LeafSpec spec;
  spec.hwid = RawHwid();
  X509Ptr leaf = Leaf(spec);
  auto r = Report();
  r[off::kVersion] = 5;
  r[off::kLaunchMitVector] = 0x11;
  r[off::kCurrentMitVector] = 0x13;
  Verdict v = Verify(Signed(r), leaf.get());
  ASSERT_TRUE(v.genuine) << Code(v);
  EXPECT_EQ(v.details["launch_mit_vector"], 0x11);
  EXPECT_EQ(v.details["current_mit_vector"], 0x13);
}

}  // namespace
}  // namespace vouch::attest
