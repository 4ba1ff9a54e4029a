// Confidential-VM nodes (issue 14): TDX and SEV-SNP sim nodes provision against a manager that
// has never seen their collateral; the collateral service fetches it from `vouch sim pcs`'s
// emulator (libs/simpcs) over HTTPS, once; the zone's node identities and TCB rules apply; a TCB
// recovery picked up by a refresh stops renewals; workload certificates for a CVM node.
#include <map>
#include <gtest/gtest.h>

#include <filesystem>

#include "api/manager.h"
#include "api/routes.h"
#include "attest/sim_agent.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "collateral/service.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "evidence/sgx_report.h"
#include "http/server.h"
#include "pki/service.h"
#include "simpcs/emulator.h"
#include "store/database.h"
#include "testing/csr.h"
#include "testing/request.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

class CvmNodesTest : public ::testing::Test {
 protected:
  static const std::string& SnpTemplate() {
    static test::TempDir* dir = new test::TempDir("cvmnodes-snp");  // lives for the process
    static const std::string path = [] {
      attest::SimVendorOptions snp;
      snp.tee = attest::SimTee::kSevSnp;
      auto v = attest::SimVendor::Create(dir->path() + "/snp", snp);
      EXPECT_TRUE(v.ok()) << v.status().ToString();
      return dir->path() + "/snp";
    }();
    return path;
  }

  void SetUp() override {
    attest::SimVendorOptions tdx;
    tdx.tee = attest::SimTee::kTdx;
    auto t = attest::SimVendor::Create(dir_ + "/tdx", tdx);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tdx_ = std::move(*t);
    // The SEV-SNP sim (two RSA-4096 keys: slow to make) is made once per suite and copied.
    std::error_code ec;
    std::filesystem::copy(SnpTemplate(), dir_ + "/snp", std::filesystem::copy_options::recursive, ec);
    ASSERT_FALSE(ec) << ec.message();
    auto s = attest::SimVendor::Load(dir_ + "/snp");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    snp_ = std::move(*s);

    // `vouch sim pcs` over both folders, on loopback HTTPS.
    simpcs::Options po;
    po.dirs = {dir_ + "/tdx", dir_ + "/snp"};
    auto emulator = simpcs::Emulator::Create(po);
    ASSERT_TRUE(emulator.ok()) << emulator.status().ToString();
    emulator_ = std::move(*emulator);
    auto certs = pki::CreateServiceCertificates();
    ASSERT_TRUE(certs.ok());
    const std::string ca_file = tmp_.Write("pcs-ca.pem", certs->ca_cert_pem);
    http::ServerOptions so;
    so.port = 0;
    so.threads = 2;
    so.cert_chain_pem = certs->server_chain_pem;
    so.private_key_pem = std::string(certs->server_key_pem.view());
    http::Router pcs_router;
    emulator_->AddRoutes(&pcs_router);
    auto srv = http::Server::Create(so, std::move(pcs_router));
    ASSERT_TRUE(srv.ok());
    pcs_ = std::move(*srv);
    ASSERT_TRUE(pcs_->Start().ok());
    const std::string url = "https://127.0.0.1:" + std::to_string(pcs_->port());

    auto db = store::OpenDatabase("sqlite:" + dir_ + "/vouch.db");
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    collateral::ServiceOptions co;
    co.pccs_url = url;
    co.kds_url = url;
    co.ca_file = ca_file;
    co.kds_min_interval = std::chrono::milliseconds(0);
    auto service = collateral::Service::Create(db_.get(), &clock_, co);
    ASSERT_TRUE(service.ok());
    service_ = std::shared_ptr<collateral::Service>(std::move(*service));
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    options.collateral = service_;
    auto m = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, options);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    manager_ = std::move(*m);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, nullptr));
    Principal sys = Principal::System();
    ASSERT_TRUE(manager_->CreateUser(sys, "admin", "admin", "correct-horse-battery").ok());
    Response r = Call("POST", "/api/v1/sys/auth", json{{"username", "admin"}, {"password", "correct-horse-battery"}}.dump());
    ASSERT_EQ(r.status, 200u);
    admin_token_ = json::parse(r.body)["token"];
    Admin("POST", "/api/v1/zones", {{"name", "dev"}, {"allow_sim", true}}, 201);
    Admin("POST", "/api/v1/zones", {{"name", "prod"}}, 201);
    // A sim zone accepts the shipped sim agent's launch measurements from its creation; the
    // production zone gets them added (approved) so that its refusals are about sim, not identity.
    AddIdentity("prod", {{"platform", "tdx"}, {"mrtd", HexEncode(attest::ShippedSimAgent().tdx_mrtd)}});
    AddIdentity("prod", {{"platform", "sev-snp"}, {"measurement", HexEncode(attest::ShippedSimAgent().snp_measurement)}});
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    if (pcs_) pcs_->Stop(std::chrono::milliseconds(200));
  }

  void AddIdentity(const std::string& zone, const json& rule) {
    Principal admin;
    admin.kind = Principal::Kind::kUser;
    admin.name = "admin";
    admin.role = Role::kAdmin;
    auto users = manager_->ListUsers(Principal::System(), {});
    admin.id = (*users)["items"][0]["id"];
    auto added = manager_->AddNodeIdentity(admin, zone, rule, "sim agent");
    ASSERT_TRUE(added.ok()) << added.status().ToString();
    if (added->contains("task_id") && (*added)["task_id"].is_string()) {
      auto approved = manager_->ApproveTask(admin, (*added)["task_id"].get<std::string>());
      ASSERT_TRUE(approved.ok()) << approved.status().ToString();
    }
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& token = "", const std::vector<uint8_t>* client_cert = nullptr) {
    test::RequestBuilder builder(method, target);
    builder.Body(body).Bearer(token);
    if (client_cert != nullptr) builder.ClientCert(*client_cert);
    bool parsed = false;
    Request req = builder.Build(&parsed);
    EXPECT_TRUE(parsed);
    return router_->Dispatch(req);
  }
  json Admin(const std::string& method, const std::string& target, const json& body, unsigned want) {
    Response r = Call(method, target, body.is_null() ? "" : body.dump(), admin_token_);
    EXPECT_EQ(r.status, want) << method << " " << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  std::string JoinToken(const std::string& zone) {
    return Admin("POST", "/api/v1/zones/" + zone + "/join-tokens", json::object(), 201)["token"];
  }
  std::string Nonce() { return json::parse(Call("POST", "/api/v1/nodes/nonce").body)["nonce"]; }
  static std::string Code(const Response& r) {
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"]["code"].get<std::string>() : "";
  }

  // The 64-byte inblob: SHA-256(SPKI || nonce) || 32 zero bytes.
  static std::vector<uint8_t> Inblob(EVP_PKEY* key, const std::string& nonce) {
    auto spki = crypto::PublicKeyToDer(key);
    auto n = HexDecode(nonce);
    std::vector<uint8_t> bound = *spki;
    bound.insert(bound.end(), n->begin(), n->end());
    auto d = crypto::Sha256(bound);
    std::vector<uint8_t> out(d.begin(), d.end());
    out.resize(64, 0);
    return out;
  }
  json Body(const std::string& platform, EVP_PKEY* key, const std::string& token, const std::string& nonce,
            bool debug = false) {
    std::vector<uint8_t> evidence;
    const auto inblob = Inblob(key, nonce);
    if (platform == "tdx") {
      attest::SimTdxQuoteOptions o;
      o.mr_td = attest::ShippedSimAgent().tdx_mrtd;
      o.debug = debug;
      auto q = tdx_->platform().TdxQuote(o, inblob);
      EXPECT_TRUE(q.ok()) << q.status().ToString();
      evidence = *q;
    } else {
      attest::SimSnpReportOptions o;
      o.measurement = attest::ShippedSimAgent().snp_measurement;
      o.debug = debug;
      auto e = snp_->snp()->Evidence(o, inblob);
      EXPECT_TRUE(e.ok()) << e.status().ToString();
      evidence = *e;
    }
    json j = {{"nonce", nonce},
              {"public_key", Base64Encode(*crypto::PublicKeyToDer(key))},
              {"platform", platform},
              {"evidence", Base64Encode(evidence)},
              {"info", {{"version", "test"}}}};
    if (!token.empty()) j["join_token"] = token;
    return j;
  }
  int64_t Count(const std::string& route_and_status) {
    auto counts = emulator_->Counts();
    auto it = counts.find(route_and_status);
    return it == counts.end() ? 0 : it->second;
  }

  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  test::TempDir tmp_{"cvmnodes"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<attest::SimVendor> tdx_, snp_;
  std::unique_ptr<simpcs::Emulator> emulator_;
  std::unique_ptr<http::Server> pcs_;
  std::unique_ptr<store::Database> db_;
  std::shared_ptr<collateral::Service> service_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Router> router_;
  std::string admin_token_;
};

TEST_F(CvmNodesTest, ASimZoneAcceptsTheShippedSimAgentOnEveryPlatformFromItsCreation) {
  json dev = Admin("GET", "/api/v1/zones/dev/node-identities", nullptr, 200);
  std::map<std::string, json> by_platform;
  for (const json& i : dev["items"]) {
    EXPECT_EQ(i["status"], "active");
    by_platform[i["platform"].get<std::string>()] = i["rule"];
  }
  ASSERT_EQ(by_platform.size(), 3u) << dev.dump();
  EXPECT_EQ(by_platform["sgx"]["mrenclave"], HexEncode(attest::ShippedSimAgent().mrenclave));
  EXPECT_EQ(by_platform["tdx"]["mrtd"], HexEncode(attest::ShippedSimAgent().tdx_mrtd));
  EXPECT_EQ(by_platform["sev-snp"]["measurement"], HexEncode(attest::ShippedSimAgent().snp_measurement));
  // A zone without sim seeds none of them (prod's two were added and approved by the fixture).
  json prod = Admin("GET", "/api/v1/zones/prod/node-identities", nullptr, 200);
  for (const json& i : prod["items"]) EXPECT_NE(i["platform"], "sgx") << prod.dump();
  EXPECT_EQ(prod["items"].size(), 2u) << prod.dump();
}

TEST_F(CvmNodesTest, TdxNodeProvisionsWithCollateralFetchedOnce) {
  auto key = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", Body("tdx", key->get(), JoinToken("dev"), Nonce()).dump());
  ASSERT_EQ(r.status, 201u) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["platform"], "sim-tdx");
  EXPECT_EQ(j["tcb_status"], "UpToDate");
  EXPECT_TRUE(j["insecure_sim"].get<bool>());
  json node = Admin("GET", "/api/v1/nodes/" + j["node_id"].get<std::string>(), nullptr, 200);
  EXPECT_EQ(node["platform"], "sim-tdx");
  EXPECT_EQ(node["fmspc"].get<std::string>().size(), 12u);
  EXPECT_EQ(Count("tdx_tcb 200"), 1);
  // A second node: from the store, no request.
  const auto before = emulator_->Counts();
  auto key2 = crypto::GenerateP256();
  r = Call("POST", "/api/v1/nodes", Body("tdx", key2->get(), JoinToken("dev"), Nonce()).dump());
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(emulator_->Counts(), before);
  // The zone's rules: sim refused in prod; debug TDs never; wrong platform claimed.
  r = Call("POST", "/api/v1/nodes", Body("tdx", key2->get(), JoinToken("prod"), Nonce()).dump());
  EXPECT_EQ(Code(r), "sim_not_allowed") << r.body;
  r = Call("POST", "/api/v1/nodes", Body("tdx", key2->get(), JoinToken("dev"), Nonce(), /*debug=*/true).dump());
  EXPECT_EQ(Code(r), "debug_not_allowed") << r.body;
  json wrong = Body("tdx", key2->get(), JoinToken("dev"), Nonce());
  wrong["platform"] = "sgx";
  r = Call("POST", "/api/v1/nodes", wrong.dump());
  EXPECT_EQ(r.status, 403u) << r.body;
  // Bound to another key: refused.
  auto other = crypto::GenerateP256();
  json stolen = Body("tdx", key2->get(), JoinToken("dev"), Nonce());
  stolen["public_key"] = Base64Encode(*crypto::PublicKeyToDer(other->get()));
  r = Call("POST", "/api/v1/nodes", stolen.dump());
  EXPECT_EQ(Code(r), "report_data_mismatch") << r.body;
}

TEST_F(CvmNodesTest, SnpNodeProvisionsAndRecordsItsReportedTcb) {
  auto key = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", Body("sev-snp", key->get(), JoinToken("dev"), Nonce()).dump());
  ASSERT_EQ(r.status, 201u) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["platform"], "sim-sev-snp");
  json node = Admin("GET", "/api/v1/nodes/" + j["node_id"].get<std::string>(), nullptr, 200);
  EXPECT_EQ(node["platform"], "sim-sev-snp");
  ASSERT_TRUE(node["info"].contains("platform_tcb")) << node.dump();
  EXPECT_TRUE(node["info"]["platform_tcb"].contains("reported_tcb"));
  // The AMD CRL of the sim's ARK was fetched from KDS and checked.
  EXPECT_EQ(node["info"]["platform_tcb"]["amd_crl"], "checked");
  EXPECT_EQ(Count("vcek 200"), 0);  // the VCEK came with the evidence's certificate table
  r = Call("POST", "/api/v1/nodes", Body("sev-snp", key->get(), JoinToken("prod"), Nonce()).dump());
  EXPECT_EQ(r.status, 403u) << r.body;
  r = Call("POST", "/api/v1/nodes", Body("sev-snp", key->get(), JoinToken("dev"), Nonce(), true).dump());
  EXPECT_EQ(Code(r), "debug_not_allowed") << r.body;
  // A tampered report is not genuine.
  json body = Body("sev-snp", key->get(), JoinToken("dev"), Nonce());
  auto e = *Base64Decode(body["evidence"].get<std::string>());
  e[0x90] ^= 1;  // MEASUREMENT
  body["evidence"] = Base64Encode(e);
  r = Call("POST", "/api/v1/nodes", body.dump());
  EXPECT_EQ(Code(r), "evidence_not_genuine") << r.body;
}

TEST_F(CvmNodesTest, TcbRecoveryPickedUpByARefreshStopsRenewal) {
  auto key = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", Body("tdx", key->get(), JoinToken("dev"), Nonce()).dump());
  ASSERT_EQ(r.status, 201u) << r.body;
  json j = json::parse(r.body);
  auto cert = *crypto::CertToDer(crypto::CertFromPem(j["certificate_pem"].get<std::string>())->get());
  ASSERT_TRUE(attest::SimTcbRecovery(dir_ + "/tdx").ok());
  clock_.Advance(std::chrono::seconds(60));
  Principal sys = Principal::System();
  sys.role = Role::kAdmin;
  auto refreshed = manager_->RefreshCollateral(sys, "", "");
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_GE((*refreshed)["stored"].get<int>(), 1) << refreshed->dump();
  r = Call("POST", "/api/v1/nodes/renew", Body("tdx", key->get(), "", Nonce()).dump(), "", &cert);
  EXPECT_EQ(Code(r), "tcb_too_old") << r.body;
  EXPECT_EQ(Admin("GET", "/api/v1/nodes/" + j["node_id"].get<std::string>(), nullptr, 200)["tcb_status"], "OutOfDate");
}

TEST_F(CvmNodesTest, PcsDownNodesStillProvisionFromTheCache) {
  auto key = crypto::GenerateP256();
  ASSERT_EQ(Call("POST", "/api/v1/nodes", Body("tdx", key->get(), JoinToken("dev"), Nonce()).dump()).status, 201u);
  ASSERT_EQ(Call("POST", "/api/v1/nodes", Body("sev-snp", key->get(), JoinToken("dev"), Nonce()).dump()).status, 201u);
  pcs_->Stop(std::chrono::milliseconds(200));
  pcs_.reset();
  auto k2 = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", Body("tdx", k2->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 201u) << r.body;
  r = Call("POST", "/api/v1/nodes", Body("sev-snp", k2->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 201u) << r.body;
}

TEST_F(CvmNodesTest, CvmNodeGetsWorkloadCertificates) {
  auto key = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", Body("tdx", key->get(), JoinToken("dev"), Nonce()).dump());
  ASSERT_EQ(r.status, 201u) << r.body;
  auto cert = *crypto::CertToDer(crypto::CertFromPem(json::parse(r.body)["certificate_pem"].get<std::string>())->get());
  json app = Admin("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "dev"}, {"domains", {"web.example.com"}}}, 201);
  for (const auto& t : app["domain_tasks"]) {
    Admin("POST", "/api/v1/tasks/" + t["task_id"].get<std::string>() + "/approve", nullptr, 200);
  }
  json b = Admin("POST", "/api/v1/builds",
                 {{"app", "web"}, {"mrenclave", std::string(64, 'a')}, {"mrsigner", std::string(64, 'b')},
                  {"isvprodid", 1}, {"isvsvn", 2}},
                 201);
  Admin("POST", "/api/v1/tasks/" + b["task_id"].get<std::string>() + "/approve", nullptr, 200);
  // What the agent forwards for a workload on a CVM: a synthesized 384-byte report body.
  auto wkey = crypto::GenerateP256();
  evidence::SgxReportBody body;
  body.mr_enclave.fill(0xaa);
  body.mr_signer.fill(0xbb);
  body.isv_prod_id = 1;
  body.isv_svn = 2;
  auto d = crypto::Sha256(*crypto::PublicKeyToDer(wkey->get()));
  std::copy(d.begin(), d.end(), body.report_data.begin());
  auto raw = evidence::EncodeSgxReportBody(body);
  auto csr = test::CsrPemFor(wkey->get(), {"web.example.com"}, "w");
  r = Call("POST", "/api/v1/certificates", json{{"csr", csr}, {"report_body", Base64Encode(raw)}}.dump(), "", &cert);
  ASSERT_EQ(r.status, 201u) << r.body;
}

}  // namespace
}  // namespace vouch::api
