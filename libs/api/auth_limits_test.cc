// Issue 13, "No lock-out by anonymous callers", at the API layer: per-source rate limits on the
// unauthenticated routes, the password-hashing semaphore, the cluster join gate, aggregated
// audit of unauthenticated failures, API key expiry and revocation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "api/manager.h"
#include "api/routes.h"
#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "store/database.h"
#include "testing/request.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

class AuthLimitsTest : public ::testing::Test {
 protected:
  static constexpr char kPassword[] = "correct-horse-battery";

  void SetUp() override {
    auto db = store::OpenDatabase("sqlite:" + dir_ + "/vouch.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    Make({});
    ASSERT_TRUE(manager_->CreateUser(Principal::System(), "admin", "admin", kPassword).ok());
    ASSERT_TRUE(manager_->CreateUser(Principal::System(), "alice", "member", kPassword).ok());
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
  }
  void Make(ManagerOptions options, RouterOptions router_options = {}) {
    router_.reset();
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    auto m = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, options);
    ASSERT_TRUE(m.ok());
    manager_ = std::move(*m);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, &metrics_, router_options));
  }
  Response Call(const std::string& method, const std::string& target, const std::string& body,
                const std::string& token = "", const std::string& remote = "192.0.2.1:40000") {
    bool parsed = false;
    Request req = test::RequestBuilder(method, target).Body(body).Remote(remote).Bearer(token).Build(&parsed);
    EXPECT_TRUE(parsed);
    return router_->Dispatch(req);
  }
  std::string Login(const std::string& user, const std::string& password = kPassword) {
    Response r = Call("POST", "/api/v1/sys/auth", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 200u) << r.body;
    return json::parse(r.body, nullptr, false).value("token", "");
  }
  std::string NewKey(const std::string& session, const json& body = json::object()) {
    json b = body;
    b["name"] = "key-" + std::to_string(++keys_made_);
    Response r = Call("POST", "/api/v1/apikeys", b.dump(), session);
    EXPECT_EQ(r.status, 201u) << r.body;
    last_key_ = json::parse(r.body, nullptr, false);
    return last_key_.value("key", "");
  }
  unsigned WhoAmI(const std::string& token) { return Call("GET", "/api/v1/sys/whoami", "", token).status; }
  // Audit rows of anonymous callers: (actor, action, outcome) -> (rows, sum of detail.count).
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<int64_t, int64_t>> AnonymousAudit() {
    std::map<std::tuple<std::string, std::string, std::string>, std::pair<int64_t, int64_t>> out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Rows rows,
                                            tx.Query("SELECT actor, action, outcome, detail FROM audit "
                                                     "WHERE actor LIKE 'anonymous:%'"));
                     for (const auto& r : rows) {
                       auto& e = out[{r.Str("actor"), r.Str("action"), r.Str("outcome")}];
                       e.first += 1;
                       e.second += json::parse(r.Str("detail")).value("count", int64_t{0});
                     }
                     return Status::Ok();
                   }).ok());
    return out;
  }

  test::TempDir tmp_{"authlimits"};
  std::string dir_ = tmp_.path();
  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()) / 60 * 60 + 5)};
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Manager> manager_;
  http::Metrics metrics_;
  std::unique_ptr<http::Router> router_;
  json last_key_;
  int keys_made_ = 0;
};

TEST_F(AuthLimitsTest, UnauthenticatedRoutesAreRateLimitedPerSource) {
  Make({}, RouterOptions{.unauth_rate_per_second = 0.001, .unauth_burst = 3});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}").status, 201u) << i;
  Response r = Call("POST", "/api/v1/nodes/nonce", "{}");
  EXPECT_EQ(r.status, 429u);
  EXPECT_NE(r.body.find("\"rate_limited\""), std::string::npos) << r.body;
  EXPECT_EQ(r.Header("Retry-After"), "1000");
  // One bucket per source over every unauthenticated route: login too.
  EXPECT_EQ(Call("POST", "/api/v1/sys/auth", R"({"username":"admin","password":"x"})").status, 429u);
  EXPECT_EQ(Call("POST", "/api/v1/nodes", "{}").status, 429u);
  EXPECT_EQ(Call("POST", "/api/v1/cluster/join", "{}").status, 429u);
  // Another source is not affected (IPv6 with its port stripped)...
  EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}", "", "[2001:db8::7]:5000").status, 201u);
  EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}", "", "[2001:db8::7]:5001").status, 201u);
  // ...but the addresses of one IPv6 /64 share a bucket.
  EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}", "", "[2001:db8::8]:5000").status, 201u);
  EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}", "", "[2001:db8::9]:5000").status, 429u);
  EXPECT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}", "", "[2001:db8:0:1::9]:5000").status, 201u);
  EXPECT_EQ(metrics_.Value("vouch_unauth_rate_limited_total", {{"route", "/api/v1/nodes/nonce"}}), 2);
}

TEST_F(AuthLimitsTest, RateLimitDisabledWithZeroRate) {
  Make({}, RouterOptions{.unauth_rate_per_second = 0, .unauth_burst = 1});
  for (int i = 0; i < 50; ++i) ASSERT_EQ(Call("POST", "/api/v1/nodes/nonce", "{}").status, 201u) << i;
}

TEST_F(AuthLimitsTest, LoginsBeyondTheHashingSlotsAreBusy) {
  // One slot, no queue: with the real (32 MiB) scrypt, concurrent logins overlap and the ones
  // that find the slot taken are refused at once with 503 busy and Retry-After.
  ManagerOptions o;
  o.password_hash_slots = 1;
  o.password_hash_queue = 0;
  Make(o, RouterOptions{.unauth_rate_per_second = 0});
  auto slow = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, o);
  ASSERT_TRUE(slow.ok());
  router_ = std::make_unique<http::Router>(BuildRouter(**slow, &metrics_, RouterOptions{.unauth_rate_per_second = 0}));
  std::atomic<int> busy{0}, refused{0}, other{0};
  std::atomic<bool> retry_after{true};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      Response r = Call("POST", "/api/v1/sys/auth", R"({"username":"nobody","password":"wrong-password"})");
      if (r.status == 503 && r.body.find("\"busy\"") != std::string::npos) {
        ++busy;
        if (r.Header("Retry-After") != "1") retry_after = false;
      } else if (r.status == 401) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GE(busy.load(), 1);
  EXPECT_GE(refused.load(), 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_TRUE(retry_after.load());
  router_.reset();
}

TEST_F(AuthLimitsTest, ClusterRoutesAreRefusedUnlessJoiningIsEnabled) {
  std::string nested(1 << 20, '[');
  Response r = Call("POST", "/api/v1/cluster/join", nested);
  EXPECT_EQ(r.status, 404u);
  EXPECT_NE(r.body.find("cluster_join_disabled"), std::string::npos) << r.body;
  EXPECT_EQ(Call("POST", "/api/v1/cluster/nonce", "").status, 404u);
}

TEST_F(AuthLimitsTest, DeeplyNestedBodiesAreRefusedWithoutCrashing) {
  std::string session = Login("admin");
  std::string nested(1 << 20, '[');
  for (const char* target : {"/api/v1/sys/auth", "/api/v1/nodes", "/api/v1/zones", "/api/v1/apps", "/api/v1/apikeys",
                             "/api/v1/users", "/api/v1/builds"}) {
    Response r = Call("POST", target, nested, session);
    EXPECT_EQ(r.status, 400u) << target << ": " << r.body;
    EXPECT_NE(r.body.find("invalid_json"), std::string::npos) << target << ": " << r.body;
  }
}

TEST_F(AuthLimitsTest, UnauthenticatedFailuresAreAuditedPerSourceAndMinute) {
  for (int i = 0; i < 7; ++i) Call("POST", "/api/v1/sys/auth", R"({"username":"admin","password":"wrong-password"})");
  for (int i = 0; i < 3; ++i) {
    Call("POST", "/api/v1/sys/auth", R"({"username":"mallory","password":"wrong-password"})", "", "192.0.2.9:1");
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(WhoAmI("vt_not-a-real-session-token"), 401u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(WhoAmI("vk_not-a-real-api-key-at-all"), 401u);
  // The first refusal of each kind is written at once; the rest are counted.
  auto a = AnonymousAudit();
  using K = std::tuple<std::string, std::string, std::string>;
  EXPECT_EQ(a[K("anonymous:192.0.2.1", "auth.login", "denied:invalid_credentials")], std::make_pair(int64_t{1}, int64_t{1}));
  EXPECT_EQ(a[K("anonymous:192.0.2.9", "auth.login", "denied:invalid_credentials")], std::make_pair(int64_t{1}, int64_t{1}));
  // The minute closes: one more row per key carrying the count of the others.
  clock_.Advance(std::chrono::seconds(60));
  manager_->FlushRefusalAggregates();
  a = AnonymousAudit();
  EXPECT_EQ(a[K("anonymous:192.0.2.1", "auth.login", "denied:invalid_credentials")], std::make_pair(int64_t{2}, int64_t{7}));
  EXPECT_EQ(a[K("anonymous:192.0.2.9", "auth.login", "denied:invalid_credentials")], std::make_pair(int64_t{2}, int64_t{3}));
  EXPECT_EQ(a[K("anonymous:192.0.2.1", "auth.token", "denied:unauthenticated")], std::make_pair(int64_t{2}, int64_t{4}));
  EXPECT_EQ(a[K("anonymous:192.0.2.1", "auth.apikey", "denied:unauthenticated")], std::make_pair(int64_t{2}, int64_t{2}));
  // Nothing is left to write; a later refusal also writes what a closed minute still held.
  manager_->FlushRefusalAggregates(true);
  EXPECT_EQ(AnonymousAudit(), a);
  // The chain still verifies.
  auto v = manager_->VerifyAudit(Principal::System());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE((*v)["ok"].get<bool>()) << v->dump();
}

// A node enrolment refused at its nonce or join token is an anonymous caller's refusal: counted
// per source and minute like a failed login, not written one by one (EnrollNode decides, by
// where the refusal happens, not by its code).
TEST_F(AuthLimitsTest, EnrolmentRefusalsBeforeTheJoinTokenAreCountedPerSource) {
  auto key = crypto::GenerateP256();
  ASSERT_TRUE(key.ok());
  auto spki = crypto::PublicKeyToDer(key->get());
  ASSERT_TRUE(spki.ok());
  json body = {{"join_token", "vj_not-a-real-join-token"},
               {"nonce", std::string(64, 'a')},
               {"public_key", Base64Encode(*spki)},
               {"platform", "sgx"},
               {"evidence", Base64Encode(std::vector<uint8_t>(64, 1))}};
  const std::string source = "192.0.2.4:5000";
  for (int i = 0; i < 2; ++i) {
    Response r = Call("POST", "/api/v1/nodes", body.dump(), "", source);
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_NE(r.body.find("nonce_invalid"), std::string::npos) << r.body;
  }
  Response n = Call("POST", "/api/v1/nodes/nonce", "{}", "", source);
  ASSERT_EQ(n.status, 201u) << n.body;
  body["nonce"] = json::parse(n.body).value("nonce", "");
  Response r = Call("POST", "/api/v1/nodes", body.dump(), "", source);
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_NE(r.body.find("join_token_invalid"), std::string::npos) << r.body;
  clock_.Advance(std::chrono::seconds(60));
  manager_->FlushRefusalAggregates();
  auto a = AnonymousAudit();
  using K = std::tuple<std::string, std::string, std::string>;
  EXPECT_EQ(a[K("anonymous:192.0.2.4", "node.provision", "denied:nonce_invalid")], std::make_pair(int64_t{2}, int64_t{2}));
  EXPECT_EQ(a[K("anonymous:192.0.2.4", "node.provision", "denied:join_token_invalid")],
            std::make_pair(int64_t{1}, int64_t{1}));
  // Nothing of it was written under a node's name.
  EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Rows rows,
                                          tx.Query("SELECT actor FROM audit WHERE action = 'node.provision' AND "
                                                   "actor NOT LIKE 'anonymous:%'"));
                   EXPECT_TRUE(rows.empty()) << rows[0].Str("actor");
                   return Status::Ok();
                 }).ok());
}

TEST_F(AuthLimitsTest, TheAggregationTableIsBounded) {
  ManagerOptions o;
  o.refusal_aggregate_max_keys = 10;
  Make(o);
  Status why = Unauthenticated("x", "invalid_credentials");
  for (int i = 0; i < 500; ++i) manager_->AuditUnauthenticated("198.51.100." + std::to_string(i), "auth.login", "", why);
  clock_.Advance(std::chrono::seconds(60));
  manager_->FlushRefusalAggregates();
  auto a = AnonymousAudit();
  int64_t rows = 0, total = 0;
  for (const auto& [k, v] : a) {
    rows += v.first;
    total += v.second;
  }
  EXPECT_EQ(total, 500);                // every refusal counted
  EXPECT_LE(a.size(), 11u);             // 10 sources, then "*"
  EXPECT_EQ(a.count({"anonymous:*", "auth.login", "denied:invalid_credentials"}), 1u);
  EXPECT_LE(rows, 22);
}

TEST_F(AuthLimitsTest, ApiKeysExpireByDefaultAndHaveAMaximum) {
  std::string session = Login("alice");
  std::string key = NewKey(session);
  int64_t now = ToUnixSeconds(clock_.Now());
  auto expires = ParseRfc3339(last_key_["expires_at"].get<std::string>());
  ASSERT_TRUE(expires.ok());
  EXPECT_EQ(ToUnixSeconds(*expires), now + 90 * 86400);
  Response too_long = Call("POST", "/api/v1/apikeys", R"({"name":"forever","expires_in_days":366})", session);
  EXPECT_EQ(too_long.status, 400u);
  EXPECT_NE(too_long.body.find("invalid_expiry"), std::string::npos);
  std::string short_key = NewKey(session, {{"expires_in_days", 1}});
  EXPECT_EQ(WhoAmI(key), 200u);
  EXPECT_EQ(WhoAmI(short_key), 200u);
  clock_.Advance(std::chrono::hours(24));
  EXPECT_EQ(WhoAmI(short_key), 401u);
  EXPECT_EQ(WhoAmI(key), 200u);
  clock_.Advance(std::chrono::hours(24 * 89));
  EXPECT_EQ(WhoAmI(key), 401u);
  // A key stored without an expiry (made before keys expired) lasts api_key_max_days.
  std::string legacy = NewKey(Login("alice"));
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) {
                   return tx.Exec("UPDATE api_keys SET expires_at = NULL WHERE id = ?", {last_key_["id"].get<std::string>()})
                       .status();
                 }).ok());
  clock_.Advance(std::chrono::hours(24 * 364));
  EXPECT_EQ(WhoAmI(legacy), 200u);
  clock_.Advance(std::chrono::hours(24));
  EXPECT_EQ(WhoAmI(legacy), 401u);
}

TEST_F(AuthLimitsTest, ApiKeysAreRevokedWhenTheOwnerChangesPasswordOrIsDisabled) {
  std::string admin = Login("admin");
  std::string key = NewKey(Login("alice"));
  EXPECT_EQ(WhoAmI(key), 200u);
  EXPECT_EQ(Call("PATCH", "/api/v1/users/alice", R"({"password":"another-password-1"})", admin).status, 200u);
  EXPECT_EQ(WhoAmI(key), 401u);
  // Disabling revokes too; enabling again does not bring the key back.
  std::string key2 = NewKey(Login("alice", "another-password-1"));
  EXPECT_EQ(WhoAmI(key2), 200u);
  EXPECT_EQ(Call("PATCH", "/api/v1/users/alice", R"({"disabled":true})", admin).status, 200u);
  EXPECT_EQ(Call("PATCH", "/api/v1/users/alice", R"({"disabled":false})", admin).status, 200u);
  EXPECT_EQ(WhoAmI(key2), 401u);
  // A role change keeps keys (they act with the owner's current role).
  std::string key3 = NewKey(Login("alice", "another-password-1"));
  EXPECT_EQ(Call("PATCH", "/api/v1/users/alice", R"({"role":"viewer"})", admin).status, 200u);
  EXPECT_EQ(WhoAmI(key3), 200u);
  // The revocations are in the audit detail.
  bool audited = false;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Rows rows,
                                          tx.Query("SELECT detail FROM audit WHERE action = 'user.update'"));
                   for (const auto& r : rows) audited |= r.Str("detail").find("api_keys_revoked") != std::string::npos;
                   return Status::Ok();
                 }).ok());
  EXPECT_TRUE(audited);
}

}  // namespace
}  // namespace vouch::api
