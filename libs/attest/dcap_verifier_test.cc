#include "attest/dcap_verifier.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "attest/dcap_collateral.h"
#include "attest/intel_root.h"
#include "attest/pck_extension.h"
#include "base/encoding.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

std::string Dir(const std::string& rel) { return std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel; }

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string ReadText(const std::string& path) {
  auto b = ReadBytes(path);
  return {b.begin(), b.end()};
}

TimePoint At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok());
  return *t;
}

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("(none)"); }

struct CompleteCase {
  const char* folder;
  const char* at;
  Platform platform;
  const char* status;
  std::vector<std::string> advisories;
  const char* tcb_date;  // nullptr: not asserted
  const char* qe_status;
};

const CompleteCase kComplete[] = {
    {"sgx-dcap/dcap-rs-icx-2025-02", "2025-02-13T04:00:32Z", Platform::kSgx, "OutOfDate", {}, "2023-08-09T00:00:00Z",
     "UpToDate"},
    {"tdx/dcap-rs-spr-v4-2025-02", "2025-02-13T04:00:32Z", Platform::kTdx, "OutOfDate",
     {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}, "2023-08-09T00:00:00Z", "UpToDate"},
    {"tdx/automata-spr-v4-2025-10", "2025-10-24T07:10:18Z", Platform::kTdx, "OutOfDate",
     {"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}, "2023-08-09T00:00:00Z", "UpToDate"},
    {"tdx/go-tdx-guest-spr-e4-v4-2023-07", "2023-07-01T01:00:00Z", Platform::kTdx, "TcbLevelNotSupported", {}, nullptr,
     "UpToDate"},
    {"tdx/automata-emr-v5-2025-06", "2025-06-15T00:00:00Z", Platform::kTdx, "TcbLevelNotSupported", {}, nullptr,
     "UpToDate"},
};

TEST(DcapVerifier, EveryCompleteFolderGivesItsExpectedVerdict) {
  for (const auto& c : kComplete) {
    SCOPED_TRACE(c.folder);
    auto quote = ReadBytes(Dir(c.folder) + "/quote.dat");
    Verdict v = VerifyDcapQuote(quote, Dir(c.folder), At(c.at));
    ASSERT_TRUE(v.genuine) << Code(v) << ": " << (v.error ? v.error->message() : "");
    EXPECT_EQ(v.platform, c.platform);
    EXPECT_EQ(v.tcb_status, c.status);
    EXPECT_EQ(v.advisory_ids, c.advisories);
    EXPECT_FALSE(v.insecure_sim);
    EXPECT_EQ(v.details["trust_root"], "intel-sgx-root-ca");
    EXPECT_EQ(v.details["qe_tcb_status"], c.qe_status);
    if (c.tcb_date != nullptr) {
      EXPECT_EQ(v.details["tcb_date"], c.tcb_date);
    }
    EXPECT_EQ(v.report_data_hex.size(), 128u);
    if (c.platform == Platform::kSgx) {
      EXPECT_EQ(v.measurements["mrenclave"].get<std::string>().size(), 64u);
      EXPECT_TRUE(v.measurements.contains("isvprodid"));
    } else {
      EXPECT_EQ(v.measurements["mrtd"].get<std::string>().size(), 96u);
      EXPECT_TRUE(v.measurements.contains("rtmr3"));
      EXPECT_TRUE(v.measurements.contains("mrsignerseam"));
    }
    int expected_exit = std::string(c.status) == "UpToDate" ? 0 : 1;
    EXPECT_EQ(v.ExitCode(), expected_exit);
  }
}

TEST(DcapVerifier, SgxFolderReportsPckTcbAndFmspc) {
  auto quote = ReadBytes(Dir("sgx-dcap/dcap-rs-icx-2025-02/quote.dat"));
  Verdict v = VerifyDcapQuote(quote, Dir("sgx-dcap/dcap-rs-icx-2025-02"), At("2025-02-13T04:00:32Z"));
  ASSERT_TRUE(v.genuine);
  EXPECT_EQ(v.details["fmspc"], "00606a000000");
  EXPECT_EQ(v.details["pce_id"], "0000");
  EXPECT_EQ(v.details["pcesvn"], 13);
  EXPECT_EQ(v.details["pck_comp_svns"][0], 12);
  EXPECT_EQ(v.details["pck_comp_svns"][4], 255);
  EXPECT_EQ(v.details["qe_isvsvn"], 9);
  EXPECT_EQ(v.details["pck_ca"], "platform");
}

TEST(DcapVerifier, TdxFolderReportsModule) {
  auto quote = ReadBytes(Dir("tdx/dcap-rs-spr-v4-2025-02/quote.dat"));
  Verdict v = VerifyDcapQuote(quote, Dir("tdx/dcap-rs-spr-v4-2025-02"), At("2025-02-13T04:00:32Z"));
  ASSERT_TRUE(v.genuine);
  EXPECT_EQ(v.details["tdx_module_id"], "TDX_01");
  EXPECT_EQ(v.details["tdx_module_tcb_status"], "UpToDate");
  EXPECT_EQ(v.measurements["tee_tcb_svn"], "04010700000000000000000000000000");
  EXPECT_EQ(v.details["fmspc"], "00806f050000");
}

TEST(DcapVerifier, EveryCompleteFolderExpiresAfterItsWindow) {
  for (const auto& c : kComplete) {
    SCOPED_TRACE(c.folder);
    auto quote = ReadBytes(Dir(c.folder) + "/quote.dat");
    Verdict v = VerifyDcapQuote(quote, Dir(c.folder), At(c.at) + std::chrono::hours(24 * 60));
    EXPECT_FALSE(v.genuine);
    EXPECT_TRUE(Code(v) == "collateral_expired" || Code(v) == "crl_expired") << Code(v);
    EXPECT_EQ(v.ExitCode(), 2);
    Verdict before = VerifyDcapQuote(quote, Dir(c.folder), At(c.at) - std::chrono::hours(24 * 60));
    EXPECT_FALSE(before.genuine);
    EXPECT_TRUE(Code(before) == "collateral_expired" || Code(before) == "crl_expired") << Code(before);
  }
}

TEST(DcapVerifier, SyntheticSampleVerifiesOnlyWithItsOwnTestRoot) {
  const std::string dir = Dir("sgx-dcap/intel-qvl-sample-SYNTHETIC");
  auto quote = ReadBytes(dir + "/quote.dat");
  auto root = crypto::CertFromPem(ReadText(dir + "/trustedRootCaCert.pem"));
  ASSERT_TRUE(root.ok());
  DcapTrustOptions trust;
  trust.trust_root = root->get();
  Verdict own = VerifyDcapQuote(quote, dir, At("2023-11-14T22:13:20Z"), trust);
  ASSERT_TRUE(own.genuine) << Code(own) << ": " << (own.error ? own.error->message() : "");
  EXPECT_EQ(own.tcb_status, "UpToDate");
  EXPECT_EQ(own.details["trust_root"], "explicit");
  EXPECT_EQ(own.details["pck_ca"], "processor");
  EXPECT_EQ(own.ExitCode(), 0);

  // Same subject as the Intel root, other key: rejected with the production root.
  Verdict real = VerifyDcapQuote(quote, dir, At("2023-11-14T22:13:20Z"));
  EXPECT_FALSE(real.genuine);
  EXPECT_EQ(Code(real), "chain_untrusted");
  EXPECT_EQ(real.ExitCode(), 2);
}

TEST(DcapVerifier, RealFolderIsRejectedUnderTheSyntheticTestRoot) {
  auto root = crypto::CertFromPem(ReadText(Dir("sgx-dcap/intel-qvl-sample-SYNTHETIC/trustedRootCaCert.pem")));
  ASSERT_TRUE(root.ok());
  DcapTrustOptions trust;
  trust.trust_root = root->get();
  auto quote = ReadBytes(Dir("sgx-dcap/dcap-rs-icx-2025-02/quote.dat"));
  Verdict v = VerifyDcapQuote(quote, Dir("sgx-dcap/dcap-rs-icx-2025-02"), At("2025-02-13T04:00:32Z"), trust);
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "chain_untrusted");
}

TEST(DcapVerifier, QuoteOnlyFoldersVerifyAsFarAsTheyGo) {
  for (const char* path : {"sgx-dcap/trustee-occlum-quote-only/quote.dat", "tdx/trustee-quotes-only/tdx_quote_4.dat",
                           "tdx/trustee-quotes-only/tdx_quote_6.dat"}) {
    SCOPED_TRACE(path);
    auto quote = ReadBytes(Dir(path));
    // Any instant inside the PCK chain's validity: 2025-06-01 for all three.
    Verdict v = VerifyDcapQuote(quote, std::nullopt, At("2025-06-01T00:00:00Z"));
    EXPECT_FALSE(v.genuine);
    // Every signature and the chain passed: the only failure is the missing collateral.
    EXPECT_EQ(Code(v), "missing_collateral") << (v.error ? v.error->message() : "");
    EXPECT_EQ(v.details["failed_step"], "collateral");
    EXPECT_EQ(v.details["missing_collateral"].size(), 4u);
    EXPECT_EQ(v.ExitCode(), 2);
  }
}

TEST(DcapVerifier, PartialV5FolderGivesUpToDateFromItsTcbInfo) {
  // go-tdx-guest's v5 set has TCB Info but no QE Identity or CRLs; its TCB Info is signed by
  // the TCB Signing key, whose renewed certificate ships with the automata folders.
  CollateralFiles files;
  files.tcb_info_json = ReadText(Dir("tdx/go-tdx-guest-emr-v5-partial/tcbInfo.json"));
  files.tcb_sign_chain_pem = ReadText(Dir("tdx/automata-spr-v4-2025-10/tcbSignChain.pem"));
  auto collateral = DcapCollateral::Create(files);
  ASSERT_TRUE(collateral.ok());
  auto verifier = DcapVerifier::Create(*collateral);
  ASSERT_TRUE(verifier.ok());
  auto quote = ReadBytes(Dir("tdx/go-tdx-guest-emr-v5-partial/quote.dat"));
  Verdict v = (*verifier)->Verify(quote, At("2026-02-03T01:00:00Z"));
  EXPECT_FALSE(v.genuine);
  EXPECT_EQ(Code(v), "missing_collateral") << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.details["tcb_status_partial"], "UpToDate");
  EXPECT_EQ(v.details["tdx_module_tcb_status"], "UpToDate");
  EXPECT_EQ(v.details["tcb_date"], "2024-11-13T00:00:00Z");
  EXPECT_EQ(v.measurements["tee_tcb_svn"], "0b010400000000000000000000000000");
  EXPECT_EQ(v.details["qe_isvsvn"], 7);
  const auto& missing = v.details["missing_collateral"];
  EXPECT_EQ(missing.size(), 3u);  // root CRL, PCK CRL, QE identity
}

TEST(DcapVerifier, CollateralCheckedOnceServesManyQuotes) {
  auto collateral = DcapCollateral::LoadDir(Dir("tdx/dcap-rs-spr-v4-2025-02"));
  ASSERT_TRUE(collateral.ok());
  auto verifier = DcapVerifier::Create(*collateral);
  ASSERT_TRUE(verifier.ok());
  auto quote = ReadBytes(Dir("tdx/dcap-rs-spr-v4-2025-02/quote.dat"));
  for (int i = 0; i < 3; ++i) {
    Verdict v = (*verifier)->Verify(quote, At("2025-02-13T04:00:32Z"));
    EXPECT_TRUE(v.genuine);
    EXPECT_EQ(v.tcb_status, "OutOfDate");
  }
  // The same verifier answers for another time without reloading.
  EXPECT_EQ(Code((*verifier)->Verify(quote, At("2025-04-01T00:00:00Z"))), "crl_expired");
}

TEST(DcapVerifier, ConvergesLikeQvl) {
  EXPECT_EQ(ConvergeTcbStatus("UpToDate", "UpToDate"), "UpToDate");
  EXPECT_EQ(ConvergeTcbStatus("UpToDate", "OutOfDate"), "OutOfDate");
  EXPECT_EQ(ConvergeTcbStatus("SWHardeningNeeded", "OutOfDate"), "OutOfDate");
  EXPECT_EQ(ConvergeTcbStatus("ConfigurationNeeded", "OutOfDate"), "OutOfDateConfigurationNeeded");
  EXPECT_EQ(ConvergeTcbStatus("ConfigurationAndSWHardeningNeeded", "OutOfDate"), "OutOfDateConfigurationNeeded");
  EXPECT_EQ(ConvergeTcbStatus("OutOfDate", "Revoked"), "Revoked");
  EXPECT_EQ(ConvergeTcbStatus("UpToDate", "TcbLevelNotSupported"), "TcbLevelNotSupported");
  EXPECT_EQ(ConvergeTcbStatus("Revoked", "OutOfDate"), "Revoked");
}

TEST(IntelRoot, IsPinnedByFingerprint) {
  auto file = crypto::CertFromPem(ReadText(Dir("roots/intel/Intel_SGX_Provisioning_Certification_RootCA.pem")));
  ASSERT_TRUE(file.ok());
  auto der = crypto::CertToDer(file->get());
  ASSERT_TRUE(der.ok());
  auto pinned = IntelSgxRootCaDer();
  EXPECT_TRUE(std::equal(der->begin(), der->end(), pinned.begin(), pinned.end()));
}

TEST(PckExtension, ParsesRealPckCertificates) {
  struct Case {
    const char* pem;
    const char* fmspc;
    std::vector<int> svns;
    int pcesvn;
  };
  const Case cases[] = {
      {"sgx-dcap/dcap-rs-icx-2025-02/pckCert.pem", "00606a000000", {12, 12, 3, 3, 255, 255, 1, 0}, 13},
      {"tdx/dcap-rs-spr-v4-2025-02/pckCert.pem", "00806f050000", {6, 6, 2, 2, 3, 1, 0, 3}, 11},
      {"tdx/go-tdx-guest-spr-e4-v4-2023-07/pckCert.pem", "50806f000000", {3, 3, 2, 2, 2, 1, 0, 2}, 11},
      {"tdx/automata-emr-v5-2025-06/pckCert.pem", "90c06f000000", {1, 1, 2, 2, 3, 1, 0, 3}, 13},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.pem);
    auto cert = crypto::CertFromPem(ReadText(Dir(c.pem)));
    ASSERT_TRUE(cert.ok());
    auto ext = ParsePckSgxExtension(cert->get());
    ASSERT_TRUE(ext.ok()) << ext.status().ToString();
    EXPECT_EQ(HexEncode(ext->fmspc), c.fmspc);
    EXPECT_EQ(HexEncode(ext->pce_id), "0000");
    for (size_t i = 0; i < c.svns.size(); ++i) EXPECT_EQ(ext->comp_svns[i], c.svns[i]) << i;
    EXPECT_EQ(ext->pcesvn, c.pcesvn);
  }
}

TEST(PckExtension, RejectsCertificatesWithoutIt) {
  auto cert = crypto::CertFromPem(ReadText(Dir("roots/intel/Intel_SGX_Provisioning_Certification_RootCA.pem")));
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(ParsePckSgxExtension(cert->get()).status().reason(), "missing_pck_extension");
  EXPECT_EQ(ParsePckSgxExtensionDer({}).status().reason(), "malformed_pck_extension");
  const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
  EXPECT_EQ(ParsePckSgxExtensionDer(junk).status().reason(), "malformed_pck_extension");
}

TEST(PckExtension, RejectsEveryTruncationAndByteFlip) {
  auto cert = crypto::CertFromPem(ReadText(Dir("sgx-dcap/dcap-rs-icx-2025-02/pckCert.pem")));
  ASSERT_TRUE(cert.ok());
  crypto::Asn1ObjectPtr oid(OBJ_txt2obj(kSgxExtensionOid, 1));
  X509_EXTENSION* ext = X509_get_ext(cert->get(), X509_get_ext_by_OBJ(cert->get(), oid.get(), -1));
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  std::vector<uint8_t> der(data->data, data->data + data->length);
  ASSERT_TRUE(ParsePckSgxExtensionDer(der).ok());
  for (size_t n = 0; n < der.size(); ++n) {
    EXPECT_FALSE(ParsePckSgxExtensionDer(std::span<const uint8_t>(der).first(n)).ok()) << n;
  }
  // Flipping bytes must never crash; a successful parse after a flip must still be well-formed.
  for (size_t i = 0; i < der.size(); ++i) {
    auto m = der;
    m[i] ^= 0xFF;
    (void)ParsePckSgxExtensionDer(m);
  }
}

}  // namespace
}  // namespace vouch::attest
