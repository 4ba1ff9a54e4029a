// The collateral routes (issue 14): list / refresh / import / export, POST /api/v1/evidence/verify
// and the PCCS v4 read side, over a collateral service that holds an imported sim vendor folder.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <memory>
#include <string>

#include "api/manager.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "collateral/service.h"
#include "crypto/random.h"
#include "http/metrics.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Response;

class CollateralApiTest : public ManagerFixture {
 protected:
  CollateralApiTest() : ManagerFixture("colapi") {
    users_ = {{"admin", "admin"}, {"viewer", "viewer"}};
    postgres_ = false;  // SQLite also on the pg.<test> run
  }
  void Configure(ManagerOptions& options) override {
    collateral::ServiceOptions so;  // no sources: imports only, nothing is fetched
    auto svc = collateral::Service::Create(db_.get(), &clock_, so);
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    options.collateral = std::shared_ptr<collateral::Service>(std::move(*svc));
  }
  void SetUp() override {
    ManagerFixture::SetUp();
    if (!Ready()) return;
    auto vendor = attest::SimVendor::Create(sim_.path() + "/sgx");
    ASSERT_TRUE(vendor.ok()) << vendor.status().ToString();
    vendor_ = std::move(*vendor);
  }

  // The public files of the sim folder, as `vouch collateral import DIR` sends them.
  json ImportBody(bool with_secrets = false) {
    json files = json::object();
    for (const char* name : {"tcbInfo.json", "qeIdentity.json", "rootCaCrl.der", "intermediateCaCrl.der",
                             "tcbSignChain.pem", "trustedRootCaCert.pem", "pckCert.pem", "pckSignChain.pem"}) {
      auto bytes = ReadWholeFile(vendor_->dir() + "/" + name);
      if (bytes.ok()) files[name] = Base64Encode(AsBytes(*bytes));
    }
    if (with_secrets) files["sim-secrets.json"] = Base64Encode(AsBytes(std::string("{}")));
    return json{{"files", files}, {"origin", "sim folder"}};
  }

  std::string Fmspc() {
    auto text = ReadWholeFile(vendor_->dir() + "/tcbInfo.json");
    return json::parse(*text)["tcbInfo"]["fmspc"].get<std::string>();
  }

  test::TempDir sim_{"colsim"};
  std::unique_ptr<attest::SimVendor> vendor_;
};

TEST_F(CollateralApiTest, ImportListAndExportAnImportedFolder) {
  Response imp = Call("POST", "/api/v1/collateral/import", ImportBody().dump(), "admin");
  ASSERT_EQ(imp.status, 200u) << imp.body;
  json report = json::parse(imp.body);
  EXPECT_GE(report["stored"].get<int>(), 4) << imp.body;
  EXPECT_EQ(report["refused"].get<int>(), 0) << imp.body;

  Response list = Call("GET", "/api/v1/collateral", "", "viewer");
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_FALSE(json::parse(list.body)["items"].empty()) << list.body << " after " << imp.body;
  std::set<std::string> kinds;
  const json listed = json::parse(list.body);
  for (const auto& it : listed["items"]) {
    kinds.insert(it["kind"].get<std::string>());
    EXPECT_TRUE(it["sim"].get<bool>());
    EXPECT_EQ(it["source"], "import");
    EXPECT_EQ(it["state"], "valid");
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"sgx_tcb_info", "qe_identity", "pck_crl", "root_ca_crl"}));
  Response filtered = Call("GET", "/api/v1/collateral?kind=pck_crl", "", "viewer");
  ASSERT_EQ(filtered.status, 200u);
  EXPECT_EQ(json::parse(filtered.body)["items"].size(), 1u);

  // Importing the same files again stores nothing new.
  json again = json::parse(Call("POST", "/api/v1/collateral/import", ImportBody().dump(), "admin").body);
  EXPECT_EQ(again["stored"].get<int>(), 0) << again.dump();

  Response exp = Call("GET", "/api/v1/collateral/export", "", "admin");
  ASSERT_EQ(exp.status, 200u) << exp.body;
  EXPECT_TRUE(json::parse(exp.body)["files"].contains("manifest.json"));
  EXPECT_EQ(Call("GET", "/api/v1/collateral/export", "", "viewer").status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/collateral/import", ImportBody().dump(), "viewer").status, 403u);
}

TEST_F(CollateralApiTest, ImportRefusesSecretsAndMalformedBodies) {
  struct Case {
    std::string body, code;
  };
  const std::vector<Case> cases = {
      {ImportBody(/*with_secrets=*/true).dump(), "secret_file_refused"},
      {R"({"files":{}})", "invalid_files"},
      {R"({"files":{"tcbInfo.json":"!!!"}})", "invalid_files"},
      {R"({"files":{"../x":"AAAA"}})", "invalid_file_name"},
      {R"({"files":{".hidden":"AAAA"}})", "invalid_file_name"},
      {R"({"files":{"a/b":"AAAA"}})", "invalid_file_name"},
      {R"({"files":{"x":"AAAA"},"extra":1})", "unknown_field"},
      {R"({"files":["x"]})", "invalid_files"},
      {R"([1])", ""},
      {R"(not json)", ""},
  };
  for (const auto& c : cases) {
    Response r = Call("POST", "/api/v1/collateral/import", c.body, "admin");
    EXPECT_EQ(r.status, 400u) << c.body.substr(0, 80) << " -> " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    if (!c.code.empty()) {
      EXPECT_EQ(j["error"]["code"], c.code) << c.body.substr(0, 80);
    }
  }
  json list = json::parse(Call("GET", "/api/v1/collateral", "", "viewer").body);
  EXPECT_TRUE(list["items"].empty()) << "a refused import stored something: " << list.dump();
}

TEST_F(CollateralApiTest, PccsRoutesServeTheCachedBytesWithIssuerChainHeaders) {
  ASSERT_EQ(Call("POST", "/api/v1/collateral/import", ImportBody().dump(), "admin").status, 200u);
  const std::string tcb_info = *ReadWholeFile(vendor_->dir() + "/tcbInfo.json");
  const std::string sign_chain = *ReadWholeFile(vendor_->dir() + "/tcbSignChain.pem");

  Response tcb = Call("GET", "/sgx/certification/v4/tcb?fmspc=" + Fmspc());  // no credentials: public
  ASSERT_EQ(tcb.status, 200u) << tcb.body;
  EXPECT_EQ(tcb.body, tcb_info);
  EXPECT_EQ(tcb.content_type, "application/json");
  std::string header = tcb.Header("TCB-Info-Issuer-Chain");
  ASSERT_FALSE(header.empty());
  EXPECT_EQ(header.rfind("-----BEGIN%20CERTIFICATE-----%0A", 0), 0u) << header.substr(0, 60);
  EXPECT_EQ(header.find_first_of(" \n+/="), std::string::npos);
  EXPECT_EQ(tcb.Header("Request-ID").size(), 32u);

  Response qe = Call("GET", "/sgx/certification/v4/qe/identity?update=standard");
  ASSERT_EQ(qe.status, 200u) << qe.body;
  EXPECT_EQ(qe.body, *ReadWholeFile(vendor_->dir() + "/qeIdentity.json"));
  EXPECT_FALSE(qe.Header("SGX-Enclave-Identity-Issuer-Chain").empty());

  Response der = Call("GET", "/sgx/certification/v4/pckcrl?ca=platform&encoding=der");
  ASSERT_EQ(der.status, 200u) << der.body;
  EXPECT_EQ(der.body, *ReadWholeFile(vendor_->dir() + "/intermediateCaCrl.der"));
  EXPECT_FALSE(der.Header("SGX-PCK-CRL-Issuer-Chain").empty());
  Response pem = Call("GET", "/sgx/certification/v4/pckcrl?ca=Platform");
  ASSERT_EQ(pem.status, 200u);
  EXPECT_EQ(pem.body.rfind("-----BEGIN X509 CRL-----", 0), 0u);
  // As a PCCS: rootcacrl in hex (QCNL API 3.0), crl?uri= in DER (3.1).
  const std::string root_der = *ReadWholeFile(vendor_->dir() + "/rootCaCrl.der");
  Response root = Call("GET", "/sgx/certification/v4/rootcacrl");
  ASSERT_EQ(root.status, 200u);
  EXPECT_EQ(root.body, HexEncode(AsBytes(root_der)));
  Response cdp = Call("GET", "/sgx/certification/v4/crl?uri=https%3A%2F%2Fcertificates.trustedservices.intel.com%2FIntelSGXRootCA.der");
  ASSERT_EQ(cdp.status, 200u) << cdp.body;
  EXPECT_EQ(cdp.body, root_der);
  Response pck = Call("GET", "/sgx/certification/v4/crl?uri=https%3A%2F%2Fapi.trustedservices.intel.com%2Fsgx%2Fcertification%2Fv4%2Fpckcrl%3Fca%3Dplatform%26encoding%3Dder");
  ASSERT_EQ(pck.status, 200u) << pck.body;
  EXPECT_EQ(pck.body, *ReadWholeFile(vendor_->dir() + "/intermediateCaCrl.der"));

  // Not held and no source to fetch from: 404 JSON; malformed parameters: 400 JSON.
  for (const auto& [target, status] : std::vector<std::pair<std::string, unsigned>>{
           {"/tdx/certification/v4/tcb?fmspc=" + Fmspc(), 404},
           {"/sgx/certification/v4/tcb?fmspc=00112233445", 400},
           {"/sgx/certification/v4/tcb?fmspc=zz1122334455", 400},
           {"/sgx/certification/v4/tcb", 400},
           {"/sgx/certification/v4/tcb?fmspc=" + Fmspc() + "&update=later", 400},
           {"/sgx/certification/v4/pckcrl", 400},
           {"/sgx/certification/v4/pckcrl?ca=intel", 400},
           {"/sgx/certification/v4/pckcrl?ca=platform&encoding=hex", 400},
           {"/sgx/certification/v4/crl", 400},
           {"/sgx/certification/v4/crl?uri=https%3A%2F%2Fevil.example%2FIntelSGXRootCA.der", 400},
           {"/sgx/certification/v4/crl?uri=http%3A%2F%2Fcertificates.trustedservices.intel.com%2FIntelSGXRootCA.der", 400},
       }) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, status) << target << " -> " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << target << " -> " << r.body;
  }
}

TEST_F(CollateralApiTest, EvidenceVerifyAnswersTheCliVerdictForAnyUser) {
  ASSERT_EQ(Call("POST", "/api/v1/collateral/import", ImportBody().dump(), "admin").status, 200u);
  std::array<uint8_t, 384> body{};
  std::array<uint8_t, 64> report_data{};
  report_data[0] = 0x42;
  auto quote = vendor_->platform().Quote(body, report_data);
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  json req = {{"evidence", Base64Encode(*quote)}};
  Response r = Call("POST", "/api/v1/evidence/verify", req.dump(), "viewer");
  ASSERT_EQ(r.status, 200u) << r.body;
  json v = json::parse(r.body);
  EXPECT_EQ(v["platform"], "sgx");
  EXPECT_TRUE(v["genuine"].get<bool>()) << r.body;
  EXPECT_TRUE(v["insecure_sim"].get<bool>());
  EXPECT_EQ(v["tcb_status"], "UpToDate");
  EXPECT_EQ(v["report_data"].get<std::string>().substr(0, 2), "42");

  // The same bytes with a flipped signature byte: 200 with a non-genuine verdict.
  std::vector<uint8_t> bad = *quote;
  bad[600] ^= 1;
  Response nb = Call("POST", "/api/v1/evidence/verify", json{{"evidence", Base64Encode(bad)}}.dump(), "viewer");
  ASSERT_EQ(nb.status, 200u) << nb.body;
  json nv = json::parse(nb.body);
  EXPECT_FALSE(nv["genuine"].get<bool>());
  EXPECT_TRUE(nv["error"]["code"].is_string());

  // `at` before the sim collateral was issued: not genuine (collateral not yet valid / expired).
  Response old = Call("POST", "/api/v1/evidence/verify",
                      json{{"evidence", Base64Encode(*quote)}, {"at", "2001-01-01T00:00:00Z"}}.dump(), "viewer");
  ASSERT_EQ(old.status, 200u) << old.body;
  EXPECT_FALSE(json::parse(old.body)["genuine"].get<bool>()) << old.body;
}

TEST_F(CollateralApiTest, EvidenceVerifyRefusesBadInputWith400) {
  const std::string b64 = Base64Encode(AsBytes(std::string("not a quote")));
  for (const auto& [body, code] : std::vector<std::pair<std::string, std::string>>{
           {R"({})", ""},
           {R"({"evidence":""})", "invalid_evidence"},
           {R"({"evidence":"@@@"})", "invalid_evidence"},
           {R"({"evidence":42})", ""},
           {json{{"evidence", b64}, {"platform", "arm-cca"}}.dump(), "invalid_platform"},
           {json{{"evidence", b64}, {"at", "yesterday"}}.dump(), "invalid_at"},
           {json{{"evidence", b64}, {"extra", true}}.dump(), ""},
           {json{{"evidence", std::string(300000, 'A')}}.dump(), ""},
           {"[]", ""},
       }) {
    Response r = Call("POST", "/api/v1/evidence/verify", body, "viewer");
    EXPECT_EQ(r.status, 400u) << body.substr(0, 80) << " -> " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    if (!code.empty()) {
      EXPECT_EQ(j["error"]["code"], code) << body.substr(0, 80);
    }
  }
  // Bytes that are no evidence at all: a verdict, not an error (as `vouch evidence verify`).
  Response r = Call("POST", "/api/v1/evidence/verify", json{{"evidence", b64}}.dump(), "viewer");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_FALSE(json::parse(r.body)["genuine"].get<bool>());
  EXPECT_EQ(Call("POST", "/api/v1/evidence/verify", json{{"evidence", b64}}.dump()).status, 401u);
}

TEST_F(CollateralApiTest, RefreshNeedsAdminAndValidatesItsBody) {
  EXPECT_EQ(Call("POST", "/api/v1/collateral/refresh", "{}", "viewer").status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/collateral/refresh", R"({"key":"00606a000000"})", "admin").status, 400u);
  EXPECT_EQ(Call("POST", "/api/v1/collateral/refresh", R"({"kind":"no_such_kind","key":"x"})", "admin").status, 400u);
  EXPECT_EQ(Call("POST", "/api/v1/collateral/refresh", R"({"kind":1})", "admin").status, 400u);
  Response all = Call("POST", "/api/v1/collateral/refresh", "", "admin");
  EXPECT_EQ(all.status, 200u) << all.body;
}

}  // namespace
}  // namespace vouch::api
