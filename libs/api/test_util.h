#pragma once

// Test support for the api unit tests (compiled into api_test only, never into the library): the
// store they run on and the Manager fixture they share, so that each test file does not carry its
// own copy of it.
//
// The store: SQLite in the test's temporary directory, or, when VOUCH_TEST_STORE=postgres (ctest's
// pg.<test> variants of api_test, libs/api/CMakeLists.txt), a fresh database on the process's
// shared throwaway PostgreSQL server (libs/pgtest).

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/bootstrap.h"
#include "api/manager.h"
#include "api/routes.h"
#include "base/clock.h"
#include "crypto/random.h"
#include "http/metrics.h"
#include "pgtest/test_postgres.h"
#include "store/database.h"
#include "testing/request.h"
#include "testing/temp_dir.h"

namespace vouch::api {

// True when this run is a pg.<test> variant (VOUCH_TEST_STORE=postgres).
inline bool TestsUsePostgres() {
  const char* store = std::getenv("VOUCH_TEST_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

// On a pg.<test> run, replaces *url with a fresh database on the shared test PostgreSQL server;
// otherwise leaves it alone. False when the test must end now: when no server can be started, a
// skip has been recorded (a failure under VOUCH_REQUIRE_POSTGRES=1). The caller returns then:
//   if (!UseTestStore(&url)) return;
inline bool UseTestStore(std::string* url) {
  if (!TestsUsePostgres()) return true;
  auto pg = pgtest::FreshTestDatabase();
  if (pg.ok()) {
    *url = *pg;
    return true;
  }
  // FAIL() and GTEST_SKIP() return from the lambda; the fatal failure or the skip stays recorded.
  [&] {
    if (pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << pg.status().ToString();
    GTEST_SKIP() << "no PostgreSQL server: " << pg.status().ToString();
  }();
  return false;
}

// InitOptions for a data directory at `data_dir` with admin "admin", on the test store (SQLite in
// the data directory, or PostgreSQL on a pg.<test> run). False as UseTestStore.
inline bool TestDataDirOptions(const std::string& data_dir, InitOptions* o) {
  o->data_dir = data_dir;
  o->admin_user = "admin";
  o->admin_password = "correct horse battery";
  return UseTestStore(&o->store_url);
}

// A Manager over the store of a data directory made by InitDataDir (OpenDataDir: its store URL and
// master key). The Manager uses `db` and `clock`, which must outlive it.
struct DataDirManager {
  std::unique_ptr<store::Database> db;
  std::unique_ptr<Manager> manager;
};
inline Result<DataDirManager> OpenDataDirManager(const std::string& data_dir, const Clock* clock) {
  VOUCH_ASSIGN_OR_RETURN(DataDir d, OpenDataDir(data_dir));
  DataDirManager out;
  VOUCH_ASSIGN_OR_RETURN(out.db, store::OpenDatabase(d.store_url));
  VOUCH_ASSIGN_OR_RETURN(out.manager, Manager::Create(out.db.get(), std::move(d.master_key), clock));
  return out;
}

// A Manager over a migrated test store with the REST router and users signed in, for tests that
// call the API as the UI and CLI do. SetUp() builds it in this order: the store, ManagerOptions
// (fast password hashing, then Configure()), the Manager (under master_), the router (with
// metrics_), then every user of users_ created with kUserPassword and signed in (tokens_).
//
// A derived fixture sets users_, postgres_, record_answers_ or the clock in its constructor, overrides Configure()
// for its own ManagerOptions, and extends SetUp() as
//   void SetUp() override { ManagerFixture::SetUp(); if (!Ready()) return; ... }
class ManagerFixture : public ::testing::Test {
 protected:
  static constexpr char kUserPassword[] = "correct-horse-battery";

  explicit ManagerFixture(std::string_view tmp_tag = "api") : tmp_(tmp_tag), dir_(tmp_.path()) {}

  // ManagerOptions of the derived fixture (e.g. collateral service, backup hooks); db_ is open.
  virtual void Configure(ManagerOptions&) {}

  void SetUp() override {
    std::string url = "sqlite:" + dir_ + "/vouch.db";
    if (postgres_ && !UseTestStore(&url)) return;
    auto db = store::OpenDatabase(url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};  // fast for tests; default 2^15
    Configure(options);
    if (!Ready()) return;
    auto m = Manager::Create(db_.get(), crypto::SecretBytes(master_.span()), &clock_, options);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    manager_ = std::move(*m);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, &metrics_));
    for (const auto& [name, role] : users_) {
      ASSERT_TRUE(manager_->CreateUser(Principal::System(), name, role, kUserPassword).ok()) << name;
      SignIn(name);
      if (!Ready()) return;
    }
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
  }

  // False once SetUp (or anything before) recorded a fatal failure or a skip.
  static bool Ready() { return !HasFatalFailure() && !IsSkipped(); }

  // A fresh session for `name` in tokens_ (sessions expire when a test moves the clock by days).
  void SignIn(const std::string& name) {
    http::Response r = Call("POST", "/api/v1/sys/auth", json{{"username", name}, {"password", kUserPassword}}.dump());
    ASSERT_EQ(r.status, 200u) << r.body;
    tokens_[name] = json::parse(r.body)["token"];
  }

  // The router's answer to a request from 127.0.0.1 with `user`'s bearer token ("" for none);
  // with record_answers_, its body is appended to answers_. Safe to call from a test's threads
  // once SetUp is done (tokens_ is only read here).
  http::Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                      const std::string& user = "") {
    test::RequestBuilder builder(method, target);
    builder.Body(body);
    if (!user.empty()) {
      auto token = tokens_.find(user);
      builder.Header("Authorization", "Bearer " + (token == tokens_.end() ? std::string() : token->second));
    }
    bool parsed = false;
    http::Request req = builder.Build(&parsed);
    EXPECT_TRUE(parsed) << target;
    http::Response r = router_->Dispatch(req);
    if (record_answers_) {
      std::lock_guard<std::mutex> lock(answers_mu_);
      answers_ += r.body + "\n";
    }
    return r;
  }
  // Call with a JSON body (null: none) that expects `want_status`; the answer parsed (discarded
  // JSON when it is not JSON).
  json CallJson(const std::string& method, const std::string& target, const json& body, const std::string& user,
                unsigned want_status) {
    http::Response r = Call(method, target, body.is_null() ? "" : body.dump(), user);
    EXPECT_EQ(r.status, want_status) << method << " " << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // The error code of an error answer; "" for anything else.
  static std::string ErrorCode(const json& j) {
    return j.is_object() && j.contains("error") && j["error"].is_object() ? j["error"].value("code", "") : "";
  }

  // A zone (by admin); `approvals` sets approvals_required, else the default.
  json MakeZone(const std::string& name = "prod", std::optional<int> approvals = std::nullopt) {
    json body = {{"name", name}};
    if (approvals) body["approvals_required"] = *approvals;
    return CallJson("POST", "/api/v1/zones", body, "admin", 201);
  }
  // An app (by member) in `zone`, with initial `domains` when given (pending domain tasks).
  json MakeApp(const std::string& name, const std::string& zone, const json& domains = nullptr) {
    json body = {{"name", name}, {"zone", zone}};
    if (!domains.is_null()) body["domains"] = domains;
    return CallJson("POST", "/api/v1/apps", body, "member", 201);
  }
  // Approves a task as `approver`.
  void Approve(const std::string& task_id, const std::string& approver = "approver1") {
    CallJson("POST", "/api/v1/tasks/" + task_id + "/approve", nullptr, approver, 200);
  }
  // Approves every initial domain task of `app` (approver1 .. approver<approvals>).
  void ApproveDomainTasks(const json& app, int approvals = 1) {
    for (const auto& t : app["domain_tasks"]) {
      for (int i = 1; i <= approvals; ++i) Approve(t["task_id"].get<std::string>(), "approver" + std::to_string(i));
    }
  }
  // A build of `app` (by member; pending its approval task): MRENCLAVE 32 x `mrenclave_byte`
  // (two hex digits), MRSIGNER 0xbb.., ISVPRODID 1, ISVSVN 2.
  json MakeBuild(const std::string& mrenclave_byte = "aa", const std::string& app = "web") {
    std::string mre;
    for (int i = 0; i < 32; ++i) mre += mrenclave_byte;
    return CallJson("POST", "/api/v1/builds",
                    {{"app", app}, {"mrenclave", mre}, {"mrsigner", std::string(64, 'b')}, {"isvprodid", 1}, {"isvsvn", 2}},
                    "member", 201);
  }

  // The single integer a query answers (-1 and a test failure when it fails).
  int64_t Count(const std::string& sql, const std::vector<store::Value>& params = {}) {
    int64_t n = -1;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne(sql, params, "count"));
                     n = r.Int(0);
                     return Status::Ok();
                   }).ok())
        << sql;
    return n;
  }
  // Runs one statement in its own transaction; false and a test failure when it fails.
  bool Exec(const std::string& sql, const std::vector<store::Value>& params) {
    Status st = db_->Write([&](store::Transaction& tx) { return tx.Exec(sql, params).status(); });
    EXPECT_TRUE(st.ok()) << st.ToString() << ": " << sql;
    return st.ok();
  }

  // Set by a derived fixture's constructor, read by SetUp.
  std::vector<std::pair<std::string, std::string>> users_ = {
      {"admin", "admin"}, {"approver1", "approver"}, {"approver2", "approver"}, {"member", "member"}, {"viewer", "viewer"}};
  bool postgres_ = true;          // false: SQLite even on a pg.<test> run
  bool record_answers_ = false;  // true: Call appends every answer body to answers_

  // Real time (fixed during the test), since certificates are checked by the openssl binary.
  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  crypto::SecretBytes master_ = crypto::RandomSecret(32);
  test::TempDir tmp_;
  std::string dir_;  // tmp_.path()
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Manager> manager_;
  http::Metrics metrics_;
  std::unique_ptr<http::Router> router_;
  std::map<std::string, std::string> tokens_;  // user name -> session token
  std::mutex answers_mu_;
  std::string answers_;  // with record_answers_: every answer body of the test, one a line
};

}  // namespace vouch::api
