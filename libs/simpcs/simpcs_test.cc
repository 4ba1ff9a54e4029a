// vouch sim pcs against libcurl over real HTTPS: exact paths, headers and status codes of Intel
// PCS v4 and AMD KDS, over the real collateral folders of ../shared/testdata/attestation.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "http/server.h"
#include "pki/service.h"
#include "simpcs/emulator.h"

namespace vouch::simpcs {
namespace {

const std::string kShared = std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/";
const std::string kIcx = kShared + "sgx-dcap/dcap-rs-icx-2025-02";
const std::string kSpr25 = kShared + "tdx/dcap-rs-spr-v4-2025-02";
const std::string kSpr25Oct = kShared + "tdx/automata-spr-v4-2025-10";
const std::string kSpr23 = kShared + "tdx/go-tdx-guest-spr-e4-v4-2023-07";
const std::string kMilan = kShared + "sev-snp/go-sev-guest-milan";
const std::string kTrustee = kShared + "sev-snp/trustee-milan";

struct Answer {
  long status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  bool Has(const std::string& name) const { return headers.count(name) != 0; }
};

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  std::string line(p, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    static_cast<Answer*>(ud)->headers.emplace(name, value);
  }
  return size * n;
}

class SimPcsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> dirs, Options options = {}) {
    options.dirs = std::move(dirs);
    auto emulator = Emulator::Create(options);
    ASSERT_TRUE(emulator.ok()) << emulator.status().message();
    emulator_ = std::move(*emulator);
    auto certs = pki::CreateServiceCertificates();
    ASSERT_TRUE(certs.ok());
    char tmpl[] = "/tmp/simpcs_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca_file_ = dir_ + "/ca.pem";
    ASSERT_TRUE(WriteFileAtomic(ca_file_, certs->ca_cert_pem).ok());
    http::ServerOptions so;
    so.port = 0;
    so.threads = 2;
    so.cert_chain_pem = certs->server_chain_pem;
    so.private_key_pem = std::string(certs->server_key_pem.view());
    http::Router router;
    emulator_->AddRoutes(&router);
    auto srv = http::Server::Create(so, std::move(router));
    ASSERT_TRUE(srv.ok()) << srv.status().message();
    server_ = std::move(*srv);
    ASSERT_TRUE(server_->Start().ok());
    base_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::milliseconds(500));
    if (!dir_.empty()) {
      std::remove(ca_file_.c_str());
      rmdir(dir_.c_str());
    }
  }

  Answer Get(const std::string& target, const std::string& method = "GET", const std::string& body = "") {
    Answer a;
    CURL* c = curl_easy_init();
    EXPECT_NE(c, nullptr);
    std::string url = base_ + target;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    if (method == "POST") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    }
    CURLcode rc = curl_easy_perform(c);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc) << " " << url;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_easy_cleanup(c);
    return a;
  }

  static std::string File(const std::string& path) {
    auto r = ReadWholeFile(path);
    EXPECT_TRUE(r.ok()) << path;
    return r.ok() ? *r : "";
  }

  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<http::Server> server_;
  std::string dir_, ca_file_, base_;
};

TEST_F(SimPcsTest, ServesSgxTcbInfoByteForByteWithIssuerChainHeader) {
  Start({kIcx});
  Answer a = Get("/sgx/certification/v4/tcb?fmspc=00606A000000");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body, File(kIcx + "/tcbInfo.json"));
  EXPECT_EQ(a.Header("content-type"), "application/json");
  EXPECT_EQ(a.Header("tcb-info-issuer-chain"), UrlEncodeComponent(File(kIcx + "/tcbSignChain.pem")));
  EXPECT_NE(a.Header("tcb-info-issuer-chain").find("-----BEGIN%20CERTIFICATE-----%0A"), std::string::npos);
  EXPECT_EQ(a.Header("request-id").size(), 32u);
  // The TDX route does not serve an SGX TCB Info.
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00606a000000").status, 404);
}

TEST_F(SimPcsTest, RefusesMalformedParametersWithPcsErrorHeaders) {
  Start({kIcx});
  for (const char* target : {"/sgx/certification/v4/tcb", "/sgx/certification/v4/tcb?fmspc=00606a",
                             "/sgx/certification/v4/tcb?fmspc=zz606a000000",
                             "/sgx/certification/v4/tcb?fmspc=00606a000000&update=soon",
                             "/sgx/certification/v4/tcb?fmspc=00606a000000&update=early&tcbEvaluationDataNumber=17",
                             "/sgx/certification/v4/tcb?fmspc=00606a000000&tcbEvaluationDataNumber=x",
                             "/sgx/certification/v4/pckcrl", "/sgx/certification/v4/pckcrl?ca=intel",
                             "/sgx/certification/v4/pckcrl?ca=platform&encoding=base64"}) {
    Answer a = Get(target);
    EXPECT_EQ(a.status, 400) << target;
    EXPECT_EQ(a.Header("error-code"), "InvalidRequestSyntax") << target;
    EXPECT_FALSE(a.Header("error-message").empty()) << target;
    EXPECT_TRUE(a.Has("request-id")) << target;
  }
  Answer unknown = Get("/sgx/certification/v4/tcb?fmspc=00906ea10000");
  EXPECT_EQ(unknown.status, 404);
}

TEST_F(SimPcsTest, ServesPckCrlDerAndPemWithItsIssuerChain) {
  Start({kIcx});
  Answer der = Get("/sgx/certification/v4/pckcrl?ca=platform&encoding=der");
  ASSERT_EQ(der.status, 200);
  EXPECT_EQ(der.body, File(kIcx + "/intermediateCaCrl.der"));
  EXPECT_EQ(der.Header("content-type"), "application/pkix-crl");
  EXPECT_EQ(der.Header("sgx-pck-crl-issuer-chain"), UrlEncodeComponent(File(kIcx + "/pckSignChain.pem")));
  Answer pem = Get("/sgx/certification/v4/pckcrl?ca=PLATFORM");
  ASSERT_EQ(pem.status, 200);
  EXPECT_EQ(pem.Header("content-type"), "application/x-pem-file");
  EXPECT_EQ(pem.body.rfind("-----BEGIN X509 CRL-----", 0), 0u);
  EXPECT_EQ(Get("/sgx/certification/v4/pckcrl?ca=processor").status, 404);
  // A PCCS answers rootcacrl in hex; Intel's distribution point and crl?uri= (PCCS API 3.1) in DER.
  Answer root = Get("/sgx/certification/v4/rootcacrl");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(root.body, HexEncode(AsBytes(File(kIcx + "/rootCaCrl.der"))));
  EXPECT_EQ(Get("/IntelSGXRootCA.der").body, File(kIcx + "/rootCaCrl.der"));
  EXPECT_EQ(Get("/sgx/certification/v4/crl?uri=https%3A%2F%2Fcertificates.trustedservices.intel.com%2FIntelSGXRootCA.der").body,
            File(kIcx + "/rootCaCrl.der"));
  EXPECT_EQ(Get("/sgx/certification/v4/crl?uri=" + UrlEncodeComponent("https://api.trustedservices.intel.com/sgx/certification/"
                                                                       "v4/pckcrl?ca=platform&encoding=der")).body,
            File(kIcx + "/intermediateCaCrl.der"));
  for (const char* uri : {"https://evil.example/IntelSGXRootCA.der", "http://certificates.trustedservices.intel.com/IntelSGXRootCA.der",
                          "https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00606a000000", ""}) {
    EXPECT_EQ(Get("/sgx/certification/v4/crl?uri=" + UrlEncodeComponent(uri)).status, 400) << uri;
  }
}

TEST_F(SimPcsTest, ServesTdxTcbInfoAndTdQeIdentity) {
  Start({kSpr23});
  Answer tcb = Get("/tdx/certification/v4/tcb?fmspc=50806f000000");
  ASSERT_EQ(tcb.status, 200);
  EXPECT_EQ(tcb.body, File(kSpr23 + "/tcbInfo.json"));
  Answer qe = Get("/tdx/certification/v4/qe/identity?update=standard");
  ASSERT_EQ(qe.status, 200);
  EXPECT_EQ(qe.body, File(kSpr23 + "/qeIdentity.json"));
  EXPECT_EQ(qe.Header("sgx-enclave-identity-issuer-chain"), UrlEncodeComponent(File(kSpr23 + "/tcbSignChain.pem")));
  // No SGX QE identity in a TDX folder.
  EXPECT_EQ(Get("/sgx/certification/v4/qe/identity").status, 404);
  // The CRL issuer chain is the folder's SGX-PCK-CRL-Issuer-Chain capture.
  Answer crl = Get("/sgx/certification/v4/pckcrl?ca=platform&encoding=der");
  EXPECT_EQ(crl.Header("sgx-pck-crl-issuer-chain"), UrlEncodeComponent(File(kSpr23 + "/pckCrlIssuerChain.pem")));
}

TEST_F(SimPcsTest, ClockPicksTheVersionValidAtThatTime) {
  Start({kSpr25, kSpr25Oct});
  ASSERT_EQ(Get("/sim/v1/clock", "POST", R"({"now":"2025-02-13T04:00:32Z"})").status, 200);
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00806f050000").body, File(kSpr25 + "/tcbInfo.json"));
  EXPECT_EQ(Get("/sgx/certification/v4/pckcrl?ca=platform&encoding=der").body,
            File(kSpr25 + "/intermediateCaCrl.der"));
  ASSERT_EQ(Get("/sim/v1/clock", "POST", R"({"now":"2025-10-24T07:10:18Z"})").status, 200);
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00806f050000").body, File(kSpr25Oct + "/tcbInfo.json"));
  EXPECT_EQ(Get("/tdx/certification/v4/qe/identity").body, File(kSpr25Oct + "/qeIdentity.json"));
  // Without a clock (now): the newest.
  ASSERT_EQ(Get("/sim/v1/clock", "POST", R"({"now":null})").status, 200);
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00806f050000").body, File(kSpr25Oct + "/tcbInfo.json"));
  EXPECT_EQ(Get("/sim/v1/clock", "POST", R"({"now":"yesterday"})").status, 400);
}

TEST_F(SimPcsTest, RetiredEvaluationNumberIsGone) {
  Options o;
  o.retired_below = 1000;
  Start({kSpr25}, o);
  Answer gone = Get("/tdx/certification/v4/tcb?fmspc=00806f050000&tcbEvaluationDataNumber=17");
  EXPECT_EQ(gone.status, 410);
  EXPECT_TRUE(gone.Has("request-id"));
  ASSERT_EQ(Get("/sim/v1/retired-below", "POST", R"({"n":null})").status, 200);
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00806f050000&tcbEvaluationDataNumber=999").status, 404);
  // Without a number, the current one is served.
  EXPECT_EQ(Get("/tdx/certification/v4/tcb?fmspc=00806f050000").status, 200);
}

TEST_F(SimPcsTest, CorruptNextBreaksExactlyOneSignature) {
  Start({kIcx});
  const std::string good = File(kIcx + "/tcbInfo.json");
  ASSERT_EQ(Get("/sim/v1/corrupt", "POST", R"({"next":1})").status, 200);
  Answer bad = Get("/sgx/certification/v4/tcb?fmspc=00606a000000");
  ASSERT_EQ(bad.status, 200);
  EXPECT_NE(bad.body, good);
  EXPECT_EQ(bad.body.size(), good.size());
  EXPECT_EQ(bad.body.substr(0, good.rfind("\"signature\"")), good.substr(0, good.rfind("\"signature\"")));
  EXPECT_EQ(Get("/sgx/certification/v4/tcb?fmspc=00606a000000").body, good);
}

TEST_F(SimPcsTest, FailKnobAnswersEveryRouteWithThatStatus) {
  Start({kIcx});
  ASSERT_EQ(Get("/sim/v1/fail", "POST", R"({"status":503})").status, 200);
  EXPECT_EQ(Get("/sgx/certification/v4/tcb?fmspc=00606a000000").status, 503);
  EXPECT_EQ(Get("/sim/v1/fail", "POST", R"({"status":200})").status, 400);
  ASSERT_EQ(Get("/sim/v1/fail", "POST", R"({"status":0})").status, 200);
  EXPECT_EQ(Get("/sgx/certification/v4/tcb?fmspc=00606a000000").status, 200);
}

TEST_F(SimPcsTest, ServesVcekByChipAndTcbFromItsExtensions) {
  Start({kMilan, kTrustee});
  const std::string vcek = File(kMilan + "/vcek.der");
  // go-sev-guest's KDS URL for this VCEK: .../vcek/v1/Milan/3ac3fe21...?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68
  std::string hwid;
  for (const auto& v : emulator_->catalog()->vceks) {
    if (v.der == vcek) hwid = v.hwid_hex;
  }
  ASSERT_EQ(hwid.substr(0, 8), "3ac3fe21");
  Answer a = Get("/vcek/v1/Milan/" + hwid + "?blSPL=02&teeSPL=00&snpSPL=05&ucodeSPL=68");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body, vcek);
  EXPECT_EQ(Get("/vcek/v1/Milan/" + hwid + "?blSPL=2&teeSPL=0&snpSPL=6&ucodeSPL=68").status, 404);
  EXPECT_EQ(Get("/vcek/v1/Milan/" + std::string(128, 'a') + "?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68").status, 404);
  EXPECT_EQ(Get("/vcek/v1/Milan/" + hwid + "?blSPL=2&teeSPL=0&snpSPL=5").status, 400);
  EXPECT_EQ(Get("/vcek/v1/Milan/" + hwid + "?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=256").status, 400);
  EXPECT_EQ(Get("/vcek/v1/Milan/abc?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68").status, 400);
  EXPECT_EQ(Get("/vcek/v1/Turin/" + hwid.substr(0, 16) + "?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68").status, 400);
  Answer chain = Get("/vcek/v1/Milan/cert_chain");
  ASSERT_EQ(chain.status, 200);
  EXPECT_EQ(chain.body, File(kMilan + "/ask_ark_milan.pem"));
  EXPECT_EQ(Get("/vcek/v1/Genoa/cert_chain").status, 404);
  EXPECT_EQ(Get("/vlek/v1/Milan/cert_chain").status, 200);
  EXPECT_EQ(Get("/vcek/v1/Milan/crl").status, 404);  // the real folders hold no AMD CRL
}

TEST_F(SimPcsTest, KdsRateLimitAnswers429WithRetryAfter) {
  Options o;
  o.kds_min_interval = std::chrono::seconds(10);
  Start({kMilan}, o);
  EXPECT_EQ(Get("/vcek/v1/Milan/cert_chain").status, 200);
  Answer again = Get("/vcek/v1/Milan/cert_chain");
  EXPECT_EQ(again.status, 429);
  int retry = std::atoi(again.Header("retry-after").c_str());
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 10);
  // PCS routes are not KDS-limited.
  ASSERT_EQ(Get("/sim/v1/state").status, 200);
  ASSERT_EQ(Get("/sim/v1/kds-interval", "POST", R"({"seconds":0})").status, 200);
  EXPECT_EQ(Get("/vcek/v1/Milan/cert_chain").status, 200);
}

TEST_F(SimPcsTest, NeverReadsSimSecrets) {
  char tmpl[] = "/tmp/simpcs_secret_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string d = tmpl;
  // A secrets file that would fail to parse as anything: Load must not even open it.
  ASSERT_TRUE(WriteFileAtomic(d + "/sim-secrets.json", "-----BEGIN CERTIFICATE-----\nnot\n", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(d + "/secrets.pem", "-----BEGIN CERTIFICATE-----\nnot\n", 0600).ok());
  auto bad = Catalog::Load({d});
  EXPECT_FALSE(bad.ok());  // a malformed public certificate file fails the load
  std::remove((d + "/secrets.pem").c_str());
  auto ok = Catalog::Load({d});
  EXPECT_TRUE(ok.ok()) << ok.status().message();
  std::remove((d + "/sim-secrets.json").c_str());
  rmdir(d.c_str());
}

// Sim vendor folders (vouch sim init --platform tdx|sev-snp), served like real ones; the private
// sim-secrets.json is never served (no route could name it, and Load never opens it).
TEST_F(SimPcsTest, ServesSimTdxAndSevSnpFolders) {
  char tmpl[] = "/tmp/simpcs_sim_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string d = tmpl;
  attest::SimVendorOptions tdx, snp;
  tdx.tee = attest::SimTee::kTdx;
  snp.tee = attest::SimTee::kSevSnp;
  ASSERT_TRUE(attest::SimVendor::Create(d + "/tdx", tdx).ok());
  ASSERT_TRUE(attest::SimVendor::Create(d + "/snp", snp).ok());
  Start({d + "/tdx", d + "/snp"});
  auto cat = emulator_->catalog();
  ASSERT_EQ(cat->tcb_infos.size(), 1u);
  EXPECT_EQ(cat->tcb_infos[0].tee, Tee::kTdx);
  Answer tcb = Get("/tdx/certification/v4/tcb?fmspc=" + cat->tcb_infos[0].fmspc);
  ASSERT_EQ(tcb.status, 200);
  EXPECT_EQ(tcb.body, File(d + "/tdx/tcbInfo.json"));
  EXPECT_EQ(Get("/tdx/certification/v4/qe/identity").body, File(d + "/tdx/qeIdentity.json"));
  ASSERT_EQ(cat->vceks.size(), 1u);
  const Vcek& v = cat->vceks[0];
  Answer vcek = Get("/vcek/v1/" + v.product + "/" + v.hwid_hex + "?blSPL=" + std::to_string(v.bl) + "&teeSPL=" +
                    std::to_string(v.tee) + "&snpSPL=" + std::to_string(v.snp) + "&ucodeSPL=" + std::to_string(v.ucode));
  ASSERT_EQ(vcek.status, 200);
  EXPECT_EQ(vcek.body, File(d + "/snp/vcek.der"));
  EXPECT_EQ(Get("/vcek/v1/" + v.product + "/cert_chain").body, File(d + "/snp/cert_chain.pem"));
  Answer crl = Get("/vcek/v1/" + v.product + "/crl");
  ASSERT_EQ(crl.status, 200);
  EXPECT_EQ(crl.body, File(d + "/snp/crl.der"));
  EXPECT_EQ(Get("/sim-secrets.json").status, 404);
  ASSERT_EQ(std::system(("rm -rf " + d).c_str()), 0);
}

TEST(CrlUriTarget, AcceptsOnlyIntelsCrlUrls) {
  EXPECT_EQ(CrlUriTarget("https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"), "root");
  EXPECT_EQ(CrlUriTarget("https://certificates.trustedservices.intel.com/IntelSGXRootCA.crl"), "root");
  EXPECT_EQ(CrlUriTarget("https://api.trustedservices.intel.com/sgx/certification/v3/pckcrl?ca=processor"), "processor");
  EXPECT_EQ(CrlUriTarget("https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"),
            "platform");
  EXPECT_EQ(CrlUriTarget("https://certificates.trustedservices.intel.com.evil/IntelSGXRootCA.der"), std::nullopt);
  EXPECT_EQ(CrlUriTarget("https://api.trustedservices.intel.com/sgx/certification/vx/pckcrl?ca=platform"), std::nullopt);
  EXPECT_EQ(CrlUriTarget("https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=other"), std::nullopt);
  EXPECT_EQ(CrlUriTarget("https://a b/IntelSGXRootCA.der"), std::nullopt);
}

TEST(UrlEncodeComponent, EncodesLikeEncodeUriComponent) {
  EXPECT_EQ(UrlEncodeComponent("-----BEGIN CERTIFICATE-----\nab+/=\n"),
            "-----BEGIN%20CERTIFICATE-----%0Aab%2B%2F%3D%0A");
}

}  // namespace
}  // namespace vouch::simpcs
