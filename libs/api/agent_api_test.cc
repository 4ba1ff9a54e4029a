// The agent side of the API: node provisioning with sim evidence, mTLS node identity, workload
// certificates after local attestation, heartbeats (docs/agent.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>

#include "api/manager.h"
#include "api/routes.h"
#include "attest/sim_agent.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "http/metrics.h"
#include "store/database.h"
#include "store/migrations.h"
#include "testing/csr.h"
#include "testing/request.h"
#include "testing/temp_dir.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

#include <openssl/pem.h>

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

std::string CsrFor(EVP_PKEY* key, const std::vector<std::string>& dns) { return test::CsrPemFor(key, dns, "w"); }

// The store, with a hook a test may have run once just before the next row-keyed write: between
// an issuance's decision (and signing) and the write that records it.
class HookedDatabase final : public store::Database {
 public:
  explicit HookedDatabase(std::unique_ptr<store::Database> db) : db_(std::move(db)) {}
  std::function<void()> before_row_keyed_write;

  Status Write(const std::function<Status(store::Transaction&)>& fn) override { return db_->Write(fn); }
  Status Write(const std::function<Status(store::Transaction&)>& fn, store::WriteMode mode) override {
    if (mode == store::WriteMode::kRowKeyed && before_row_keyed_write) {
      auto hook = std::move(before_row_keyed_write);
      before_row_keyed_write = nullptr;
      hook();
    }
    return db_->Write(fn, mode);
  }
  Status Read(const std::function<Status(store::Transaction&)>& fn) override { return db_->Read(fn); }
  Result<store::Rows> QueryOnce(std::string_view sql, const std::vector<store::Value>& params) override {
    return db_->QueryOnce(sql, params);
  }
  std::string_view backend() const override { return db_->backend(); }
  Status Ping() override { return db_->Ping(); }

 private:
  std::unique_ptr<store::Database> db_;
};

class AgentApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto good = attest::SimVendor::Create(dir_ + "/sim");
    ASSERT_TRUE(good.ok()) << good.status().ToString();
    sim_ = std::move(*good);
    attest::SimVendorOptions old_options;
    old_options.tcb = attest::SimTcb::kOutOfDate;
    auto old = attest::SimVendor::Create(dir_ + "/sim-old", old_options);
    ASSERT_TRUE(old.ok());
    sim_old_ = std::move(*old);
    auto db = store::OpenDatabase("sqlite:" + dir_ + "/vouch.db");
    ASSERT_TRUE(db.ok());
    auto hooked = std::make_unique<HookedDatabase>(std::move(*db));
    hooked_ = hooked.get();
    db_ = std::move(hooked);
    ASSERT_TRUE(db_->Migrate().ok());
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    options.collateral_dirs = {dir_ + "/sim", dir_ + "/sim-old"};
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
    json app = Admin("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "dev"}, {"domains", {"web.example.com"}}}, 201);
    // Initial domains are approval tasks like added ones (docs/design.md).
    for (const auto& t : app["domain_tasks"]) {
      Admin("POST", "/api/v1/tasks/" + t["task_id"].get<std::string>() + "/approve", nullptr, 200);
    }
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
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
  std::string Nonce() {
    Response r = Call("POST", "/api/v1/nodes/nonce");
    EXPECT_EQ(r.status, 201u);
    return json::parse(r.body)["nonce"];
  }

  struct Node {
    crypto::EvpPkeyPtr key;
    std::vector<uint8_t> cert_der;
    std::string id;
  };
  // The provisioning request an agent sends; `bind_key` lets a test bind a different key.
  json ProvisionBody(const attest::SimVendor& sim, EVP_PKEY* key, const std::string& token, const std::string& nonce,
                     EVP_PKEY* bind_key = nullptr) {
    auto spki = crypto::PublicKeyToDer(key);
    auto bind_spki = crypto::PublicKeyToDer(bind_key ? bind_key : key);
    auto n = HexDecode(nonce);
    std::vector<uint8_t> bound = *bind_spki;
    bound.insert(bound.end(), n->begin(), n->end());
    auto digest = crypto::Sha256(bound);
    // The shipped sim agent's identity unless a test sets another one (quote_*).
    evidence::SgxReportBody body;
    body.mr_enclave = quote_mrenclave_;
    body.mr_signer = quote_mrsigner_;
    if (quote_debug_) body.attribute_flags |= evidence::kSgxFlagDebug;
    auto quote = sim.platform().Quote(body, digest);
    EXPECT_TRUE(quote.ok());
    json j = {{"nonce", nonce}, {"public_key", Base64Encode(*spki)}, {"platform", "sgx"}, {"evidence", Base64Encode(*quote)},
              {"info", {{"version", "test"}}}};
    if (!token.empty()) j["join_token"] = token;
    return j;
  }
  Node Provision(const std::string& zone = "dev") {
    Node n;
    n.key = std::move(*crypto::GenerateP256());
    Response r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, n.key.get(), JoinToken(zone), Nonce()).dump());
    EXPECT_EQ(r.status, 201u) << r.body;
    json j = json::parse(r.body);
    auto cert = crypto::CertFromPem(j["certificate_pem"].get<std::string>());
    EXPECT_TRUE(cert.ok());
    n.cert_der = *crypto::CertToDer(cert->get());
    n.id = j["node_id"];
    return n;
  }

  std::string Build(const std::string& mre_byte, bool approve = true) {
    std::string mre(64, mre_byte[0]);
    json b = Admin("POST", "/api/v1/builds",
                   {{"app", "web"}, {"mrenclave", mre}, {"mrsigner", std::string(64, 'b')}, {"isvprodid", 1}, {"isvsvn", 2}},
                   201);
    if (approve) Admin("POST", "/api/v1/tasks/" + b["task_id"].get<std::string>() + "/approve", nullptr, 200);
    return b["id"];
  }
  // What the agent forwards: CSR + report body claiming `mre_byte` measurements.
  json CertBody(const std::string& csr, EVP_PKEY* bound_key, const std::string& mre_byte) {
    evidence::SgxReportBody body;
    auto mre = HexDecode(std::string(64, mre_byte[0]));
    std::copy(mre->begin(), mre->end(), body.mr_enclave.begin());
    body.mr_signer.fill(0xbb);
    body.isv_prod_id = 1;
    body.isv_svn = 2;
    auto spki = crypto::PublicKeyToDer(bound_key);
    auto d = crypto::Sha256(*spki);
    std::copy(d.begin(), d.end(), body.report_data.begin());
    auto raw = evidence::EncodeSgxReportBody(body);
    return {{"csr", csr}, {"report_body", Base64Encode(raw)}};
  }
  std::string Code(const Response& r) {
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"]["code"].get<std::string>() : "";
  }
  int64_t CountRows(const std::string& table) {
    int64_t n = 0;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT COUNT(*) AS n FROM " + table, {}, "n"));
                     n = r.Int("n");
                     return Status::Ok();
                   }).ok());
    return n;
  }
  bool Audited(const std::string& outcome_part) {
    json a = Admin("GET", "/api/v1/audit?limit=1000", nullptr, 200);
    for (const auto& e : a["items"]) {
      if (e["outcome"].get<std::string>().find(outcome_part) != std::string::npos) return true;
    }
    return false;
  }

  std::array<uint8_t, 32> quote_mrenclave_ = attest::ShippedSimAgent().mrenclave;
  std::array<uint8_t, 32> quote_mrsigner_ = attest::ShippedSimAgent().mrsigner;
  bool quote_debug_ = false;
  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  test::TempDir tmp_{"agentapi"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<attest::SimVendor> sim_, sim_old_;
  std::unique_ptr<store::Database> db_;
  HookedDatabase* hooked_ = nullptr;  // db_
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Router> router_;
  std::string admin_token_;
};

TEST_F(AgentApiTest, ProvisioningIssuesANodeCertificateFromTheNodeCa) {
  Node n = Provision();
  auto ca = crypto::CertFromPem(*manager_->NodeCaPem());
  ASSERT_TRUE(ca.ok());
  auto cert = crypto::CertFromDer(n.cert_der);
  EXPECT_EQ(X509_verify(cert->get(), X509_get0_pubkey(ca->get())), 1);
  json node = Admin("GET", "/api/v1/nodes/" + n.id, nullptr, 200);
  EXPECT_EQ(node["status"], "active");
  EXPECT_EQ(node["platform"], "sim-sgx");
  EXPECT_EQ(node["tcb_status"], "UpToDate");
  EXPECT_EQ(node["fmspc"], "00906ed50000");
  EXPECT_EQ(node["info"]["version"], "test");
  EXPECT_TRUE(Audited("ok"));
}

TEST_F(AgentApiTest, JoinTokensAndNoncesAreSingleUse) {
  auto key = crypto::GenerateP256();
  std::string token = JoinToken("dev");
  std::string nonce = Nonce();
  json body = ProvisionBody(*sim_, key->get(), token, nonce);
  ASSERT_EQ(Call("POST", "/api/v1/nodes", body.dump()).status, 201u);
  int64_t nodes = CountRows("nodes");
  // Same nonce again: refused before anything else.
  Response r = Call("POST", "/api/v1/nodes", body.dump());
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "nonce_invalid");
  // Fresh nonce, used token.
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), token, Nonce()).dump());
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "join_token_invalid");
  // A made-up nonce.
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), std::string(64, 'a')).dump());
  EXPECT_EQ(Code(r), "nonce_invalid");
  EXPECT_EQ(CountRows("nodes"), nodes);
  EXPECT_TRUE(Audited("denied:nonce_invalid"));
  EXPECT_TRUE(Audited("denied:join_token_invalid"));
}

TEST_F(AgentApiTest, EvidenceMustBindTheKeyAndSatisfyTheZone) {
  auto key = crypto::GenerateP256();
  auto other = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce(), other->get()).dump());
  EXPECT_EQ(Code(r), "report_data_mismatch") << r.body;
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("prod"), Nonce()).dump());
  EXPECT_EQ(Code(r), "sim_not_allowed") << r.body;
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_old_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "tcb_too_old") << r.body;
  // A tampered quote is not genuine.
  json body = ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce());
  auto q = *Base64Decode(body["evidence"].get<std::string>());
  q[100] ^= 1;
  body["evidence"] = Base64Encode(q);
  r = Call("POST", "/api/v1/nodes", body.dump());
  EXPECT_EQ(Code(r), "evidence_not_genuine") << r.body;
  EXPECT_EQ(CountRows("nodes"), 0);
  EXPECT_EQ(CountRows("certificates"), 0);
  EXPECT_TRUE(Audited("denied:tcb_too_old"));
  // Malformed input is a 400.
  body["public_key"] = "!!";
  EXPECT_EQ(Call("POST", "/api/v1/nodes", body.dump()).status, 400u);
}

TEST_F(AgentApiTest, AgentRoutesNeedANodeCertificate) {
  Response r = Call("POST", "/api/v1/heartbeats", "{}");
  EXPECT_EQ(r.status, 401u);
  r = Call("POST", "/api/v1/heartbeats", "{}", admin_token_);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "node_identity_required");
  // A certificate that is not a node's (the zone CA itself) is unauthenticated.
  auto zone_ca = crypto::CertFromPem(Call("GET", "/api/v1/zones/dev/ca").body);
  auto der = crypto::CertToDer(zone_ca->get());
  EXPECT_EQ(Call("POST", "/api/v1/heartbeats", "{}", "", &*der).status, 401u);
  Node n = Provision();
  EXPECT_EQ(Call("POST", "/api/v1/heartbeats", "{}", "", &n.cert_der).status, 200u);
  // Nodes may not use user routes.
  EXPECT_EQ(Call("GET", "/api/v1/zones", "", "", &n.cert_der).status, 401u);
}

TEST_F(AgentApiTest, WorkloadCertificatesAndEveryRefusal) {
  Node n = Provision();
  std::string approved = Build("a");
  Build("c", false);  // pending
  std::string denied = Build("d", false);
  {
    json builds = Admin("GET", "/api/v1/builds/" + denied, nullptr, 200);
    Admin("POST", "/api/v1/tasks/" + builds["task_id"].get<std::string>() + "/deny", {{"reason", "no"}}, 200);
  }
  std::string revoked = Build("e");
  Admin("POST", "/api/v1/builds/" + revoked + "/revoke", json::object(), 200);

  auto wkey = crypto::GenerateP256();
  std::string csr = CsrFor(wkey->get(), {"web.example.com"});
  Response r = Call("POST", "/api/v1/certificates", CertBody(csr, wkey->get(), "a").dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  json issued = json::parse(r.body);
  EXPECT_FALSE(issued["instance_id"].get<std::string>().empty());
  auto leaf = crypto::CertFromPem(issued["certificate_pem"].get<std::string>());
  auto zca = crypto::CertFromPem(issued["ca_pem"].get<std::string>());
  EXPECT_EQ(X509_verify(leaf->get(), X509_get0_pubkey(zca->get())), 1);
  json inst = Admin("GET", "/api/v1/instances", nullptr, 200);
  ASSERT_EQ(inst["items"].size(), 1u);
  EXPECT_EQ(inst["items"][0]["node"], n.id);
  EXPECT_EQ(inst["items"][0]["serial"], issued["serial"]);

  int64_t certs = CountRows("certificates");
  auto other = crypto::GenerateP256();
  struct Case {
    json body;
    std::string code;
  };
  std::vector<Case> cases = {
      {CertBody(csr, wkey->get(), "c"), "build_pending"},
      {CertBody(csr, wkey->get(), "d"), "build_denied"},
      {CertBody(csr, wkey->get(), "e"), "build_revoked"},
      {CertBody(csr, wkey->get(), "f"), "measurement_not_allowed"},
      {CertBody(CsrFor(wkey->get(), {"evil.example.org"}), wkey->get(), "a"), "domain_not_allowed"},
      {CertBody(csr, other->get(), "a"), "report_data_mismatch"},
  };
  for (const auto& c : cases) {
    r = Call("POST", "/api/v1/certificates", c.body.dump(), "", &n.cert_der);
    EXPECT_EQ(r.status, 403u) << c.code << ": " << r.body;
    EXPECT_EQ(Code(r), c.code) << r.body;
    EXPECT_TRUE(Audited("denied:" + c.code)) << c.code;
  }
  EXPECT_EQ(CountRows("certificates"), certs);

  // Deactivation: the node is refused and its certificates are in the CRL.
  Admin("POST", "/api/v1/nodes/" + n.id + "/deactivate", json::object(), 200);
  r = Call("POST", "/api/v1/certificates", CertBody(csr, wkey->get(), "a").dump(), "", &n.cert_der);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "node_deactivated");
  json c = Admin("GET", "/api/v1/certificates/" + issued["serial"].get<std::string>(), nullptr, 200);
  EXPECT_EQ(c["status"], "revoked");
  auto crl_der = manager_->ZoneCrl("dev");
  ASSERT_TRUE(crl_der.ok());
  auto crl = crypto::CrlFromDerOrPem(*crl_der);
  ASSERT_TRUE(crl.ok());
  X509_REVOKED* entry = nullptr;
  EXPECT_EQ(X509_CRL_get0_by_cert(crl->get(), &entry, leaf->get()), 1);
  EXPECT_EQ(Admin("GET", "/api/v1/instances", nullptr, 200)["items"][0]["status"], "stopped");

  // The zone tightens after provisioning (min_tcb stays met by UpToDate, so it refuses sim): the
  // node's certificate and its workloads' are revoked in the same step, so the node is refused.
  Node n2 = Provision();
  r = Call("POST", "/api/v1/certificates", CertBody(csr, wkey->get(), "a").dump(), "", &n2.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  std::string serial2 = json::parse(r.body)["serial"];
  Admin("PATCH", "/api/v1/zones/dev", {{"allow_sim", false}}, 200);
  r = Call("POST", "/api/v1/certificates", CertBody(csr, wkey->get(), "a").dump(), "", &n2.cert_der);
  EXPECT_EQ(Code(r), "node_cert_revoked") << r.body;
  EXPECT_EQ(Admin("GET", "/api/v1/certificates/" + serial2, nullptr, 200)["status"], "revoked");
}

// A zone CA activated between an issuance's decision (the old root's signer cached) and its write
// refuses that certificate (409 conflict_retry, nothing recorded); the agent's retry is issued by
// the new root. Without the write's check the answer would be a certificate of the retired root.
TEST_F(AgentApiTest, AZoneCaActivatedDuringAnIssuanceRefusesItsCertificate) {
  Node n = Provision();
  Build("a");
  auto wkey = crypto::GenerateP256();
  const json body = CertBody(CsrFor(wkey->get(), {"web.example.com"}), wkey->get(), "a");
  Response r = Call("POST", "/api/v1/certificates", body.dump(), "", &n.cert_der);  // caches the signer
  ASSERT_EQ(r.status, 201u) << r.body;
  const std::string old_root = json::parse(r.body)["ca_pem"];
  json rot = Admin("POST", "/api/v1/zones/dev/ca/rotate", nullptr, 202);
  Admin("POST", "/api/v1/tasks/" + rot["task_id"].get<std::string>() + "/approve", nullptr, 200);
  const int64_t certs = CountRows("certificates"), instances = CountRows("instances");
  bool activated = false;
  hooked_->before_row_keyed_write = [&] {
    Admin("POST", "/api/v1/zones/dev/ca/activate", nullptr, 200);
    activated = true;
  };
  r = Call("POST", "/api/v1/certificates", body.dump(), "", &n.cert_der);
  ASSERT_TRUE(activated);
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(Code(r), "conflict_retry") << r.body;
  EXPECT_EQ(CountRows("certificates"), certs);
  EXPECT_EQ(CountRows("instances"), instances);
  r = Call("POST", "/api/v1/certificates", body.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  json issued = json::parse(r.body);
  const std::string new_root = issued["ca_pem"];
  EXPECT_NE(new_root, old_root);
  auto leaf = crypto::CertFromPem(issued["certificate_pem"].get<std::string>());
  auto root = crypto::CertFromPem(new_root);
  ASSERT_TRUE(leaf.ok() && root.ok());
  EXPECT_EQ(X509_verify(leaf->get(), X509_get0_pubkey(root->get())), 1);
}

TEST_F(AgentApiTest, HeartbeatsAreVerifiedReplayProtectedAndTracked) {
  Node n = Provision();
  Build("a");
  auto wkey = crypto::GenerateP256();
  Response r = Call("POST", "/api/v1/certificates", CertBody(CsrFor(wkey->get(), {}), wkey->get(), "a").dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  std::string inst = json::parse(r.body)["instance_id"];
  auto hb = [&](int64_t seq, const std::string& status, EVP_PKEY* key) {
    int64_t ts = ToUnixSeconds(clock_.Now());
    auto sig = crypto::Sign(key, AsBytes(workload::HeartbeatMessage(inst, seq, ts, status)));
    return json{{"instance_id", inst}, {"seq", seq}, {"timestamp", ts}, {"status", status}, {"signature", Base64Encode(*sig)}};
  };
  auto other = crypto::GenerateP256();
  json batch = {{"node", {{"version", "1"}, {"load", 0.5}}},
                {"heartbeats", {hb(1, "running", wkey->get()), hb(2, "running", wkey->get()), hb(2, "running", wkey->get()),
                                hb(3, "running", other->get())}}};
  r = Call("POST", "/api/v1/heartbeats", batch.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  json res = json::parse(r.body);
  EXPECT_EQ(res["accepted"], 2);
  ASSERT_EQ(res["rejected"].size(), 2u) << r.body;
  std::set<std::string> codes;
  for (const auto& x : res["rejected"]) codes.insert(x["code"]);
  EXPECT_EQ(codes, (std::set<std::string>{"replayed", "bad_signature"}));
  // Replaying the old batch: nothing new is accepted.
  r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", {hb(1, "running", wkey->get())}}}.dump(), "", &n.cert_der);
  EXPECT_EQ(json::parse(r.body)["accepted"], 0);
  json i = Admin("GET", "/api/v1/instances", nullptr, 200)["items"][0];
  EXPECT_EQ(i["status"], "running");
  EXPECT_EQ(i["last_seq"], 2);
  // Silence for more than three intervals: unresponsive; the node likewise.
  clock_.Advance(std::chrono::seconds(95));
  EXPECT_EQ(Admin("GET", "/api/v1/instances", nullptr, 200)["items"][0]["status"], "unresponsive");
  EXPECT_EQ(Admin("GET", "/api/v1/nodes/" + n.id, nullptr, 200)["status"], "unresponsive");
  // A stopping heartbeat stops it.
  r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", {hb(3, "stopping", wkey->get())}}}.dump(), "", &n.cert_der);
  EXPECT_EQ(json::parse(r.body)["accepted"], 1);
  EXPECT_EQ(Admin("GET", "/api/v1/instances", nullptr, 200)["items"][0]["status"], "stopped");
  EXPECT_EQ(Admin("GET", "/api/v1/nodes/" + n.id, nullptr, 200)["status"], "active");
  EXPECT_TRUE(Audited("ok"));
  // After it stopped, a heartbeat is refused as such, not as a replay.
  r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", {hb(4, "running", wkey->get())}}}.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json::parse(r.body)["rejected"][0]["code"], "instance_stopped");
}

// MAC heartbeats (docs/agent.md "Heartbeats", docs/formats/heartbeat-key.md): the issuance
// answer names the zone's heartbeat key; the workload derives K from its own private key; vouchd
// derives the same K from the zone's private key. The agent, which relays the heartbeat and knows
// both public keys but neither private key, can neither forge nor alter one.
TEST_F(AgentApiTest, MacHeartbeatsAreVerifiedCountedAndTheAgentCannotForgeThem) {
  http::Metrics metrics;
  router_ = std::make_unique<http::Router>(BuildRouter(*manager_, &metrics));
  Node n = Provision();
  Build("a");
  struct Inst {
    crypto::EvpPkeyPtr key;
    std::string id, serial, hb_pem;
    crypto::SecretBytes k;
  };
  auto issue = [&](crypto::EvpPkeyPtr key) {
    Inst i;
    i.key = std::move(key);
    Response r = Call("POST", "/api/v1/certificates", CertBody(CsrFor(i.key.get(), {}), i.key.get(), "a").dump(), "",
                      &n.cert_der);
    EXPECT_EQ(r.status, 201u) << r.body;
    json j = json::parse(r.body);
    i.id = j["instance_id"];
    i.serial = j["serial"];
    if (j.contains("heartbeat_key")) {
      EXPECT_EQ(j["heartbeat_key"]["version"], 1);
      i.hb_pem = j["heartbeat_key"]["public_key_pem"];
      auto k = workload::DeriveHeartbeatKey(i.key.get(), i.hb_pem, i.serial);
      EXPECT_TRUE(k.ok()) << k.status().message();
      if (k.ok()) i.k = std::move(*k);
    }
    return i;
  };
  Inst a = issue(crypto::GenerateP256().value());
  Inst b = issue(crypto::GenerateP256().value());
  Inst rsa = issue(crypto::GenerateKey(crypto::KeyType::kRsa2048).value());
  ASSERT_FALSE(a.hb_pem.empty());
  EXPECT_EQ(a.hb_pem, b.hb_pem);  // one heartbeat key per zone, made on first need
  EXPECT_TRUE(rsa.hb_pem.empty());  // an RSA key cannot do ECDH: it signs its heartbeats
  EXPECT_NE(HexEncode(a.k.span()), HexEncode(b.k.span()));
  // Never in the store in the clear; the public half as answered.
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Row z, tx.QueryOne("SELECT heartbeat_key_sealed, heartbeat_pub_pem FROM "
                                                                    "zones WHERE name = ?", {"dev"}, "zone"));
                   EXPECT_EQ(z.Str(1), a.hb_pem);
                   EXPECT_FALSE(z.IsNull(0));
                   return Status::Ok();
                 }).ok());

  const int64_t ts = ToUnixSeconds(clock_.Now());
  auto mac_hb = [&](const Inst& i, int64_t seq, const std::string& status, std::span<const uint8_t> key) {
    return json{{"instance_id", i.id}, {"seq", seq}, {"timestamp", ts}, {"status", status},
                {"mac", workload::HeartbeatMacBase64(key, i.id, seq, ts, status)}};
  };
  auto sig_hb = [&](const Inst& i, int64_t seq) {
    auto sig = crypto::Sign(i.key.get(), AsBytes(workload::HeartbeatMessage(i.id, seq, ts, "running")));
    return json{{"instance_id", i.id}, {"seq", seq}, {"timestamp", ts}, {"status", "running"}, {"signature", Base64Encode(*sig)}};
  };
  // What a relaying agent could try: alter a field under the workload's MAC, or MAC with a key
  // it derived from what it knows (the zone's public key and a key of its own).
  json altered_status = mac_hb(a, 3, "running", a.k.span());
  altered_status["status"] = "stopping";
  json altered_seq = mac_hb(a, 4, "running", a.k.span());
  altered_seq["seq"] = 5;
  auto agent_key = crypto::GenerateP256().value();
  auto agent_k = workload::DeriveHeartbeatKey(agent_key.get(), a.hb_pem, a.serial).value();
  json wrong_mac = mac_hb(a, 6, "running", a.k.span());
  {
    auto raw = Base64Decode(wrong_mac["mac"].get<std::string>()).value();
    raw[0] ^= 1;
    wrong_mac["mac"] = Base64Encode(raw);
  }
  json batch = {{"heartbeats",
                 {mac_hb(a, 1, "running", a.k.span()), mac_hb(a, 1, "running", a.k.span()) /* replayed */,
                  mac_hb(a, 2, "running", b.k.span()) /* another instance's key */, altered_status, altered_seq,
                  mac_hb(a, 7, "running", agent_k.span()), wrong_mac, sig_hb(b, 1) /* ECDSA still taken */,
                  mac_hb(b, 2, "running", b.k.span()), mac_hb(rsa, 1, "running", a.k.span()) /* no MAC key */,
                  sig_hb(rsa, 2)}}};
  Response r = Call("POST", "/api/v1/heartbeats", batch.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  json res = json::parse(r.body);
  EXPECT_EQ(res["accepted"], 4) << r.body;  // a 1, b 1 and 2, rsa 2
  std::multiset<std::string> codes;
  for (const auto& x : res["rejected"]) codes.insert(x["code"]);
  EXPECT_EQ(codes, (std::multiset<std::string>{"replayed", "bad_mac", "bad_mac", "bad_mac", "bad_mac", "bad_mac",
                                               "bad_mac"}))
      << r.body;
  json listed = Admin("GET", "/api/v1/instances?limit=100", nullptr, 200);
  for (const auto& item : listed["items"]) {
    if (item["id"] == a.id) {
      EXPECT_EQ(item["last_seq"], 1);
    }
    if (item["id"] == b.id) {
      EXPECT_EQ(item["last_seq"], 2);
    }
  }
  EXPECT_EQ(manager_->HeartbeatKeysCached(), 2);  // derived once per instance
  // Counted by reason.
  EXPECT_EQ(metrics.Value("vouch_heartbeats_rejected_total", {{"reason", "bad_mac"}}), 6);
  EXPECT_EQ(metrics.Value("vouch_heartbeats_rejected_total", {{"reason", "replayed"}}), 1);
  EXPECT_EQ(metrics.Value("vouch_heartbeats_accepted_total"), 4);
  // A replayed seq in a later batch, and a heartbeat for a revoked certificate.
  Admin("POST", "/api/v1/certificates/" + b.serial + "/revoke", {{"reason", "test"}}, 200);
  r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", {mac_hb(a, 1, "running", a.k.span()),
                                                              mac_hb(b, 3, "running", b.k.span())}}}.dump(),
           "", &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  res = json::parse(r.body);
  EXPECT_EQ(res["accepted"], 0);
  codes.clear();
  for (const auto& x : res["rejected"]) codes.insert(x["code"]);
  EXPECT_EQ(codes, (std::multiset<std::string>{"replayed", "certificate_revoked"})) << r.body;
  EXPECT_EQ(metrics.Value("vouch_heartbeats_rejected_total", {{"reason", "replayed"}}), 2);
  EXPECT_EQ(metrics.Value("vouch_heartbeats_rejected_total", {{"reason", "certificate_revoked"}}), 1);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("vouch_heartbeats_rejected_total{reason=\"unknown_instance\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("vouch_heartbeat_key_cache_entries 2"), std::string::npos);
  // Across a renewal (same key, new serial, new K): a heartbeat MAC'd under the previous
  // certificate's K and delivered after the renewal is still taken while that certificate is
  // valid; once it is revoked, only the new K works.
  json renew_body = CertBody(CsrFor(a.key.get(), {}), a.key.get(), "a");
  renew_body["instance_id"] = a.id;
  r = Call("POST", "/api/v1/certificates", renew_body.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  const std::string serial2 = json::parse(r.body)["serial"];
  ASSERT_NE(serial2, a.serial);
  auto k2 = workload::DeriveHeartbeatKey(a.key.get(), json::parse(r.body)["heartbeat_key"]["public_key_pem"].get<std::string>(),
                                         serial2);
  ASSERT_TRUE(k2.ok());
  r = Call("POST", "/api/v1/heartbeats",
           json{{"heartbeats", {mac_hb(a, 10, "running", a.k.span()), mac_hb(a, 11, "running", k2->span())}}}.dump(), "",
           &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json::parse(r.body)["accepted"], 2) << r.body;
  Admin("POST", "/api/v1/certificates/" + a.serial + "/revoke", {{"reason", "test"}}, 200);
  r = Call("POST", "/api/v1/heartbeats",
           json{{"heartbeats", {mac_hb(a, 12, "running", a.k.span()), mac_hb(a, 13, "running", k2->span())}}}.dump(), "",
           &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  res = json::parse(r.body);
  EXPECT_EQ(res["accepted"], 1) << r.body;
  ASSERT_EQ(res["rejected"].size(), 1u) << r.body;
  EXPECT_EQ(res["rejected"][0]["seq"], 12);
  EXPECT_EQ(res["rejected"][0]["code"], "bad_mac");
  // Malformed MACs are refused as a batch: not base64, not 32 bytes, or both forms at once.
  std::vector<json> malformed(3, mac_hb(a, 9, "running", a.k.span()));
  malformed[0]["mac"] = "!!";
  malformed[1]["mac"] = Base64Encode(std::vector<uint8_t>(31, 1));
  malformed[2]["signature"] = malformed[2]["mac"];
  for (const json& bad : malformed) {
    r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", {bad}}}.dump(), "", &n.cert_der);
    EXPECT_EQ(r.status, 400u) << bad.dump();
    EXPECT_EQ(Code(r), "invalid_heartbeat");
  }
  router_.reset();
}

// docs/formats/heartbeat-key.md: the workload library's derivation and MAC, pinned (fixed keys
// with private scalars 0x11..11 and 0x22..22; values computed independently in Python).
TEST(HeartbeatMac, FixedVector) {
  constexpr std::string_view kInstanceKey =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgERERERERERERERER\n"
      "ERERERERERERERERERERERERERGhRANCAAQCF+YX8LZEOSgnj5aZnmmiOk8sFSvf\n"
      "bWzfZuW4AoLU7RlKfevLl3EtLdo8qFqodlpW9F/HWFmWUvKJfGUwbleU\n"
      "-----END PRIVATE KEY-----\n";
  constexpr std::string_view kZonePublic =
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1lqTl3yqPRsIGFL/V6eeRl8WYFdz\n"
      "BLrq1QXdOkhYnPNQGF6JU3LfYiHqOhN1V+Rz/dtnVfBb1QfDxTP86ckShQ==\n"
      "-----END PUBLIC KEY-----\n";
  auto inst = crypto::PrivateKeyFromPem(kInstanceKey).value();
  auto k = workload::DeriveHeartbeatKey(inst.get(), kZonePublic, "0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(HexEncode(k->span()), "60e7b38125f991a20ad21fcb044c80396b757ed2a84b22e447df8f17c7282b17");
  EXPECT_EQ(workload::HeartbeatMacMessage("inst_abc", 7, 1700000000, "running"),
            "vouch-heartbeat-mac-v1\ninst_abc\n7\n1700000000\nrunning");
  EXPECT_EQ(HexEncode(workload::HeartbeatMac(k->span(), "inst_abc", 7, 1700000000, "running")),
            "403f66d6a7c4efd859a4a5a9c7ebc95c85e9d4ef701ad37ca9a6fa04d09a9bf4");
  EXPECT_EQ(workload::HeartbeatMacBase64(k->span(), "inst_abc", 7, 1700000000, "running"),
            "QD9m1qfE79hZpKWpx+vJXIXp1O9wGtN8qab6BNCam/Q=");
  EXPECT_EQ(workload::DeriveHeartbeatKey(inst.get(), "not a pem", "01").status().reason(), "invalid_key");
}

TEST_F(AgentApiTest, LocalRefusalsReportedAtCheckInAreAudited) {
  Node n = Provision();
  json batch = {{"heartbeats", json::array()},
                {"refusals", {{{"at", 1700000000}, {"code", "report_mac_invalid"}, {"message", "bad MAC"},
                               {"mrenclave", std::string(64, 'a')}},
                              {{"at", 1700000001}, {"code", "report_data_mismatch"}}}}};
  Response r = Call("POST", "/api/v1/heartbeats", batch.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_TRUE(Audited("denied:report_mac_invalid"));
  EXPECT_TRUE(Audited("denied:report_data_mismatch"));
  // Malformed refusals are refused as a whole.
  for (const json& bad : {json{{"code", "x"}}, json{{"at", 1}, {"code", "Bad Code"}}, json{{"at", 1}, {"code", "a"}, {"extra", 1}},
                          json{{"at", 1}, {"code", "a"}, {"mrenclave", "zz"}}}) {
    r = Call("POST", "/api/v1/heartbeats", json{{"refusals", {bad}}}.dump(), "", &n.cert_der);
    EXPECT_EQ(Code(r), "invalid_refusals") << bad.dump();
  }
}

TEST_F(AgentApiTest, RepeatedRefusalsOfADeactivatedNodeAreAuditedOnce) {
  Node n = Provision();
  Admin("POST", "/api/v1/nodes/" + n.id + "/deactivate", nullptr, 200);
  for (int i = 0; i < 5; ++i) {
    Response r = Call("POST", "/api/v1/heartbeats", json{{"heartbeats", json::array()}}.dump(), "", &n.cert_der);
    EXPECT_EQ(Code(r), "node_deactivated");
  }
  json a = Admin("GET", "/api/v1/audit?limit=1000", nullptr, 200);
  int count = 0;
  for (const auto& e : a["items"]) count += e["outcome"] == "denied:node_deactivated" ? 1 : 0;
  EXPECT_EQ(count, 1);
}

TEST_F(AgentApiTest, RenewalNeedsFreshEvidence) {
  Node n = Provision();
  json body = ProvisionBody(*sim_, n.key.get(), "", Nonce());
  Response r = Call("POST", "/api/v1/nodes/renew", body.dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["node_id"], n.id);
  std::vector<uint8_t> renewed = *crypto::CertToDer(crypto::CertFromPem(j["certificate_pem"].get<std::string>())->get());
  // Evidence from an out-of-date platform is not renewed.
  r = Call("POST", "/api/v1/nodes/renew", ProvisionBody(*sim_old_, n.key.get(), "", Nonce()).dump(), "", &renewed);
  EXPECT_EQ(Code(r), "tcb_too_old");
  EXPECT_EQ(Admin("GET", "/api/v1/nodes/" + n.id, nullptr, 200)["tcb_status"], "OutOfDate");
}

// New collateral (a TCB recovery) takes effect in a running manager: renewal is refused once it
// is reloaded, and a broken copy of the files is refused while the previous collateral stays in use.
TEST_F(AgentApiTest, CollateralReloadTakesEffectWithoutARestart) {
  Node n = Provision();
  auto renew = [&] {
    Response r = Call("POST", "/api/v1/nodes/renew", ProvisionBody(*sim_, n.key.get(), "", Nonce()).dump(), "", &n.cert_der);
    if (r.status == 201) {  // only the newest node certificate authenticates
      n.cert_der = *crypto::CertToDer(crypto::CertFromPem(json::parse(r.body)["certificate_pem"].get<std::string>())->get());
    }
    return r;
  };
  EXPECT_EQ(renew().status, 201u);
  auto valid = manager_->CollateralValidUntil();
  ASSERT_EQ(valid.size(), 2u);
  EXPECT_EQ(valid[0].first, dir_ + "/sim");
  EXPECT_GT(valid[0].second, clock_.Now() + std::chrono::hours(24 * 300));  // a sim lasts a year
  auto unchanged = manager_->ReloadCollateral();
  ASSERT_TRUE(unchanged.ok()) << unchanged.status().ToString();
  EXPECT_FALSE(*unchanged);

  // A half-copied TCB Info: refused, the old collateral keeps working, reported once.
  const std::string info_path = dir_ + "/sim/tcbInfo.json";
  auto good = ReadWholeFile(info_path, 1 << 20);
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(WriteFileAtomic(info_path, good->substr(0, good->size() / 2)).ok());
  auto broken = manager_->ReloadCollateral();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find(dir_ + "/sim"), std::string::npos) << broken.status().ToString();
  EXPECT_EQ(renew().status, 201u);
  auto again = manager_->ReloadCollateral();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  // TCB Info signed by someone else than the TCB signing key: refused likewise.
  std::string forged = *good;
  size_t sig = forged.find("\"signature\":\"");
  ASSERT_NE(sig, std::string::npos);
  sig += 13;
  forged[sig] = forged[sig] == '0' ? '1' : '0';
  ASSERT_TRUE(WriteFileAtomic(info_path, forged).ok());
  auto unsigned_info = manager_->ReloadCollateral();
  ASSERT_FALSE(unsigned_info.ok());
  EXPECT_EQ(unsigned_info.status().reason(), "invalid_collateral_signature") << unsigned_info.status().ToString();
  EXPECT_EQ(renew().status, 201u);

  // The vendor's real new TCB Info: every level OutOfDate. Until reloaded nothing changes.
  ASSERT_TRUE(WriteFileAtomic(info_path, *good).ok());
  auto number = attest::SimTcbRecovery(dir_ + "/sim");
  ASSERT_TRUE(number.ok()) << number.status().ToString();
  EXPECT_EQ(*number, 2);
  auto reloaded = manager_->ReloadCollateral();
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_TRUE(*reloaded);
  EXPECT_EQ(Code(renew()), "tcb_too_old");
  EXPECT_EQ(Admin("GET", "/api/v1/nodes/" + n.id, nullptr, 200)["tcb_status"], "OutOfDate");
  // A forced reload (SIGHUP) reloads even when nothing changed.
  auto forced = manager_->ReloadCollateral(true);
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(*forced);
}


// ---- node identity (docs/policy.md, "Node identity") ---------------------------------------

TEST_F(AgentApiTest, OnlyTheZonesAgentIdentitiesBecomeNodes) {
  // A genuine quote with a correct binding, from some other enclave: refused, audited.
  auto key = crypto::GenerateP256();
  quote_mrenclave_.fill(0x11);
  quote_mrsigner_.fill(0x22);
  Response r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  // The shipped agent's enclave signed by someone else: refused too.
  quote_mrenclave_ = attest::ShippedSimAgent().mrenclave;
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  // The shipped agent in debug mode: refused whatever the zone allows.
  quote_mrsigner_ = attest::ShippedSimAgent().mrsigner;
  quote_debug_ = true;
  Admin("PATCH", "/api/v1/zones/dev", {{"allow_debug", true}}, 200);
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "debug_not_allowed") << r.body;
  EXPECT_EQ(CountRows("nodes"), 0);
  EXPECT_EQ(CountRows("certificates"), 0);
  // The shipped agent: accepted.
  quote_debug_ = false;
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 201u) << r.body;
  // A zone without sim accepts no sim agent (and no default identity: docs/policy.md).
  EXPECT_EQ(Admin("GET", "/api/v1/zones/prod/node-identities", nullptr, 200)["items"].size(), 0u);
  // A sim zone: the shipped sim agent on SGX (and in a sim CVM: its TDX MRTD and SNP MEASUREMENT,
  // CvmNodesTest.ASimZoneAcceptsTheShippedSimAgentOnEveryPlatformFromItsCreation).
  json dev = Admin("GET", "/api/v1/zones/dev/node-identities", nullptr, 200);
  ASSERT_EQ(dev["items"].size(), 3u);
  int sgx = 0;
  for (const json& i : dev["items"]) {
    EXPECT_EQ(i["status"], "active");
    if (i["platform"] != "sgx") continue;
    ++sgx;
    EXPECT_EQ(i["rule"]["mrenclave"], HexEncode(attest::ShippedSimAgent().mrenclave));
  }
  EXPECT_EQ(sgx, 1);
}

TEST_F(AgentApiTest, WideningTheIdentityListIsAnApprovalTask) {
  Admin("PATCH", "/api/v1/zones/dev", {{"approvals_required", 2}}, 200);
  ASSERT_TRUE(manager_->CreateUser(Principal::System(), "bob", "approver", "correct-horse-battery").ok());
  json rule = {{"platform", "sgx"}, {"mrenclave", std::string(64, '1')}};
  // Admins only, and the rule must be well formed.
  EXPECT_EQ(Code(Call("POST", "/api/v1/zones/dev/node-identities", json{{"rule", {{"platform", "sgx"}}}}.dump(),
                      admin_token_)),
            "invalid_rule");
  json added = Admin("POST", "/api/v1/zones/dev/node-identities", {{"rule", rule}, {"note", "agent v2"}}, 201);
  EXPECT_EQ(added["status"], "pending");
  EXPECT_EQ(Code(Call("POST", "/api/v1/zones/dev/node-identities", json{{"rule", rule}}.dump(), admin_token_)),
            "node_identity_exists");
  json task = Admin("GET", "/api/v1/tasks/" + added["task_id"].get<std::string>(), nullptr, 200);
  EXPECT_EQ(task["kind"], "node_identity");
  EXPECT_TRUE(task["app"].is_null());
  EXPECT_EQ(task["node_identity_id"], added["id"]);
  // Pending: still refused.
  auto key = crypto::GenerateP256();
  quote_mrenclave_.fill(0x11);
  Response r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  // One approval of two: still pending; the second activates it.
  Admin("POST", "/api/v1/tasks/" + task["id"].get<std::string>() + "/approve", nullptr, 200);
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  Response login =
      Call("POST", "/api/v1/sys/auth", json{{"username", "bob"}, {"password", "correct-horse-battery"}}.dump());
  std::string bob = json::parse(login.body)["token"];
  EXPECT_EQ(Call("POST", "/api/v1/tasks/" + task["id"].get<std::string>() + "/approve", "", bob).status, 200u);
  json list = Admin("GET", "/api/v1/zones/dev/node-identities", nullptr, 200);
  ASSERT_EQ(list["items"].size(), 4u);  // the three seeded sim-agent identities and this one
  int found = 0;
  for (const json& i : list["items"]) {
    if (i["id"] != added["id"]) continue;
    ++found;
    EXPECT_EQ(i["status"], "active");
    EXPECT_EQ(i["rule"]["mrenclave"], std::string(64, '1'));
  }
  EXPECT_EQ(found, 1);
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 201u) << r.body;
  // Narrowing needs no quorum: removed, refused again.
  Admin("DELETE", "/api/v1/zones/dev/node-identities/" + added["id"].get<std::string>(), nullptr, 200);
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  Admin("DELETE", "/api/v1/zones/dev/node-identities/" + added["id"].get<std::string>(), nullptr, 404);
  // A denied request never activates.
  json again = Admin("POST", "/api/v1/zones/dev/node-identities", {{"rule", rule}}, 201);
  Admin("POST", "/api/v1/tasks/" + again["task_id"].get<std::string>() + "/deny", {{"reason", "unknown build"}}, 200);
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  EXPECT_TRUE(Audited("ok"));
}

TEST_F(AgentApiTest, RenewalRevokesThePreviousNodeCertificate) {
  Node n = Provision();
  Response r = Call("POST", "/api/v1/nodes/renew", ProvisionBody(*sim_, n.key.get(), "", Nonce()).dump(), "", &n.cert_der);
  ASSERT_EQ(r.status, 201u) << r.body;
  json j = json::parse(r.body);
  std::vector<uint8_t> renewed = *crypto::CertToDer(crypto::CertFromPem(j["certificate_pem"].get<std::string>())->get());
  // The old certificate no longer authenticates; the new one does.
  r = Call("POST", "/api/v1/heartbeats", "{}", "", &n.cert_der);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "node_cert_revoked");
  EXPECT_EQ(Call("POST", "/api/v1/heartbeats", "{}", "", &renewed).status, 200u);
  json certs = Admin("GET", "/api/v1/certificates?status=revoked", nullptr, 200);
  ASSERT_EQ(certs["items"].size(), 1u);
  EXPECT_EQ(certs["items"][0]["revocation_reason"], "superseded");
  // Renewal with a foreign identity: refused, and the node keeps its current certificate.
  quote_mrenclave_.fill(0x11);
  r = Call("POST", "/api/v1/nodes/renew", ProvisionBody(*sim_, n.key.get(), "", Nonce()).dump(), "", &renewed);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "node_identity_not_allowed") << r.body;
  EXPECT_TRUE(Audited("denied:node_identity_not_allowed"));  // a known node's refusal: one row each
  EXPECT_EQ(Call("POST", "/api/v1/heartbeats", "{}", "", &renewed).status, 200u);
}

TEST_F(AgentApiTest, NodeNoncesAreStatelessSingleUseAndExpire) {
  // Thousands of nonces write nothing and never run out (here without the per-source rate limit
  // of unauthenticated routes, which the e2e test node_identity_test.sh meets).
  RouterOptions unlimited;
  unlimited.unauth_rate_per_second = 0;
  router_ = std::make_unique<http::Router>(BuildRouter(*manager_, nullptr, unlimited));
  for (int i = 0; i < 12000; ++i) {
    Response r = Call("POST", "/api/v1/nodes/nonce");
    ASSERT_EQ(r.status, 201u) << r.body;
  }
  EXPECT_EQ(CountRows("node_nonces"), 0);
  Node n = Provision();
  EXPECT_EQ(CountRows("node_nonces"), 1);  // consumed: recorded until it expires
  auto key = crypto::GenerateP256();
  // Replayed, also when spelled in upper case (the same bytes).
  std::string once = Nonce();
  ASSERT_EQ(Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), once).dump()).status, 201u);
  std::string upper = once;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Response replay = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), upper).dump());
  EXPECT_EQ(replay.status, 403u);
  EXPECT_EQ(Code(replay), "nonce_invalid") << replay.body;
  // Forged: a flipped bit of a real one.
  std::string forged = Nonce();
  forged[40] = forged[40] == '0' ? '1' : '0';
  Response r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), forged).dump());
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(Code(r), "nonce_invalid");
  // Expired.
  std::string old = Nonce();
  clock_.Advance(std::chrono::seconds(310));
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), old).dump());
  EXPECT_EQ(Code(r), "nonce_invalid");
  // A fresh one works.
  r = Call("POST", "/api/v1/nodes", ProvisionBody(*sim_, key->get(), JoinToken("dev"), Nonce()).dump());
  EXPECT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(CountRows("node_nonces"), 1);  // the expired record was pruned
}

TEST_F(AgentApiTest, MigrationThreeSeedsTheShippedSimAgent) {
  // Migration 3 gives existing sim zones the shipped sim agent's identity as literals: they must
  // be the identity the agent quotes with.
  std::string m3;
  for (const auto& stmt : store::Migrations().at(2)) m3 += stmt;
  EXPECT_NE(m3.find(HexEncode(attest::ShippedSimAgent().mrenclave)), std::string::npos);
  EXPECT_NE(m3.find(HexEncode(attest::ShippedSimAgent().mrsigner)), std::string::npos);
}

}  // namespace
}  // namespace vouch::api
