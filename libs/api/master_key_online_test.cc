// Online master-key rotation (issue 18; master_key_online.cc, docs/custody.md "Online rotation"):
// POST /api/v1/master-key/rotate in a serving Manager, concurrent work during it, members left
// with the old key, interruptions at each step. Also on PostgreSQL as pg.MasterKeyOnline.*.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/bootstrap.h"
#include "api/heartbeat_keys.h"
#include "api/manager.h"
#include "api/master_key.h"
#include "api/routes.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "pgtest/test_postgres.h"
#include "store/audit.h"
#include "store/database.h"
#include "testing/csr.h"
#include "testing/request.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

std::string FileOf(const std::string& path) {
  auto k = ReadWholeFile(path);
  EXPECT_TRUE(k.ok()) << path;
  return k.ok() ? *k : std::string();
}

RegistrySpec TokenSpec(const std::string& token) {
  RegistrySpec spec;
  spec.token = std::optional<std::string>(token);
  return spec;
}

class MasterKeyOnline : public ::testing::Test {
 protected:
  static constexpr char kPassword[] = "correct-horse-battery";

  void SetUp() override {
    InitOptions o;
    o.data_dir = tmp_.path() + "/data";
    o.admin_user = "root";
    o.admin_password = "correct horse battery staple";
    if (const char* store = std::getenv("VOUCH_TEST_STORE"); store && std::string(store) == "postgres") {
      auto pg = pgtest::FreshTestDatabase();
      if (!pg.ok() && pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << pg.status().ToString();
      if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server: " << pg.status().ToString();
      o.store_url = *pg;
    }
    auto r = InitDataDir(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    dir_ = o.data_dir;
    old_key_ = FileOf(dir_ + "/master.key");
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok());
    store_url_ = d->store_url;
    auto db = store::OpenDatabase(store_url_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
    manager_ = NewManager(db_.get(), crypto::SecretBytes(AsBytes(old_key_)), dir_);
    ASSERT_NE(manager_, nullptr);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, nullptr));
    for (auto [name, role] : std::vector<std::pair<std::string, std::string>>{
             {"admin", "admin"}, {"approver1", "approver"}, {"member", "member"}}) {
      ASSERT_TRUE(manager_->CreateUser(Principal::System(), name, role, kPassword).ok());
      Response resp = Call("POST", "/api/v1/sys/auth", json{{"username", name}, {"password", kPassword}}.dump());
      ASSERT_EQ(resp.status, 200u) << resp.body;
      tokens_[name] = json::parse(resp.body)["token"];
    }
    PopulateEverySealedColumn();
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
  }

  std::unique_ptr<Manager> NewManager(store::Database* db, crypto::SecretBytes key, const std::string& data_dir) {
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    options.data_dir = data_dir;
    options.master_key_step_hook = [this](std::string_view step) -> Status {
      return hook_ ? hook_(step) : Status::Ok();
    };
    auto m = Manager::Create(db, std::move(key), &clock_, options);
    EXPECT_TRUE(m.ok()) << m.status().message();
    return m.ok() ? std::move(*m) : nullptr;
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& user = "", http::Router* router = nullptr) {
    test::RequestBuilder builder(method, target);
    builder.Body(body);
    if (!user.empty()) builder.Header("Authorization", "Bearer " + tokens_[user]);
    bool parsed = false;
    Request req = builder.Build(&parsed);
    EXPECT_TRUE(parsed) << target;
    return (router != nullptr ? router : router_.get())->Dispatch(req);
  }
  json CallJson(const std::string& method, const std::string& target, const json& body, const std::string& user,
                unsigned want_status) {
    Response resp = Call(method, target, body.is_null() ? "" : body.dump(), user);
    EXPECT_EQ(resp.status, want_status) << method << " " << target << ": " << resp.body;
    return json::parse(resp.body, nullptr, false);
  }

  // At least one value in every sealed column of docs/custody.md.
  void PopulateEverySealedColumn() {
    CallJson("POST", "/api/v1/zones", {{"name", "prod"}}, "admin", 201);            // zones.ca_key_sealed
    ASSERT_TRUE(manager_->NodeCaPem().ok());                                          // settings node CA key
    CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);          // zone_cas.key_sealed
    CallJson("POST", "/api/v1/registries",                                            // registries.secret_sealed
             {{"name", "hub"}, {"url", "https://registry.example"}, {"token", "tok-s3cret"}}, "admin", 201);
    app_ = CallJson("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "prod"}, {"domains", {"web.example.com"}}},
                    "member", 201);
    ASSERT_TRUE(manager_->RotateAppSigningKey(Principal::System(), "web").ok());      // app_signing_keys (2)
    // A zone heartbeat key as manager_heartbeats.cc seals it on a zone's first MAC-capable issuance.
    auto key = crypto::GenerateP256();
    ASSERT_TRUE(key.ok());
    auto der = crypto::PrivateKeyToDer(key->get());
    ASSERT_TRUE(der.ok());
    const std::string pub = crypto::PublicKeyToPem(key->get()).value();
    ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Row z, tx.QueryOne("SELECT id FROM zones WHERE name = ?", {"prod"}, "zone"));
                     VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(AsBytes(old_key_), der->span(),
                                                                               AsBytes(ZoneHeartbeatKeyAad(z.Str(0)))));
                     return tx.Exec("UPDATE zones SET heartbeat_key_sealed = ?, heartbeat_pub_pem = ? WHERE id = ?",
                                    {store::Blob(sealed), pub, z.Str(0)})
                         .status();
                   }).ok());
    auto census = CensusSealedValues(*db_, crypto::SecretBytes(AsBytes(old_key_)));
    ASSERT_TRUE(census.ok());
    EXPECT_EQ(census->Failed(), 0);
    for (const char* column : {"zones.ca_key_sealed", "zones.heartbeat_key_sealed", "zone_cas.key_sealed",
                               "registries.secret_sealed", "app_signing_keys.key_sealed",
                               "settings.node_ca_key_sealed"}) {
      EXPECT_GE(census->opens[column], 1) << column << " holds nothing: the test would prove nothing about it";
    }
  }

  // Every sealed value of the store and the TLS key file opens with `key` and none with any of `others`.
  void ExpectWhollyUnder(const std::string& key, const std::vector<std::string>& others) {
    auto census = CensusSealedValues(*db_, crypto::SecretBytes(AsBytes(key)));
    ASSERT_TRUE(census.ok()) << census.status().message();
    EXPECT_EQ(census->Failed(), 0) << json(census->fails).dump();
    EXPECT_GE(census->Opened(), 8);
    for (const std::string& other : others) {
      auto o = CensusSealedValues(*db_, crypto::SecretBytes(AsBytes(other)));
      ASSERT_TRUE(o.ok());
      EXPECT_EQ(o->Opened(), 0) << json(o->opens).dump();
    }
    const std::string tls = FileOf(dir_ + "/tls/server.key.sealed");
    EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(key), AsBytes(tls), AsBytes("vouch:service-tls-key")).ok());
    for (const std::string& other : others) {
      EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(other), AsBytes(tls), AsBytes("vouch:service-tls-key")).ok());
    }
  }

  // An app with web.example.com approved and an approved build: returns the build id.
  std::string ApprovedBuild() {
    for (const auto& t : app_["domain_tasks"]) {
      CallJson("POST", "/api/v1/tasks/" + t["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
    }
    json build = CallJson("POST", "/api/v1/builds",
                          {{"app", "web"}, {"mrenclave", std::string(64, 'a')}, {"mrsigner", std::string(64, 'b')},
                           {"isvprodid", 1}, {"isvsvn", 2}},
                          "member", 201);
    CallJson("POST", "/api/v1/tasks/" + build["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
    return build["id"];
  }

  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  test::TempDir tmp_{"mkonline"};
  std::string dir_, store_url_, old_key_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Router> router_;
  std::map<std::string, std::string> tokens_;
  json app_;
  std::function<Status(std::string_view)> hook_;
};

TEST_F(MasterKeyOnline, EverySealedColumnOpensWithTheNewKeyOnlyAndTheManagerGoesOn) {
  auto before = CensusSealedValues(*db_, crypto::SecretBytes(AsBytes(old_key_)));
  ASSERT_TRUE(before.ok());
  json out = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "admin", 200);
  const std::string new_key = FileOf(dir_ + "/master.key");
  ASSERT_EQ(new_key.size(), 32u);
  ASSERT_NE(new_key, old_key_);
  EXPECT_EQ(out["key_id"], MasterKeyIdHex(AsBytes(new_key)));
  EXPECT_EQ(manager_->MasterKeyId(), MasterKeyIdHex(AsBytes(new_key)));
  EXPECT_TRUE(out["rotated_at"].is_string());
  // The answer counts every value of every column.
  for (const auto& [column, n] : before->opens) {
    if (column == "settings.master_key_check") continue;
    EXPECT_EQ(out["resealed"].value(column, int64_t{-1}), n) << column;
  }
  EXPECT_EQ(out["resealed"]["tls/server.key.sealed"], 1);
  ExpectWhollyUnder(new_key, {old_key_});
  EXPECT_FALSE(FileExists(dir_ + "/master.key.next"));
  EXPECT_FALSE(FileExists(dir_ + "/tls/server.key.sealed.next"));
  auto current = manager_->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_TRUE(*current);

  // The serving Manager seals and unseals with the new key: a new zone, a registry secret, a CRL.
  CallJson("POST", "/api/v1/zones", {{"name", "staging"}}, "admin", 201);
  CallJson("PATCH", "/api/v1/registries/hub", {{"token", "tok-2"}}, "admin", 200);
  ExpectWhollyUnder(new_key, {old_key_});
  EXPECT_EQ(Call("GET", "/readyz").status, 200u);

  // A restart (OpenDataDir, a new Manager) opens every value through the code that uses it.
  auto d = OpenDataDir(dir_);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->master_key.view(), new_key);
  ASSERT_TRUE(CheckMasterKeyOpensStore(*db_, d->master_key).ok());
  FixedClock later(clock_.Now() + std::chrono::hours(24 * 6));
  auto again = Manager::Create(db_.get(), std::move(d->master_key), &later);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->NodeCaPem().ok());
  for (const char* zone : {"default", "prod", "staging"}) {
    auto crl = (*again)->ZoneCrl(zone);
    EXPECT_TRUE(crl.ok()) << zone << ": " << crl.status().message();
  }

  // Audited once, with the counts and the key id, never the key; the chain verifies.
  std::string detail;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Rows rows,
                                          tx.Query("SELECT actor, detail FROM audit WHERE action = ?", {"master_key.rotate"}));
                   EXPECT_EQ(rows.size(), 1u);
                   if (!rows.empty()) {
                     EXPECT_EQ(rows[0].Str(0), "user:admin");
                     detail = rows[0].Str(1);
                   }
                   return Status::Ok();
                 }).ok());
  EXPECT_NE(detail.find(MasterKeyIdHex(AsBytes(new_key))), std::string::npos) << detail;
  EXPECT_NE(detail.find("zones.ca_key_sealed"), std::string::npos) << detail;
  for (const std::string& k : {new_key, old_key_}) {
    EXPECT_EQ(detail.find(HexEncode(AsBytes(k))), std::string::npos);
    EXPECT_EQ(detail.find(Base64Encode(AsBytes(k))), std::string::npos);
  }
  auto v = store::VerifyAuditChain(*db_);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
}

TEST_F(MasterKeyOnline, OnlyAnAdminRotatesAndAManagerWithoutADataDirectoryRefuses) {
  json refused = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "member", 403);
  EXPECT_EQ(FileOf(dir_ + "/master.key"), old_key_);
  CallJson("POST", "/api/v1/master-key/rotate", json{{"unexpected", 1}}, "admin", 400);
  EXPECT_EQ(FileOf(dir_ + "/master.key"), old_key_);
  // A sealed value that does not open: 409 sealed_value_unreadable, nothing changed.
  std::string saved;
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT secret_sealed FROM registries WHERE name = ?",
                                                                    {"hub"}, "registry"));
                   saved = ToString(r.Bytes(0));
                   return tx.Exec("UPDATE registries SET secret_sealed = ? WHERE name = ?",
                                  {store::Blob(60, 7), std::string("hub")})
                       .status();
                 }).ok());
  json unreadable = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "admin", 409);
  EXPECT_EQ(unreadable["error"]["code"], "sealed_value_unreadable");
  EXPECT_EQ(FileOf(dir_ + "/master.key"), old_key_);
  EXPECT_FALSE(FileExists(dir_ + "/master.key.next"));
  EXPECT_FALSE(FileExists(dir_ + "/tls/server.key.sealed.next"));
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   return tx.Exec("UPDATE registries SET secret_sealed = ? WHERE name = ?",
                                  {store::Blob(AsBytes(saved).begin(), AsBytes(saved).end()), std::string("hub")})
                       .status();
                 }).ok());
  auto bare = NewManager(db_.get(), crypto::SecretBytes(AsBytes(old_key_)), "");
  ASSERT_NE(bare, nullptr);
  auto r = bare->RotateMasterKeyOnline(Principal::System());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kRotationUnavailable);
  ExpectWhollyUnder(old_key_, {});
}

TEST_F(MasterKeyOnline, IssuanceAndSealingDuringRotationsAllSucceedAndNothingStaysUnderAnOldKey) {
  const std::string build = ApprovedBuild();
  auto key = crypto::GenerateP256();
  ASSERT_TRUE(key.ok());
  const std::string csr = test::CsrPemFor(key->get(), {"web.example.com"});
  std::atomic<bool> stop{false};
  std::atomic<int> issued{0}, sealed{0};
  std::vector<std::string> failures;
  std::mutex failures_mu;
  auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(failures_mu);
    failures.push_back(what);
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&] {
      while (!stop.load() || issued.load() < 20) {
        auto c = manager_->IssueManual(Principal::System(), build, csr);
        if (!c.ok()) fail("issue: " + c.status().ToString());
        ++issued;
      }
    });
  }
  // A writer that seals (a registry secret, a zone CA key) all along: whatever side of a rotation
  // its transaction lands on, its value must end up under the last key.
  workers.emplace_back([&] {
    int i = 0;
    while (!stop.load() || sealed.load() < 5) {
      Status st = manager_->UpdateRegistry(Principal::System(), "hub", TokenSpec("tok-" + std::to_string(i))).status();
      if (!st.ok()) fail("registry: " + st.ToString());
      if (i % 4 == 0) {
        ZoneSpec z;
        z.name = "z" + std::to_string(i);
        if (auto r = manager_->CreateZone(Principal::System(), z); !r.ok()) fail("zone: " + r.status().ToString());
      }
      ++i;
      ++sealed;
    }
  });
  std::vector<std::string> keys = {old_key_};
  for (int round = 0; round < 3; ++round) {
    const int at = issued.load();
    // Bounded waits: each rotation starts with issuance flowing.
    for (int i = 0; i < 2000 && issued.load() < at + 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto r = manager_->RotateMasterKeyOnline(Principal::System());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    keys.push_back(FileOf(dir_ + "/master.key"));
    EXPECT_EQ((*r)["key_id"], MasterKeyIdHex(AsBytes(keys.back())));
  }
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures[0];
  EXPECT_GE(issued.load(), 20);
  EXPECT_GE(sealed.load(), 5);
  const std::string last = keys.back();
  keys.pop_back();
  ExpectWhollyUnder(last, keys);
  auto reg = manager_->GetRegistry(Principal::System(), "hub");
  ASSERT_TRUE(reg.ok());
}

TEST_F(MasterKeyOnline, AStaleMemberNeverSealsUnderTheOldKeyButKeepsIssuingUntilItAdoptsTheNewOne) {
  const std::string build = ApprovedBuild();
  auto key = crypto::GenerateP256();
  ASSERT_TRUE(key.ok());
  const std::string csr = test::CsrPemFor(key->get(), {"web.example.com"});
  // Member B: its own connection to the same store, the same (old) key, no data directory here.
  auto b_db = store::OpenDatabase(store_url_);
  ASSERT_TRUE(b_db.ok());
  auto b = NewManager(b_db->get(), crypto::SecretBytes(AsBytes(old_key_)), "");
  ASSERT_NE(b, nullptr);
  auto b_router = std::make_unique<http::Router>(BuildRouter(*b, nullptr));
  ASSERT_TRUE(b->IssueManual(Principal::System(), build, csr).ok());  // its zone signer is cached
  const std::string old_id = b->MasterKeyId();

  // Member A rotates online.
  json out = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "admin", 200);
  const std::string new_key = FileOf(dir_ + "/master.key");
  auto current = b->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_FALSE(*current);
  EXPECT_EQ(b->MasterKeyId(), old_id);
  Response ready = Call("GET", "/readyz", "", "", b_router.get());
  EXPECT_EQ(ready.status, 503u);
  EXPECT_NE(ready.body.find("master_key_rotated"), std::string::npos);
  EXPECT_EQ(Call("GET", "/readyz").status, 200u);

  // Issuance with its cached CA key goes on.
  auto cert = b->IssueManual(Principal::System(), build, csr);
  EXPECT_TRUE(cert.ok()) << cert.status().ToString();

  // Everything B would seal or unseal is refused with 503 master_key_rotated, never written.
  ZoneSpec z;
  z.name = "from-b";
  auto zone = b->CreateZone(Principal::System(), z);
  ASSERT_FALSE(zone.ok());
  EXPECT_EQ(zone.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(zone.status().reason(), kMasterKeyRotated);
  auto reg = b->UpdateRegistry(Principal::System(), "hub", TokenSpec("tok-b"));
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().reason(), kMasterKeyRotated);
  RegistrySpec other = TokenSpec("t");
  other.name = "other";
  other.url = "https://other.example";
  auto created = b->CreateRegistry(Principal::System(), other);
  EXPECT_EQ(created.status().reason(), kMasterKeyRotated);
  auto signing = b->RotateAppSigningKey(Principal::System(), "web");
  EXPECT_FALSE(signing.ok());
  auto activate = b->ActivateZoneCa(Principal::System(), "prod");  // (drops B's cached signer, as it always does)
  EXPECT_FALSE(activate.ok());
  EXPECT_EQ(b->RotateMasterKeyOnline(Principal::System()).status().reason(), kRotationUnavailable);
  ExpectWhollyUnder(new_key, {old_key_});

  // Adoption: a wrong key is refused; the right one makes B current, and B seals under it.
  Status wrong = b->AdoptMasterKey(crypto::RandomSecret(32));
  EXPECT_EQ(wrong.reason(), kMasterKeyMismatch);
  ASSERT_TRUE(b->AdoptMasterKey(crypto::SecretBytes(AsBytes(new_key))).ok());
  EXPECT_EQ(b->MasterKeyId(), out["key_id"]);
  current = b->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_TRUE(*current);
  EXPECT_EQ(Call("GET", "/readyz", "", "", b_router.get()).status, 200u);
  ASSERT_TRUE(b->CreateZone(Principal::System(), z).ok());
  ExpectWhollyUnder(new_key, {old_key_});
  int adopted = 0;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT detail FROM audit WHERE action = ?",
                                                                     {"master_key.adopt"}));
                   adopted = static_cast<int>(rows.size());
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(adopted, 1);
}

TEST_F(MasterKeyOnline, AdoptionRewritesTheMembersKeyFilesAsARotationDoes) {
  // Member B: its own data directory on the same store (config.json names the store's URL).
  const std::string member = tmp_.path() + "/member";
  std::filesystem::copy(dir_, member, std::filesystem::copy_options::recursive);
  for (const char* f : {"/vouch.db", "/vouch.db-wal", "/vouch.db-shm"}) std::filesystem::remove(member + f);
  auto b = NewManager(db_.get(), crypto::SecretBytes(AsBytes(old_key_)), member);
  ASSERT_NE(b, nullptr);
  json out = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "admin", 200);
  const std::string new_key = FileOf(dir_ + "/master.key");
  EXPECT_EQ(FileOf(member + "/master.key"), old_key_);
  // B cannot rotate: it is not under the store's key.
  auto refused = b->RotateMasterKeyOnline(Principal::System());
  EXPECT_EQ(refused.status().reason(), kMasterKeyRotated);
  EXPECT_EQ(FileOf(member + "/master.key"), old_key_);
  ASSERT_TRUE(b->AdoptMasterKey(crypto::SecretBytes(AsBytes(new_key))).ok());
  EXPECT_EQ(FileOf(member + "/master.key"), new_key);
  const std::string tls = FileOf(member + "/tls/server.key.sealed");
  EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(new_key), AsBytes(tls), AsBytes("vouch:service-tls-key")).ok());
  EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(old_key_), AsBytes(tls), AsBytes("vouch:service-tls-key")).ok());
  EXPECT_FALSE(FileExists(member + "/master.key.next"));
  EXPECT_FALSE(FileExists(member + "/tls/server.key.sealed.next"));
  // B's restart opens its data directory with the adopted key; adopting it again changes nothing.
  auto d = OpenDataDir(member);
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_TRUE(CheckMasterKeyOpensStore(*db_, d->master_key).ok());
  ASSERT_TRUE(b->AdoptMasterKey(crypto::SecretBytes(AsBytes(new_key))).ok());
  EXPECT_EQ(b->MasterKeyId(), out["key_id"]);
  // And B can now rotate for the cluster.
  auto again = b->RotateMasterKeyOnline(Principal::System());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["key_id"], MasterKeyIdHex(AsBytes(FileOf(member + "/master.key"))));
}

TEST_F(MasterKeyOnline, ASecondRotationWhileOneRunsIsRefusedWith409) {
  Response during;
  Status offline;
  hook_ = [&](std::string_view step) -> Status {
    if (step == "next_written") {
      // From other threads, as concurrent requests and a concurrent `vouchd master-key rotate` would.
      during = std::async(std::launch::async, [&] { return Call("POST", "/api/v1/master-key/rotate", "", "admin"); }).get();
      offline = std::async(std::launch::async, [&] { return RotateMasterKey(dir_, clock_).status(); }).get();
    }
    return Status::Ok();
  };
  json out = CallJson("POST", "/api/v1/master-key/rotate", nullptr, "admin", 200);
  EXPECT_EQ(during.status, 409u) << during.body;
  EXPECT_NE(during.body.find("rotation_in_progress"), std::string::npos);
  EXPECT_EQ(offline.reason(), kRotationInProgress);
  ExpectWhollyUnder(FileOf(dir_ + "/master.key"), {old_key_});
}

TEST_F(MasterKeyOnline, InterruptedAtAnyStepRestartsWhollyUnderTheOldOrTheNewKey) {
  for (const std::string crash_at : {"next_written", "in_transaction", "committed", "tls_renamed"}) {
    SCOPED_TRACE(crash_at);
    const std::string before = FileOf(dir_ + "/master.key");
    std::string next;
    hook_ = [&](std::string_view step) -> Status {
      if (step == "next_written") next = FileOf(dir_ + "/master.key.next");
      return step == crash_at ? Aborted("injected crash at " + std::string(step)) : Status::Ok();
    };
    auto m = NewManager(db_.get(), crypto::SecretBytes(AsBytes(before)), dir_);
    ASSERT_NE(m, nullptr);
    auto r = m->RotateMasterKeyOnline(Principal::System());
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(next.size(), 32u);
    EXPECT_TRUE(FileExists(dir_ + "/master.key.next"));  // as a crash leaves it
    m.reset();
    hook_ = nullptr;
    // The restart: OpenDataDir finishes or rolls back.
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok()) << d.status().message();
    const bool committed = crash_at == "committed" || crash_at == "tls_renamed";
    const std::string now_key = FileOf(dir_ + "/master.key");
    EXPECT_EQ(now_key, committed ? next : before);
    ExpectWhollyUnder(now_key, {committed ? before : next});
    EXPECT_FALSE(FileExists(dir_ + "/master.key.next"));
    EXPECT_FALSE(FileExists(dir_ + "/tls/server.key.sealed.next"));
    ASSERT_TRUE(CheckMasterKeyOpensStore(*db_, d->master_key).ok());
  }
  // And an online rotation after all that completes.
  auto m = NewManager(db_.get(), crypto::SecretBytes(AsBytes(FileOf(dir_ + "/master.key"))), dir_);
  const std::string before = FileOf(dir_ + "/master.key");
  ASSERT_TRUE(m->RotateMasterKeyOnline(Principal::System()).ok());
  ExpectWhollyUnder(FileOf(dir_ + "/master.key"), {before, old_key_});
}

}  // namespace
}  // namespace vouch::api
