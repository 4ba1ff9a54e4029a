// The TDX and SEV-SNP sims (sim_vendor.h, sim_tsm.h) against the real verifiers: their evidence
// is genuine only where sim is allowed, carries the measurements asked for, and any tampering
// fails.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "attest/sim_agent.h"
#include "attest/sim_pki.h"
#include "attest/sim_tsm.h"
#include "attest/sim_vendor.h"
#include "attest/snp_verifier.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"
#include "evidence/snp_cert_table.h"
#include "evidence/snp_report.h"
#include "testing/temp_dir.h"

namespace vouch::attest {
namespace {

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("(genuine)"); }
std::string Why(const Verdict& v) { return v.error.has_value() ? v.error->ToString() : std::string(); }
TimePoint Now() { return std::chrono::system_clock::now(); }

template <size_t N>
std::array<uint8_t, N> Filled(uint8_t start) {
  std::array<uint8_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(start + i);
  return a;
}

DcapTrustOptions AllowSim() {
  DcapTrustOptions t;
  t.allow_sim = true;
  return t;
}

struct Folder {
  test::TempDir tmp{"sim-platforms"};
  std::string dir;
  std::unique_ptr<SimVendor> vendor;
};

std::unique_ptr<Folder> MakeFolder(SimTee tee, SimVendorOptions o = {}) {
  auto f = std::make_unique<Folder>();
  f->dir = f->tmp.File(std::string(SimTeeName(tee)));
  o.tee = tee;
  auto v = SimVendor::Create(f->dir, o);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  if (v.ok()) f->vendor = std::move(*v);
  return f;
}

// One sev-snp folder per binary: its RSA-4096 keys take a while to generate.
const Folder& SnpFolder() {
  static const std::unique_ptr<Folder> f = MakeFolder(SimTee::kSevSnp);
  return *f;
}

// ---- TDX --------------------------------------------------------------------------------------

SimTdxQuoteOptions TdOptions() {
  SimTdxQuoteOptions o;
  o.mr_td = Filled<48>(0x10);
  o.rtmr[0] = Filled<48>(0x40);
  o.rtmr[3] = Filled<48>(0x70);
  return o;
}

TEST(SimTdx, QuoteV4IsGenuineUnderAllowSimWithItsMeasurements) {
  auto f = MakeFolder(SimTee::kTdx);
  ASSERT_TRUE(f->vendor);
  EXPECT_EQ(f->vendor->tee(), SimTee::kTdx);
  const uint8_t rd[] = {1, 2, 3};
  auto q = f->vendor->platform().TdxQuote(TdOptions(), rd);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto parsed = evidence::ParseTdxQuoteV4(*q);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->outer_cert_data_type, 6);
  EXPECT_EQ(parsed->cert_data.type, 5);
  EXPECT_EQ(parsed->trailing_bytes, 0u);

  Verdict v = VerifyDcapQuote(*q, f->dir, Now(), AllowSim());
  ASSERT_TRUE(v.genuine) << Why(v);
  EXPECT_TRUE(v.insecure_sim);
  EXPECT_EQ(v.platform, Platform::kTdx);
  EXPECT_EQ(v.tcb_status, "UpToDate");
  EXPECT_TRUE(v.advisory_ids.empty());
  EXPECT_EQ(v.measurements["mrtd"], HexEncode(Filled<48>(0x10)));
  EXPECT_EQ(v.measurements["rtmr0"], HexEncode(Filled<48>(0x40)));
  EXPECT_EQ(v.measurements["rtmr1"], std::string(96, '0'));
  EXPECT_EQ(v.measurements["rtmr3"], HexEncode(Filled<48>(0x70)));
  EXPECT_EQ(v.measurements["debug"], false);
  EXPECT_EQ(v.report_data_hex.substr(0, 8), "01020300");
  EXPECT_EQ(v.details["tdx_module_id"], "TDX_01");
  EXPECT_EQ(v.details["tdx_module_tcb_status"], "UpToDate");
  EXPECT_EQ(v.details["qe_tcb_status"], "UpToDate");
  EXPECT_EQ(v.details["quote_version"], 4);
}

TEST(SimTdx, QuoteV5WithTdReport10And15IsGenuine) {
  auto f = MakeFolder(SimTee::kTdx);
  for (bool v15 : {false, true}) {
    SCOPED_TRACE(v15 ? "TD report 1.5" : "TD report 1.0");
    SimTdxQuoteOptions o = TdOptions();
    o.version = 5;
    o.td_report_15 = v15;
    o.debug = true;
    auto q = f->vendor->platform().TdxQuote(o, {});
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    auto parsed = evidence::ParseTdxQuoteV5(*q);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(parsed->body_type, v15 ? evidence::QuoteBodyType::kTdReport15 : evidence::QuoteBodyType::kTdReport10);
    Verdict v = VerifyDcapQuote(*q, f->dir, Now(), AllowSim());
    ASSERT_TRUE(v.genuine) << Why(v);
    EXPECT_TRUE(v.insecure_sim);
    EXPECT_EQ(v.tcb_status, "UpToDate");
    EXPECT_EQ(v.measurements["debug"], true);
    EXPECT_EQ(v.measurements.contains("mrservicetd"), v15);
    EXPECT_EQ(v.details["quote_version"], 5);
  }
  EXPECT_EQ(f->vendor->platform().TdxQuote(SimTdxQuoteOptions{.version = 4, .td_report_15 = true}, {}).status().reason(),
            "invalid_quote_version");
  EXPECT_EQ(f->vendor->platform().TdxQuote(SimTdxQuoteOptions{.version = 3}, {}).status().reason(), "invalid_quote_version");
}

TEST(SimTdx, RefusedWithoutAllowSim) {
  auto f = MakeFolder(SimTee::kTdx);
  auto q = f->vendor->platform().TdxQuote(TdOptions(), {});
  ASSERT_TRUE(q.ok());
  Verdict v = VerifyDcapQuote(*q, f->dir, Now());
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "chain_untrusted");
  DcapTrustOptions explicit_root;
  explicit_root.trust_root = f->vendor->root();
  Verdict w = VerifyDcapQuote(*q, f->dir, Now(), explicit_root);
  EXPECT_FALSE(w.genuine);
  EXPECT_EQ(Code(w), "sim_not_allowed");
}

TEST(SimTdx, EveryTamperedSignedByteIsRefused) {
  auto f = MakeFolder(SimTee::kTdx);
  for (int version : {4, 5}) {
    SimTdxQuoteOptions o = TdOptions();
    o.version = version;
    auto q = f->vendor->platform().TdxQuote(o, {});
    ASSERT_TRUE(q.ok());
    auto collateral = DcapCollateral::LoadDir(f->dir);
    ASSERT_TRUE(collateral.ok());
    auto verifier = DcapVerifier::Create(*collateral, AllowSim());
    ASSERT_TRUE(verifier.ok());
    ASSERT_TRUE((*verifier)->Verify(*q, Now()).genuine);
    const size_t signed_end = version == 4 ? 632 : 54 + 584;
    // Every byte the quote signature covers, then the signature data (signature, attestation
    // key, QE report and its signature, auth data) byte by byte.
    for (size_t i = 0; i < signed_end + 4 + 64 + 64 + 6 + 384 + 64 + 2 + 32; ++i) {
      auto copy = *q;
      copy[i] ^= 0x01;
      Verdict v = (*verifier)->Verify(copy, Now());
      ASSERT_FALSE(v.genuine) << "v" << version << " byte " << i;
    }
  }
}

TEST(SimTdx, TcbOptionsAndTcbRecovery) {
  const std::pair<SimTcb, const char*> cases[] = {{SimTcb::kSwHardeningNeeded, "SWHardeningNeeded"},
                                                  {SimTcb::kOutOfDate, "OutOfDate"}};
  for (const auto& [tcb, status] : cases) {
    SimVendorOptions o;
    o.tcb = tcb;
    auto f = MakeFolder(SimTee::kTdx, o);
    auto q = f->vendor->platform().TdxQuote(TdOptions(), {});
    ASSERT_TRUE(q.ok());
    Verdict v = VerifyDcapQuote(*q, f->dir, Now(), AllowSim());
    ASSERT_TRUE(v.genuine) << Why(v);
    EXPECT_EQ(v.tcb_status, status);
  }
  auto f = MakeFolder(SimTee::kTdx);
  auto q = f->vendor->platform().TdxQuote(TdOptions(), {});
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(VerifyDcapQuote(*q, f->dir, Now(), AllowSim()).tcb_status, "UpToDate");
  auto n = SimTcbRecovery(f->dir);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  Verdict after = VerifyDcapQuote(*q, f->dir, Now(), AllowSim());
  ASSERT_TRUE(after.genuine) << Why(after);
  EXPECT_EQ(after.tcb_status, "OutOfDate");
  EXPECT_EQ(after.ExitCode(), 1);
}

TEST(SimTdx, RevokedPckIsNotGenuine) {
  SimVendorOptions o;
  o.revoked = true;
  auto f = MakeFolder(SimTee::kTdx, o);
  auto q = f->vendor->platform().TdxQuote(TdOptions(), {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(Code(VerifyDcapQuote(*q, f->dir, Now(), AllowSim())), "pck_revoked");
}

TEST(SimTdx, FolderIsTdxAndSgxQuotesAreRefusedThere) {
  auto f = MakeFolder(SimTee::kTdx);
  auto loaded = SimVendor::Load(f->dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->tee(), SimTee::kTdx);
  EXPECT_EQ((*loaded)->snp(), nullptr);
  auto info = DcapCollateral::LoadDir(f->dir);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)->tcb_info()->id, "TDX");
  EXPECT_EQ((*info)->qe_identity()->id, "TD_QE");
  EXPECT_EQ((*loaded)->platform().Quote(evidence::SgxReportBody{}, {}).status().reason(), kSimWrongPlatform);
  auto sgx = MakeFolder(SimTee::kSgx);
  EXPECT_EQ(sgx->vendor->tee(), SimTee::kSgx);
  EXPECT_EQ(sgx->vendor->platform().TdxQuote(TdOptions(), {}).status().reason(), kSimWrongPlatform);
  // A TDX quote against SGX collateral is refused (the TCB Info does not fit).
  auto q = (*loaded)->platform().TdxQuote(TdOptions(), {});
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(VerifyDcapQuote(*q, sgx->dir, Now(), AllowSim()).genuine);
}

TEST(SimSgx, FoldersWrittenBeforePlatformsLoadAsSgx) {
  auto f = MakeFolder(SimTee::kSgx);
  ASSERT_TRUE(f->vendor);
  const std::string path = f->dir + "/sim-secrets.json";
  auto j = nlohmann::json::parse(*ReadWholeFile(path));
  EXPECT_EQ(j["platform"], "sgx");
  j.erase("platform");
  ASSERT_TRUE(WriteFileAtomic(path, j.dump(2), 0600).ok());
  auto loaded = SimVendor::Load(f->dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->tee(), SimTee::kSgx);
  auto q = (*loaded)->platform().Quote(evidence::SgxReportBody{}, {});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(VerifyDcapQuote(*q, f->dir, Now(), AllowSim()).genuine);
  j["platform"] = "arm-cca";
  ASSERT_TRUE(WriteFileAtomic(path, j.dump(2), 0600).ok());
  EXPECT_EQ(SimVendor::Load(f->dir).status().reason(), "invalid_sim_platform");
}

// ---- SEV-SNP ----------------------------------------------------------------------------------

SimSnpReportOptions SnpOptions() {
  SimSnpReportOptions o;
  o.measurement = Filled<48>(0x20);
  o.host_data = Filled<32>(0x90);
  o.vmpl = 1;
  return o;
}

TEST(SimSnp, FolderHoldsTheKdsFilesAndAnAmdStyleChain) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  EXPECT_EQ(f.vendor->tee(), SimTee::kSevSnp);
  ASSERT_NE(f.vendor->snp(), nullptr);
  EXPECT_TRUE(IsSimRootCa(f.vendor->root()));
  auto chain_text = ReadWholeFile(f.dir + "/cert_chain.pem");
  ASSERT_TRUE(chain_text.ok());
  auto chain = crypto::CertsFromPem(*chain_text);
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 2u);  // ASK then ARK
  EXPECT_FALSE(IsSimRootCa((*chain)[0].get()));
  EXPECT_TRUE(IsSimRootCa((*chain)[1].get()));
  EXPECT_EQ(crypto::DescribeKey(X509_get0_pubkey((*chain)[1].get())), "RSA 4096");
  auto vcek_text = ReadWholeFile(f.dir + "/vcek.der");
  ASSERT_TRUE(vcek_text.ok());
  auto vcek = crypto::CertFromDer(AsBytes(*vcek_text));
  ASSERT_TRUE(vcek.ok());
  EXPECT_EQ(crypto::DescribeKey(X509_get0_pubkey(vcek->get())), "EC P-384");
  auto crl_text = ReadWholeFile(f.dir + "/crl.der");
  ASSERT_TRUE(crl_text.ok());
  EXPECT_TRUE(crypto::CrlFromDerOrPem(AsBytes(*crl_text)).ok());
  // The certificate table: VCEK, ASK, ARK.
  auto table = evidence::ParseSnpCertTable(f.vendor->snp()->cert_table());
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->entries.size(), 3u);
  EXPECT_EQ(table->entries[0].kind, evidence::SnpCertKind::kVcek);
  EXPECT_EQ(table->entries[1].kind, evidence::SnpCertKind::kAsk);
  EXPECT_EQ(table->entries[2].kind, evidence::SnpCertKind::kArk);
  EXPECT_EQ(table->entries[0].data, std::vector<uint8_t>(vcek_text->begin(), vcek_text->end()));
  EXPECT_EQ(SimTcbRecovery(f.dir).status().reason(), kSimWrongPlatform);
  EXPECT_EQ(f.vendor->platform().Quote(evidence::SgxReportBody{}, {}).status().reason(), kSimWrongPlatform);
}

TEST(SimSnp, EvidenceIsGenuineUnderAllowSimWithItsMeasurements) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  const uint8_t rd[] = {0xAA, 0xBB};
  auto ev = f.vendor->snp()->Evidence(SnpOptions(), rd);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  auto report = evidence::ParseSnpReport(std::span<const uint8_t>(*ev).first(evidence::kSnpReportSize));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->version, 3u);
  EXPECT_EQ(report->ProductFromCpuid(), evidence::SnpProduct::kMilan);

  SnpTrustOptions trust;
  trust.allow_sim = true;
  Verdict v = VerifySnpEvidence(*ev, {}, Now(), trust);
  ASSERT_TRUE(v.genuine) << Why(v);
  EXPECT_TRUE(v.insecure_sim);
  EXPECT_EQ(v.platform, Platform::kSevSnp);
  EXPECT_EQ(v.tcb_status, "UpToDate");
  EXPECT_EQ(v.measurements["measurement"], HexEncode(Filled<48>(0x20)));
  EXPECT_EQ(v.measurements["host_data"], HexEncode(Filled<32>(0x90)));
  EXPECT_EQ(v.measurements["vmpl"], 1);
  EXPECT_EQ(v.measurements["debug"], false);
  const SimSnpTcb want = SimSnpTcbFor(SimTcb::kUpToDate);
  EXPECT_EQ(v.measurements["reported_tcb"]["bootloader"], want.bootloader);
  EXPECT_EQ(v.measurements["reported_tcb"]["snp"], want.snp);
  EXPECT_EQ(v.measurements["reported_tcb"]["microcode"], want.microcode);
  EXPECT_EQ(v.measurements["chip_id"], HexEncode(f.vendor->snp()->chip_id()));
  EXPECT_EQ(v.report_data_hex.substr(0, 6), "aabb00");
  EXPECT_EQ(v.details["product"], "Milan");
  EXPECT_EQ(v.details["certificate_source"], "cert_table");
  EXPECT_EQ(v.details["trust_root"], "sim");
}

TEST(SimSnp, NeverGenuineWithoutAllowSim) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  auto ev = f.vendor->snp()->Evidence(SnpOptions(), {});
  ASSERT_TRUE(ev.ok());
  Verdict v = VerifySnpEvidence(*ev, {}, Now());
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), kSnpSimNotAllowed);
  // Nor with the folder as collateral, nor through the folder-based entry points.
  auto collateral = LoadSnpCollateralDir(f.dir);
  ASSERT_TRUE(collateral.ok());
  EXPECT_EQ(Code(VerifySnpEvidence(*ev, *collateral, Now())), kSnpSimNotAllowed);
  auto report = std::span<const uint8_t>(*ev).first(evidence::kSnpReportSize);
  EXPECT_EQ(Code(VerifySnpEvidence(report, *collateral, Now())), kSnpSimNotAllowed);
  Verdict folder = VerifySnpReport(report, f.dir, Now());
  EXPECT_FALSE(folder.genuine);
  EXPECT_EQ(Code(folder), kSnpChainUntrusted);
  EXPECT_FALSE(VerifySnpReportWithFiles(report, f.dir + "/vcek.der", f.dir + "/cert_chain.pem", Now()).genuine);
}

TEST(SimSnp, ReportAloneVerifiesWithTheFolderAsCollateralIncludingItsCrl) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  auto report = f.vendor->snp()->Report(SnpOptions(), {});
  ASSERT_TRUE(report.ok());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  EXPECT_EQ(Code(VerifySnpEvidence(*report, {}, Now(), trust)), kSnpMissingCollateral);
  auto collateral = LoadSnpCollateralDir(f.dir);
  ASSERT_TRUE(collateral.ok());
  EXPECT_FALSE(collateral->crl.empty());
  Verdict v = VerifySnpEvidence(*report, *collateral, Now(), trust);
  ASSERT_TRUE(v.genuine) << Why(v);
  EXPECT_EQ(v.details["certificate_source"], "collateral");
  EXPECT_EQ(v.details["crl_checked"], true);
  // The CRL's validity (one year by default) bounds the verification time.
  EXPECT_EQ(Code(VerifySnpEvidence(*report, *collateral, Now() + std::chrono::hours(24 * 400), trust)), kSnpCrlExpired);
}

TEST(SimSnp, RevokedVcekAndForeignCrlsAreRefused) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  auto ev = f.vendor->snp()->Evidence(SnpOptions(), {});
  ASSERT_TRUE(ev.ok());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  auto secrets = nlohmann::json::parse(*ReadWholeFile(f.dir + "/sim-secrets.json"));
  auto ark_key = crypto::PrivateKeyFromPem(secrets["ark_key"].get<std::string>());
  ASSERT_TRUE(ark_key.ok());
  auto ark = crypto::CertFromDer(f.vendor->snp()->ark_der());
  auto ask = crypto::CertFromDer(f.vendor->snp()->ask_der());
  auto vcek = crypto::CertFromDer(f.vendor->snp()->vcek_der());
  ASSERT_TRUE(ark.ok() && ask.ok() && vcek.ok());
  const TimePoint now = Now();
  for (X509* revoked : {vcek->get(), ask->get()}) {
    auto crl = sim::MakeCrl(ark->get(), ark_key->get(), now - std::chrono::hours(1), now + std::chrono::hours(24), {revoked},
                            true);
    ASSERT_TRUE(crl.ok());
    SnpCollateral c;
    c.crl = *crl;
    Verdict v = VerifySnpEvidence(*ev, c, now, trust);
    EXPECT_FALSE(v.genuine);
    EXPECT_EQ(Code(v), kSnpCertRevoked) << Why(v);
  }
  // A CRL by another key under the ARK's name, and one by another issuer.
  auto other = crypto::GenerateKey(crypto::KeyType::kRsa2048);
  ASSERT_TRUE(other.ok());
  auto forged = sim::MakeCrl(ark->get(), other->get(), now - std::chrono::hours(1), now + std::chrono::hours(24), {}, true);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(Code(VerifySnpEvidence(*ev, SnpCollateral{{}, *forged}, now, trust)), kSnpCrlInvalid);
  auto by_ask = sim::MakeCrl(ask->get(), other->get(), now - std::chrono::hours(1), now + std::chrono::hours(24), {}, true);
  ASSERT_TRUE(by_ask.ok());
  EXPECT_EQ(Code(VerifySnpEvidence(*ev, SnpCollateral{{}, *by_ask}, now, trust)), kSnpCrlInvalid);
  EXPECT_EQ(Code(VerifySnpEvidence(*ev, SnpCollateral{{}, {1, 2, 3}}, now, trust)), kSnpCrlInvalid);
}

// The same failure is the same kind of error on every platform (docs/agent.md "Refusal codes":
// evidence refusals are 403, PermissionDenied); evidence that does not parse is InvalidArgument.
TEST(SimPlatforms, DcapAndSnpRefusalsAreTheSameKind) {
  SimVendorOptions o;
  o.revoked = true;
  auto tdx = MakeFolder(SimTee::kTdx, o);
  auto q = tdx->vendor->platform().TdxQuote(TdOptions(), {});
  ASSERT_TRUE(q.ok());
  Verdict revoked = VerifyDcapQuote(*q, tdx->dir, Now(), AllowSim());
  ASSERT_EQ(Code(revoked), kDcapPckRevoked);
  EXPECT_EQ(revoked.error->code(), StatusCode::kPermissionDenied) << Why(revoked);
  Verdict untrusted = VerifyDcapQuote(*q, tdx->dir, Now());
  ASSERT_EQ(Code(untrusted), kDcapChainUntrusted);
  EXPECT_EQ(untrusted.error->code(), StatusCode::kPermissionDenied) << Why(untrusted);

  const Folder& snp = SnpFolder();
  ASSERT_TRUE(snp.vendor);
  auto ev = snp.vendor->snp()->Evidence(SnpOptions(), {});
  ASSERT_TRUE(ev.ok());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  auto flipped = *ev;
  flipped[0x2A0] ^= 0x01;  // the first signature byte
  Verdict bad_signature = VerifySnpEvidence(flipped, {}, Now(), trust);
  ASSERT_FALSE(bad_signature.genuine);
  ASSERT_TRUE(bad_signature.error.has_value());
  EXPECT_EQ(bad_signature.error->code(), StatusCode::kPermissionDenied) << Why(bad_signature);
  Verdict not_allowed = VerifySnpEvidence(*ev, {}, Now(), SnpTrustOptions{});
  ASSERT_EQ(Code(not_allowed), kSnpSimNotAllowed);
  EXPECT_EQ(not_allowed.error->code(), StatusCode::kPermissionDenied) << Why(not_allowed);

  Verdict truncated_snp = VerifySnpEvidence(std::span<const uint8_t>(*ev).first(1000), {}, Now(), trust);
  ASSERT_TRUE(truncated_snp.error.has_value());
  EXPECT_EQ(truncated_snp.error->code(), StatusCode::kInvalidArgument) << Why(truncated_snp);
  Verdict truncated_dcap = VerifyDcapQuote(std::span<const uint8_t>(*q).first(100), tdx->dir, Now(), AllowSim());
  ASSERT_TRUE(truncated_dcap.error.has_value());
  EXPECT_EQ(truncated_dcap.error->code(), StatusCode::kInvalidArgument) << Why(truncated_dcap);
}

TEST(SimSnp, RevokedOptionListsTheVcek) {
  SimVendorOptions o;
  o.revoked = true;
  o.snp_tcb = SimSnpTcb{1, 2, 3, 4};
  auto f = MakeFolder(SimTee::kSevSnp, o);
  ASSERT_TRUE(f->vendor);
  EXPECT_EQ(f->vendor->snp()->reported_tcb(), (SimSnpTcb{1, 2, 3, 4}));
  auto ev = f->vendor->snp()->Evidence(SnpOptions(), {});
  ASSERT_TRUE(ev.ok());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  Verdict ok = VerifySnpEvidence(*ev, {}, Now(), trust);  // no CRL given: not checked
  ASSERT_TRUE(ok.genuine) << Why(ok);
  EXPECT_EQ(ok.measurements["reported_tcb"]["tee"], 2);
  auto collateral = LoadSnpCollateralDir(f->dir);
  ASSERT_TRUE(collateral.ok());
  EXPECT_EQ(Code(VerifySnpEvidence(*ev, *collateral, Now(), trust)), kSnpCertRevoked);
}

TEST(SimSnp, EveryTamperedByteIsRefused) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  auto ev = f.vendor->snp()->Evidence(SnpOptions(), {});
  ASSERT_TRUE(ev.ok());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  ASSERT_TRUE(VerifySnpEvidence(*ev, {}, Now(), trust).genuine);
  // Every signed report byte, the signature, and the table headers.
  for (size_t i = 0; i < evidence::kSnpReportSize + 4 * 24; ++i) {
    if (i >= 0x330 && i < evidence::kSnpReportSize) continue;  // reserved signature tail: parser rejects it anyway
    auto copy = *ev;
    copy[i] ^= 0x01;
    Verdict v = VerifySnpEvidence(copy, {}, Now(), trust);
    ASSERT_FALSE(v.genuine) << "byte " << i;
  }
  // Certificate bytes: a sample through each of VCEK, ASK, ARK.
  for (size_t i = evidence::kSnpReportSize + 4 * 24; i < ev->size(); i += 97) {
    auto copy = *ev;
    copy[i] ^= 0x01;
    EXPECT_FALSE(VerifySnpEvidence(copy, {}, Now(), trust).genuine) << "byte " << i;
  }
  // Truncated evidence and a broken table.
  EXPECT_EQ(Code(VerifySnpEvidence(std::span<const uint8_t>(*ev).first(1000), {}, Now(), trust)), kSnpMalformedReport);
  EXPECT_EQ(Code(VerifySnpEvidence(std::span<const uint8_t>(*ev).first(evidence::kSnpReportSize + 30), {}, Now(), trust)),
            kSnpMalformedCertTable);
}

TEST(SimSnp, RealEvidenceStillNeedsTheAmdRoots) {
  // The real go-sev-guest report, as a blob with a certificate table built from its folder:
  // genuine through the AMD pins, with or without allow_sim, and not marked insecure.
  const std::string dir = std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/sev-snp/go-sev-guest-milan/";
  std::ifstream rf(dir + "attestation.bin", std::ios::binary);
  std::vector<uint8_t> report((std::istreambuf_iterator<char>(rf)), std::istreambuf_iterator<char>());
  std::ifstream vf(dir + "vcek.der", std::ios::binary);
  std::vector<uint8_t> vcek((std::istreambuf_iterator<char>(vf)), std::istreambuf_iterator<char>());
  ASSERT_EQ(report.size(), evidence::kSnpReportSize);
  const evidence::SnpCertTableInput in[] = {{evidence::kSnpGuidVcek, vcek}};
  auto table = evidence::BuildSnpCertTable(in);
  ASSERT_TRUE(table.ok());
  std::vector<uint8_t> ev = report;
  ev.insert(ev.end(), table->begin(), table->end());
  auto at = ParseRfc3339("2025-06-01T00:00:00Z");
  ASSERT_TRUE(at.ok());
  for (bool allow : {false, true}) {
    SnpTrustOptions trust;
    trust.allow_sim = allow;
    Verdict v = VerifySnpEvidence(ev, {}, *at, trust);
    ASSERT_TRUE(v.genuine) << Why(v);
    EXPECT_FALSE(v.insecure_sim);
    EXPECT_EQ(v.details["trust_root"], "amd");
    EXPECT_EQ(v.measurements, VerifySnpReport(report, dir, *at).measurements);
  }
  // A sim ARK put in the table does not change that: the VCEK chains to AMD's ASK.
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  const evidence::SnpCertTableInput with_sim_ark[] = {{evidence::kSnpGuidVcek, vcek},
                                                      {evidence::kSnpGuidArk, f.vendor->snp()->ark_der()}};
  auto t2 = evidence::BuildSnpCertTable(with_sim_ark);
  ASSERT_TRUE(t2.ok());
  std::vector<uint8_t> ev2 = report;
  ev2.insert(ev2.end(), t2->begin(), t2->end());
  Verdict v2 = VerifySnpEvidence(ev2, {}, *at);
  ASSERT_TRUE(v2.genuine) << Why(v2);
  EXPECT_FALSE(v2.insecure_sim);
  // Sim VCEK with a real report: not genuine.
  const evidence::SnpCertTableInput sim_vcek[] = {{evidence::kSnpGuidVcek, f.vendor->snp()->vcek_der()}};
  auto t3 = evidence::BuildSnpCertTable(sim_vcek);
  ASSERT_TRUE(t3.ok());
  std::vector<uint8_t> ev3 = report;
  ev3.insert(ev3.end(), t3->begin(), t3->end());
  SnpTrustOptions allow;
  allow.allow_sim = true;
  EXPECT_FALSE(VerifySnpEvidence(ev3, {}, *at, allow).genuine);
}

// ---- configfs-tsm answers (sim_tsm.h) -----------------------------------------------------------

std::array<uint8_t, 64> Inblob() { return Filled<64>(0xC0); }

TEST(SimTsm, TdxOutblobIsAQuoteV4OfTheShippedAgentBindingTheInblob) {
  auto f = MakeFolder(SimTee::kTdx);
  EXPECT_EQ(SimTsmProvider(*f->vendor), "tdx_guest");
  const auto in = Inblob();
  auto blobs = SimTsmReport(*f->vendor, in, 0);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  EXPECT_TRUE(blobs->auxblob.empty());
  auto q = evidence::ParseTdxQuoteV4(blobs->outblob);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(std::equal(in.begin(), in.end(), q->report_data().begin()));
  Verdict v = VerifyDcapQuote(blobs->outblob, f->dir, Now(), AllowSim());
  ASSERT_TRUE(v.genuine) << Why(v);
  EXPECT_EQ(v.measurements["mrtd"], HexEncode(ShippedSimAgent().tdx_mrtd));
  EXPECT_EQ(v.measurements["rtmr2"], std::string(96, '0'));
  EXPECT_EQ(v.report_data_hex, HexEncode(in));
}

TEST(SimTsm, SnpOutblobIsTheReportAndAuxblobTheTable) {
  const Folder& f = SnpFolder();
  ASSERT_TRUE(f.vendor);
  EXPECT_EQ(SimTsmProvider(*f.vendor), "sev_guest");
  const auto in = Inblob();
  auto blobs = SimTsmReport(*f.vendor, in, 2);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  ASSERT_EQ(blobs->outblob.size(), evidence::kSnpReportSize);
  auto r = evidence::ParseSnpReport(blobs->outblob);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->vmpl, 2u);
  EXPECT_EQ(r->report_data, in);
  EXPECT_EQ(r->measurement, ShippedSimAgent().snp_measurement);
  EXPECT_EQ(blobs->auxblob, f.vendor->snp()->cert_table());
  std::vector<uint8_t> ev = blobs->outblob;
  ev.insert(ev.end(), blobs->auxblob.begin(), blobs->auxblob.end());
  SnpTrustOptions trust;
  trust.allow_sim = true;
  Verdict v = VerifySnpEvidence(ev, {}, Now(), trust);
  ASSERT_TRUE(v.genuine) << Why(v);
  EXPECT_EQ(v.measurements["measurement"], HexEncode(ShippedSimAgent().snp_measurement));
  EXPECT_EQ(SimTsmReport(*f.vendor, in, 4).status().reason(), "invalid_privlevel");
}

TEST(SimTsm, SgxFolderHasNoProvider) {
  auto f = MakeFolder(SimTee::kSgx);
  EXPECT_EQ(SimTsmProvider(*f->vendor), "");
  EXPECT_EQ(SimTsmReport(*f->vendor, Inblob(), 0).status().reason(), kSimWrongPlatform);
}

TEST(SimAgent, ConfidentialVmMeasurementsAreFixedDerivations) {
  const auto& a = ShippedSimAgent();
  EXPECT_EQ(HexEncode(a.tdx_mrtd).size(), 96u);
  EXPECT_NE(a.tdx_mrtd, (std::array<uint8_t, 48>{}));
  EXPECT_NE(a.snp_measurement, a.tdx_mrtd);
  for (const auto& r : a.tdx_rtmr) EXPECT_EQ(r, (std::array<uint8_t, 48>{}));
  EXPECT_EQ(ParseSimTee("sev-snp").value(), SimTee::kSevSnp);
  EXPECT_EQ(ParseSimTee("snp").status().reason(), "invalid_sim_platform");
}

}  // namespace
}  // namespace vouch::attest
