#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "api/manager.h"
#include "api/routes.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "pgtest/test_postgres.h"
#include "store/database.h"

#include <openssl/pem.h>

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

std::string TempDir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("vouch-api-" + std::to_string(getpid()) + "-" + tag + "-" + crypto::RandomToken(4));
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A CSR made with OpenSSL directly, so that the manager's parser is tested against real input.
std::string MakeCsr(const std::vector<std::string>& dns, crypto::EvpPkeyPtr* key_out = nullptr) {
  auto key = crypto::GenerateP256();
  crypto::X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("workload"), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key->get());
  if (!dns.empty()) {
    std::string san;
    for (const auto& d : dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req.get(), key->get(), EVP_sha256());
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (key_out) *key_out = std::move(*key);
  return std::string(data, static_cast<size_t>(len));
}

class ApiTest : public ::testing::Test {
 protected:
  static constexpr char kPassword[] = "correct-horse-battery";

  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::string url = "sqlite:" + dir_ + "/vouch.db";
    if (const char* store = std::getenv("VOUCH_TEST_STORE"); store && std::string(store) == "postgres") {
      auto pg = pgtest::FreshTestDatabase();
      if (!pg.ok() && pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << pg.status().ToString();
      if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server: " << pg.status().ToString();
      url = *pg;
    }
    auto db = store::OpenDatabase(url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};  // fast for tests; default 2^15
    auto m = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, options);
    ASSERT_TRUE(m.ok());
    manager_ = std::move(*m);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, &metrics_));
    Principal sys = Principal::System();
    for (auto [name, role] : std::vector<std::pair<std::string, std::string>>{{"admin", "admin"},
                                                                           {"approver1", "approver"},
                                                                           {"approver2", "approver"},
                                                                           {"member", "member"},
                                                                           {"viewer", "viewer"}}) {
      ASSERT_TRUE(manager_->CreateUser(sys, name, role, kPassword).ok());
      Response r = Call("POST", "/api/v1/sys/auth", json{{"username", name}, {"password", kPassword}}.dump());
      ASSERT_EQ(r.status, 200u) << r.body;
      tokens_[name] = json::parse(r.body)["token"];
    }
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& user = "") {
    Request req;
    req.method = method;
    req.target = target;
    EXPECT_TRUE(req.ParseTarget().ok()) << target;
    req.body = body;
    req.remote_address = "127.0.0.1:40000";
    req.tls = true;
    if (!user.empty()) req.headers.emplace_back("Authorization", "Bearer " + tokens_[user]);
    return router_->Dispatch(req);
  }
  json CallJson(const std::string& method, const std::string& target, const json& body, const std::string& user,
                unsigned want_status) {
    Response r = Call(method, target, body.is_null() ? "" : body.dump(), user);
    EXPECT_EQ(r.status, want_status) << method << " " << target << ": " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    return j;
  }

  // Every row of every table except the audit log and sessions: the "store unchanged" check.
  std::string Snapshot() {
    std::string out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     for (const char* t : {"zones", "users", "api_keys", "join_tokens", "apps", "tasks", "task_approvals",
                                           "builds", "nodes", "certificates", "instances"}) {
                       VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(std::string("SELECT * FROM ") + t));
                       out += std::string(t) + ":" + std::to_string(rows.size()) + ";";
                       for (const auto& r : rows) {
                         for (size_t i = 0; i < r.size(); ++i) out += r.Str(i) + "|";
                       }
                     }
                     return Status::Ok();
                   }).ok());
    return out;
  }

  void MakeZoneAndApp(int approvals = 1) {
    CallJson("POST", "/api/v1/zones", {{"name", "prod"}, {"approvals_required", approvals}}, "admin", 201);
    CallJson("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "prod"}, {"domains", {"web.example.com", "*.svc.example.com"}}},
             "member", 201);
  }
  json MakeBuild(const std::string& mrenclave_byte = "aa") {
    std::string mre;
    for (int i = 0; i < 32; ++i) mre += mrenclave_byte;
    return CallJson("POST", "/api/v1/builds",
                    {{"app", "web"}, {"mrenclave", mre}, {"mrsigner", std::string(64, 'b')}, {"isvprodid", 1}, {"isvsvn", 2}},
                    "member", 201);
  }

  // Real time (fixed during the test), since certificates are checked by the openssl binary.
  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  std::string dir_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Manager> manager_;
  http::Metrics metrics_;
  std::unique_ptr<http::Router> router_;
  std::map<std::string, std::string> tokens_;
};

// ------------------------------------------------------------------ authorisation

// The smallest role allowed for each route; "public" needs no credentials, "any" any user.
const std::map<std::string, std::string>& RouteRoles() {
  static const std::map<std::string, std::string> kRoles = {
      {"GET /healthz", "public"},
      {"GET /readyz", "public"},
      {"GET /metrics", "public"},  // from loopback
      {"GET /api/v1/openapi.json", "public"},
      {"POST /api/v1/sys/auth", "public"},
      {"POST /api/v1/cluster/nonce", "public"},  // joiners authenticate with TEE evidence
      {"POST /api/v1/cluster/join", "public"},
      {"DELETE /api/v1/sys/auth", "any"},
      {"GET /api/v1/sys/whoami", "any"},
      {"POST /api/v1/zones", "admin"},
      {"GET /api/v1/zones", "any"},
      {"GET /api/v1/zones/{id}", "any"},
      {"PATCH /api/v1/zones/{id}", "admin"},
      {"GET /api/v1/zones/{id}/ca", "public"},
      {"GET /api/v1/zones/{id}/crl", "public"},
      {"POST /api/v1/zones/{id}/join-tokens", "admin"},
      {"GET /api/v1/zones/{id}/join-tokens", "admin"},
      {"POST /api/v1/users", "admin"},
      {"GET /api/v1/users", "admin"},
      {"GET /api/v1/users/{id}", "admin"},
      {"PATCH /api/v1/users/{id}", "admin"},
      {"DELETE /api/v1/users/{id}", "admin"},
      {"POST /api/v1/apikeys", "any"},
      {"GET /api/v1/apikeys", "any"},
      {"DELETE /api/v1/apikeys/{id}", "any"},
      {"POST /api/v1/apps", "member"},
      {"GET /api/v1/apps", "any"},
      {"GET /api/v1/apps/{id}", "any"},
      {"DELETE /api/v1/apps/{id}", "admin"},
      {"POST /api/v1/apps/{id}/domains", "member"},
      {"DELETE /api/v1/apps/{id}/domains/{domain}", "member"},
      {"POST /api/v1/builds", "member"},
      {"GET /api/v1/builds", "any"},
      {"GET /api/v1/builds/{id}", "any"},
      {"POST /api/v1/builds/{id}/revoke", "approver"},
      {"GET /api/v1/tasks", "any"},
      {"GET /api/v1/tasks/{id}", "any"},
      {"POST /api/v1/tasks/{id}/approve", "approver"},
      {"POST /api/v1/tasks/{id}/deny", "approver"},
      {"POST /api/v1/certificates", "admin"},
      {"GET /api/v1/certificates", "any"},
      {"GET /api/v1/certificates/{serial}", "any"},
      {"POST /api/v1/certificates/{serial}/revoke", "admin"},
      {"GET /api/v1/nodes", "any"},
      {"GET /api/v1/nodes/{id}", "any"},
      {"POST /api/v1/nodes/{id}/deactivate", "admin"},
      {"POST /api/v1/nodes/nonce", "public"},
      {"POST /api/v1/nodes", "public"},  // authenticated by the join token in the body
      {"POST /api/v1/nodes/renew", "node"},
      {"POST /api/v1/heartbeats", "node"},
      {"GET /api/v1/instances", "any"},
      {"GET /api/v1/audit", "any"},
      {"GET /api/v1/audit/verify", "any"},
  };
  return kRoles;
}

std::string Fill(std::string pattern) {
  for (const char* p : {"{id}", "{domain}", "{serial}"}) {
    size_t pos;
    while ((pos = pattern.find(p)) != std::string::npos) pattern.replace(pos, std::string(p).size(), "x");
  }
  return pattern;
}

TEST_F(ApiTest, EveryRouteHasAnAuthorisationRule) {
  std::set<std::string> routes;
  for (const auto& r : router_->Routes()) routes.insert(r.method + " " + r.pattern);
  std::set<std::string> table;
  for (const auto& [k, v] : RouteRoles()) table.insert(k);
  EXPECT_EQ(routes, table) << "add new routes to RouteRoles() with their minimal role";
}

TEST_F(ApiTest, NonPublicRoutesAnswer401WithoutCredentials) {
  for (const auto& [route, role] : RouteRoles()) {
    if (role == "public") continue;
    std::string method = route.substr(0, route.find(' '));
    std::string path = Fill(route.substr(route.find(' ') + 1));
    Response r = Call(method, path, "{}");
    EXPECT_EQ(r.status, 401u) << route << ": " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << route;
    EXPECT_EQ(j["error"]["code"], "unauthenticated") << route;
    // A wrong token is just as unauthenticated.
    Request req;
    req.method = method;
    req.target = path;
    ASSERT_TRUE(req.ParseTarget().ok());
    req.headers.emplace_back("Authorization", "Bearer vt_not-a-real-token-at-all");
    EXPECT_EQ(router_->Dispatch(req).status, 401u) << route;
  }
}

TEST_F(ApiTest, NodeRoutesRefuseBearerTokens) {
  int checked = 0;
  for (const auto& [route, role] : RouteRoles()) {
    if (role != "node") continue;
    std::string method = route.substr(0, route.find(' '));
    Response r = Call(method, Fill(route.substr(route.find(' ') + 1)), "{}", "admin");
    EXPECT_EQ(r.status, 403u) << route;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "node_identity_required") << route;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST_F(ApiTest, MutatingRoutesAnswer403ToTooSmallRoles) {
  const std::map<std::string, std::vector<std::string>> kTooSmall = {
      {"admin", {"viewer", "member", "approver1"}},
      {"member", {"viewer", "approver1"}},
      {"approver", {"viewer", "member"}},
  };
  int checked = 0;
  for (const auto& [route, role] : RouteRoles()) {
    auto it = kTooSmall.find(role);
    if (it == kTooSmall.end()) continue;
    std::string method = route.substr(0, route.find(' '));
    std::string path = Fill(route.substr(route.find(' ') + 1));
    std::string before = Snapshot();
    for (const auto& user : it->second) {
      Response r = Call(method, path, "{\"name\":\"x\"}", user);
      EXPECT_EQ(r.status, 403u) << route << " as " << user << ": " << r.body;
      EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden") << route;
      ++checked;
    }
    EXPECT_EQ(Snapshot(), before) << route;
  }
  EXPECT_GT(checked, 30);
  // Refused mutations are audited.
  bool found = false;
  json audit = CallJson("GET", "/api/v1/audit?limit=1000", nullptr, "admin", 200);
  for (const auto& e : audit["items"]) {
    if (e["outcome"] == "denied:forbidden" && e["actor"] == "user:viewer") found = true;
  }
  EXPECT_TRUE(found) << CallJson("GET", "/api/v1/audit?limit=5", nullptr, "admin", 200).dump(1);
}

TEST_F(ApiTest, ApiKeysAuthenticateWithTheOwnersRoleAndCanBeDeleted) {
  json key = CallJson("POST", "/api/v1/apikeys", {{"name", "ci"}}, "member", 201);
  std::string secret = key["key"];
  ASSERT_EQ(secret.rfind("vk_", 0), 0u);
  tokens_["ci"] = secret;
  EXPECT_EQ(CallJson("GET", "/api/v1/sys/whoami", nullptr, "ci", 200)["role"], "member");
  EXPECT_EQ(Call("POST", "/api/v1/zones", json{{"name", "z"}}.dump(), "ci").status, 403u);
  // Not listed for someone else, and not deletable by them.
  EXPECT_EQ(Call("DELETE", "/api/v1/apikeys/" + key["id"].get<std::string>(), "", "viewer").status, 404u);
  EXPECT_EQ(Call("DELETE", "/api/v1/apikeys/" + key["id"].get<std::string>(), "", "member").status, 204u);
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "ci").status, 401u);
}

TEST_F(ApiTest, LoginRefusesWrongPasswordsAndLogoutEndsTheSession) {
  Response bad = Call("POST", "/api/v1/sys/auth", json{{"username", "admin"}, {"password", "nope-nope"}}.dump());
  EXPECT_EQ(bad.status, 401u);
  EXPECT_EQ(json::parse(bad.body)["error"]["code"], "invalid_credentials");
  Response unknown = Call("POST", "/api/v1/sys/auth", json{{"username", "ghost"}, {"password", "nope-nope"}}.dump());
  EXPECT_EQ(unknown.status, 401u);
  EXPECT_EQ(Call("DELETE", "/api/v1/sys/auth", "", "viewer").status, 204u);
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 401u);
}

TEST_F(ApiTest, SessionsExpire) {
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 200u);
  clock_.Advance(std::chrono::hours(13));
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 401u);
}

// ------------------------------------------------------------------ flows

TEST_F(ApiTest, BuildNeedsAQuorumOfDistinctApprovers) {
  MakeZoneAndApp(2);
  json build = MakeBuild();
  EXPECT_EQ(build["status"], "pending");
  std::string task = build["task_id"];
  json t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(t["status"], "pending");
  // The same approver again counts once.
  t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(t["status"], "pending");
  EXPECT_EQ(t["approvals"].size(), 1u);
  EXPECT_EQ(CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "pending");
  t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver2", 200);
  EXPECT_EQ(t["status"], "approved");
  EXPECT_EQ(CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "approved");
  // A decided task cannot be decided again.
  EXPECT_EQ(Call("POST", "/api/v1/tasks/" + task + "/deny", json{{"reason", "late"}}.dump(), "admin").status, 409u);
}

TEST_F(ApiTest, OneDenialDeniesTheBuild) {
  MakeZoneAndApp(2);
  json build = MakeBuild();
  std::string task = build["task_id"];
  CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(Call("POST", "/api/v1/tasks/" + task + "/deny", "{}", "approver2").status, 400u);  // reason required
  json t = CallJson("POST", "/api/v1/tasks/" + task + "/deny", {{"reason", "unknown signer"}}, "approver2", 200);
  EXPECT_EQ(t["status"], "denied");
  json b = CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(b["status"], "denied");
  EXPECT_EQ(b["reason"], "unknown signer");
}

TEST_F(ApiTest, DomainAdditionRaisesATask) {
  MakeZoneAndApp(1);
  json t = CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "api.example.com"}}, "member", 202);
  EXPECT_EQ(t["kind"], "domain");
  json app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(app["pending_domains"], json({"api.example.com"}));
  EXPECT_EQ(std::count(app["domains"].begin(), app["domains"].end(), "api.example.com"), 0);
  CallJson("POST", "/api/v1/tasks/" + t["id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(std::count(app["domains"].begin(), app["domains"].end(), "api.example.com"), 1);
  EXPECT_EQ(app["spiffe_id"], "spiffe://prod/app/web");
}

TEST_F(ApiTest, IssuedCertificateFollowsTheProfileAndRevocationReachesTheCrl) {
  MakeZoneAndApp(1);
  json build = MakeBuild();
  // Not approved yet: no certificate.
  Response r = Call("POST", "/api/v1/certificates", json{{"build_id", build["id"]}, {"csr", MakeCsr({"web.example.com"})}}.dump(),
                    "admin");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "build_not_approved");
  CallJson("POST", "/api/v1/tasks/" + build["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  // A name outside the app's domains is refused.
  r = Call("POST", "/api/v1/certificates", json{{"build_id", build["id"]}, {"csr", MakeCsr({"evil.example.org"})}}.dump(),
           "admin");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_not_allowed");
  json cert = CallJson("POST", "/api/v1/certificates",
                       {{"build_id", build["id"]}, {"csr", MakeCsr({"web.example.com", "a.svc.example.com"})}}, "admin", 201);
  auto x = crypto::CertFromPem(cert["pem"].get<std::string>());
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(crypto::SerialHex(x->get()), cert["serial"]);
  EXPECT_GE(cert["serial"].get<std::string>().size(), 30u);  // ~128 random bits
  // SANs: DNS names and the SPIFFE URI.
  std::string sans = cert["sans"].dump();
  EXPECT_NE(sans.find("spiffe://prod/app/web"), std::string::npos);
  EXPECT_NE(sans.find("a.svc.example.com"), std::string::npos);
  // Chain verifies under the zone CA with OpenSSL.
  std::string ca_pem = Call("GET", "/api/v1/zones/prod/ca").body;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/ca.pem", ca_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/leaf.pem", cert["pem"].get<std::string>()).ok());
  std::string cmd = "openssl verify -CAfile " + dir_ + "/ca.pem -purpose sslserver " + dir_ + "/leaf.pem >" + dir_ +
                    "/verify.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadWholeFile(dir_ + "/verify.txt").value_or("") << cert["pem"];

  // Revoking the build revokes the certificate, and the CRL lists it.
  json revoked = CallJson("POST", "/api/v1/builds/" + build["id"].get<std::string>() + "/revoke", {{"reason", "CVE"}},
                          "approver1", 200);
  EXPECT_EQ(revoked["status"], "revoked");
  json c = CallJson("GET", "/api/v1/certificates/" + cert["serial"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(c["status"], "revoked");
  Response crl = Call("GET", "/api/v1/zones/prod/crl?format=pem");
  ASSERT_EQ(crl.status, 200u);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/crl.pem", crl.body).ok());
  std::string text_cmd = "openssl crl -in " + dir_ + "/crl.pem -noout -text > " + dir_ + "/crl.txt 2>&1";
  ASSERT_EQ(std::system(text_cmd.c_str()), 0);
  auto text = ReadWholeFile(dir_ + "/crl.txt");
  ASSERT_TRUE(text.ok());
  std::string serial_upper = cert["serial"];
  for (char& ch : serial_upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_NE(text->find(serial_upper), std::string::npos) << *text;
  // With the CRL, OpenSSL now refuses the leaf.
  std::string crl_cmd = "cat " + dir_ + "/ca.pem " + dir_ + "/crl.pem > " + dir_ + "/ca-crl.pem && openssl verify -crl_check -CAfile " +
                        dir_ + "/ca-crl.pem " + dir_ + "/leaf.pem >/dev/null 2>&1";
  EXPECT_NE(std::system(crl_cmd.c_str()), 0);
}

TEST_F(ApiTest, AuditChainVerifiesAndDetectsEdits) {
  MakeZoneAndApp(1);
  MakeBuild();
  json v = CallJson("GET", "/api/v1/audit/verify", nullptr, "viewer", 200);
  EXPECT_TRUE(v["ok"]);
  EXPECT_GT(v["entries"].get<int>(), 5);
  json list = CallJson("GET", "/api/v1/audit?action=build", nullptr, "viewer", 200);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["action"], "build.create");
  EXPECT_EQ(list["items"][0]["actor"], "user:member");
  ASSERT_TRUE(db_->Write([](store::Transaction& tx) {
                   return tx.Exec("UPDATE audit SET actor = 'user:nobody' WHERE action = 'build.create'").status();
                 }).ok());
  v = CallJson("GET", "/api/v1/audit/verify", nullptr, "viewer", 200);
  EXPECT_FALSE(v["ok"]);
}

TEST_F(ApiTest, ListsPaginate) {
  for (int i = 0; i < 5; ++i) {
    CallJson("POST", "/api/v1/zones", {{"name", "z" + std::to_string(i)}}, "admin", 201);
    clock_.Advance(std::chrono::seconds(1));
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    json page = CallJson("GET", "/api/v1/zones?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), nullptr, "viewer", 200);
    for (const auto& z : page["items"]) seen.insert(z["name"]);
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(Call("GET", "/api/v1/zones?limit=0", "", "viewer").status, 400u);
  EXPECT_EQ(Call("GET", "/api/v1/zones?cursor=!!!", "", "viewer").status, 400u);
  EXPECT_EQ(Call("GET", "/api/v1/zones?cursor=bm9wZQ", "", "viewer").status, 400u);
}

// ------------------------------------------------------------------ bad input

TEST_F(ApiTest, BadInputGets4xxJsonAndChangesNothing) {
  MakeZoneAndApp(1);
  json build = MakeBuild();
  std::string before = Snapshot();
  struct Case {
    std::string method, path, body;
    unsigned status;
    std::string code;  // "" = any
  };
  std::string mre(64, 'c');
  std::vector<Case> cases = {
      {"POST", "/api/v1/zones", "{", 400, "invalid_json"},
      {"POST", "/api/v1/zones", "[]", 400, ""},
      {"POST", "/api/v1/zones", "{\"name\": 5}", 400, "invalid_type"},
      {"POST", "/api/v1/zones", "{}", 400, "missing_field"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"bogus\":1}", 400, "unknown_field"},
      {"POST", "/api/v1/zones", "{\"name\":\"prod\"}", 409, "zone_exists"},
      {"POST", "/api/v1/zones", "{\"name\":\"a'; DROP TABLE zones; --\"}", 400, "invalid_name"},
      {"POST", "/api/v1/zones", "{\"name\":\"../../etc/passwd\"}", 400, "invalid_name"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"min_tcb\":\"Great\"}", 400, "invalid_min_tcb"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"approvals_required\":0}", 400, ""},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"approvals_required\":\"2\"}", 400, "invalid_type"},
      {"POST", "/api/v1/zones", "{\"name\":\"" + std::string(10000, 'a') + "\"}", 400, ""},
      {"PATCH", "/api/v1/zones/nope", "{}", 404, "zone_not_found"},
      {"GET", "/api/v1/zones/..%2F..%2Fetc", "", 404, ""},
      {"POST", "/api/v1/apps", "{\"name\":\"web\",\"zone\":\"prod\"}", 409, "app_exists"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"nope\"}", 404, "zone_not_found"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"prod\",\"domains\":[\"bad domain\"]}", 400, "invalid_domain"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"prod\",\"domains\":\"a.com\"}", 400, "invalid_type"},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"zz\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":70000,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1.5,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"ghost\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1,\"isvsvn\":1}", 404, "app_not_found"},
      {"POST", "/api/v1/tasks/task_nope/approve", "", 404, "task_not_found"},
      {"POST", "/api/v1/builds/build_nope/revoke", "", 404, "build_not_found"},
      {"POST", "/api/v1/certificates", "{\"build_id\":\"" + build["id"].get<std::string>() + "\",\"csr\":\"garbage\"}", 400, ""},
      {"POST", "/api/v1/certificates", "{\"build_id\":\"" + build["id"].get<std::string>() + "\",\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}", 400, ""},
      {"POST", "/api/v1/certificates/deadbeef/revoke", "", 404, "certificate_not_found"},
      {"POST", "/api/v1/users", "{\"name\":\"u\",\"role\":\"root\",\"password\":\"12345678\"}", 400, "invalid_role"},
      {"POST", "/api/v1/users", "{\"name\":\"u\",\"role\":\"viewer\",\"password\":\"short\"}", 400, "weak_password"},
      {"POST", "/api/v1/users", "{\"name\":\"admin\",\"role\":\"viewer\",\"password\":\"12345678\"}", 409, "user_exists"},
      {"DELETE", "/api/v1/users/admin", "", 409, "last_admin"},
      {"PATCH", "/api/v1/users/admin", "{\"role\":\"viewer\"}", 409, "last_admin"},
      {"POST", "/api/v1/zones/prod/join-tokens", "{\"ttl_seconds\":1}", 400, ""},
      {"GET", "/api/v1/builds?status=weird", "", 400, "invalid_status"},
      {"GET", "/api/v1/nope", "", 404, ""},
      {"PUT", "/api/v1/zones", "{}", 405, ""},
  };
  for (const auto& c : cases) {
    Response r = Call(c.method, c.path, c.body, "admin");
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body.substr(0, 80) << " -> " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << c.path << ": " << r.body;
    EXPECT_TRUE(j["error"]["code"].is_string() && j["error"]["message"].is_string());
    if (!c.code.empty()) {
      EXPECT_EQ(j["error"]["code"], c.code) << c.method << " " << c.path << " " << c.body.substr(0, 80);
    }
    EXPECT_EQ(Snapshot(), before) << c.method << " " << c.path << " " << c.body.substr(0, 80);
  }
}

// ------------------------------------------------------------------ OpenAPI

TEST_F(ApiTest, OpenApiDocumentMatchesTheRouter) {
  auto doc = json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << "docs/api/openapi.json is not valid JSON";
  ASSERT_TRUE(doc.contains("paths"));
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      if (method == "parameters" || method == "summary" || method == "description") continue;
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(m + " " + path);
    }
  }
  std::set<std::string> routed;
  for (const auto& r : router_->Routes()) routed.insert(r.method + " " + r.pattern);
  for (const auto& r : routed) EXPECT_TRUE(documented.count(r)) << "undocumented route: " << r;
  for (const auto& d : documented) EXPECT_TRUE(routed.count(d)) << "documented but not routed: " << d;
  Response served = Call("GET", "/api/v1/openapi.json");
  EXPECT_EQ(served.status, 200u);
  EXPECT_EQ(json::parse(served.body)["openapi"].get<std::string>().substr(0, 2), "3.");
}

TEST_F(ApiTest, HealthAndMetrics) {
  EXPECT_EQ(Call("GET", "/healthz").status, 200u);
  EXPECT_EQ(Call("GET", "/readyz").status, 200u);
  Response m = Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_NE(m.body.find("vouch_tasks_pending"), std::string::npos);
}

}  // namespace
}  // namespace vouch::api
