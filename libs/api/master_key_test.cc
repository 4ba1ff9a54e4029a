#include "api/master_key.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "api/bootstrap.h"
#include "api/heartbeat_keys.h"
#include "api/manager.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "pgtest/test_postgres.h"
#include "store/audit.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

std::string KeyOf(const std::string& dir) {
  auto k = ReadWholeFile(dir + "/master.key");
  EXPECT_TRUE(k.ok());
  return k.ok() ? *k : std::string();
}

class MasterKeyRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions o;
    o.data_dir = tmp_.File("data");
    o.admin_user = "admin";
    o.admin_password = "correct horse battery";
    // The same tests on PostgreSQL as "pg.MasterKeyRotation.*" (libs/api/CMakeLists.txt).
    if (const char* store = std::getenv("VOUCH_TEST_STORE"); store && std::string(store) == "postgres") {
      auto pg = pgtest::FreshTestDatabase();
      if (!pg.ok() && pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << pg.status().ToString();
      if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server: " << pg.status().ToString();
      o.store_url = *pg;
    }
    auto r = InitDataDir(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    dir_ = o.data_dir;
    old_key_ = KeyOf(dir_);
    // Every kind of sealed value: three zone CA keys and the node CA key (made on first use).
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok());
    auto db = store::OpenDatabase(d->store_url);
    ASSERT_TRUE(db.ok());
    auto m = Manager::Create(db->get(), std::move(d->master_key), &clock_);
    ASSERT_TRUE(m.ok());
    for (const char* name : {"prod", "staging"}) {
      ZoneSpec z;
      z.name = name;
      ASSERT_TRUE((*m)->CreateZone(Principal::System(), z).ok());
    }
    ASSERT_TRUE((*m)->NodeCaPem().ok());
  }

  // Opens every sealed value through the code that uses it, with the key now in master.key:
  // the TLS key (OpenDataDir), the node CA key (NodeCaPem from a fresh Manager) and every zone
  // CA key (a CRL signed a day later, when the stored one is stale).
  void ExpectEverythingOpens() {
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok()) << d.status().message();
    auto db = store::OpenDatabase(d->store_url);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(CheckMasterKeyOpensStore(**db, d->master_key).ok());
    FixedClock later(clock_.Now() + std::chrono::hours(24 * 6));
    auto m = Manager::Create(db->get(), std::move(d->master_key), &later);
    ASSERT_TRUE(m.ok());
    auto node_ca = (*m)->NodeCaPem();
    EXPECT_TRUE(node_ca.ok()) << node_ca.status().message();
    for (const char* zone : {"default", "prod", "staging"}) {
      auto crl = (*m)->ZoneCrl(zone);
      EXPECT_TRUE(crl.ok()) << zone << ": " << crl.status().message();
    }
    EXPECT_FALSE(FileExists(dir_ + "/master.key.next"));
    EXPECT_FALSE(FileExists(dir_ + "/tls/server.key.sealed.next"));
  }

  // Every sealed column opened directly: all under `key`, none under `other`.
  void ExpectWhollyUnder(const std::string& key, const std::string& other) {
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok());
    auto db = store::OpenDatabase(d->store_url);
    ASSERT_TRUE(db.ok());
    int opened = 0;
    ASSERT_TRUE((*db)->Read([&](store::Transaction& tx) -> Status {
                     auto zones = tx.Query("SELECT id, ca_key_sealed FROM zones");
                     EXPECT_TRUE(zones.ok());
                     for (const auto& z : *zones) {
                       auto aad = "vouch:zone-ca-key:" + z.Str(0);
                       EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(key), z.Bytes(1), AsBytes(aad)).ok());
                       EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(other), z.Bytes(1), AsBytes(aad)).ok());
                       ++opened;
                     }
                     auto node = tx.QueryOne("SELECT value FROM settings WHERE key = ?", {"node_ca_key_sealed"}, "s");
                     EXPECT_TRUE(node.ok());
                     auto sealed = Base64Decode(node->Str(0));
                     EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(key), *sealed, AsBytes("vouch:node-ca-key")).ok());
                     EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(other), *sealed, AsBytes("vouch:node-ca-key")).ok());
                     ++opened;
                     return Status::Ok();
                   }).ok());
    EXPECT_EQ(opened, 4);
    auto tls = ReadWholeFile(dir_ + "/tls/server.key.sealed");
    ASSERT_TRUE(tls.ok());
    EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(key), AsBytes(*tls), AsBytes("vouch:service-tls-key")).ok());
    EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(other), AsBytes(*tls), AsBytes("vouch:service-tls-key")).ok());
  }

  test::TempDir tmp_{"rotate"};
  FixedClock clock_{std::chrono::system_clock::now()};
  std::string dir_;
  std::string old_key_;
};

TEST_F(MasterKeyRotation, EverySealedValueOpensWithTheNewKeyOnly) {
  auto r = RotateMasterKey(dir_, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->zone_ca_keys, 3);
  EXPECT_TRUE(r->node_ca_key);
  EXPECT_TRUE(r->tls_key);
  const std::string new_key = KeyOf(dir_);
  ASSERT_EQ(new_key.size(), 32u);
  EXPECT_NE(new_key, old_key_);
  ExpectWhollyUnder(new_key, old_key_);
  ExpectEverythingOpens();
  // Audited, and the chain still verifies.
  auto d = OpenDataDir(dir_);
  ASSERT_TRUE(d.ok());
  auto db = store::OpenDatabase(d->store_url);
  ASSERT_TRUE(db.ok());
  auto v = store::VerifyAuditChain(**db);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  int entries = 0;
  ASSERT_TRUE((*db)->Read([&](store::Transaction& tx) -> Status {
                   auto rows = tx.Query("SELECT actor FROM audit WHERE action = ?", {"master_key.rotate"});
                   EXPECT_TRUE(rows.ok());
                   entries = static_cast<int>(rows->size());
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(entries, 1);
  // Twice in a row works (the canary of the first rotation is rotated too).
  ASSERT_TRUE(RotateMasterKey(dir_, clock_).ok());
  ExpectWhollyUnder(KeyOf(dir_), new_key);
}

TEST_F(MasterKeyRotation, ZoneHeartbeatKeysAreResealedAndStillOpen) {
  // A zone's heartbeat key as the Manager seals it on first need (manager_heartbeats.cc): PKCS#8
  // DER under the master key, AAD naming table, column and zone (api/heartbeat_keys.h).
  auto key = crypto::GenerateP256();
  ASSERT_TRUE(key.ok());
  auto der = crypto::PrivateKeyToDer(key->get());
  ASSERT_TRUE(der.ok());
  const std::string pub = crypto::PublicKeyToPem(key->get()).value();
  std::string zone_id;
  {
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok());
    auto db = store::OpenDatabase(d->store_url);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Write([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Row z, tx.QueryOne("SELECT id FROM zones WHERE name = ?", {"prod"}, "zone"));
                     zone_id = z.Str(0);
                     VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(d->master_key.span(), der->span(),
                                                                               AsBytes(ZoneHeartbeatKeyAad(zone_id))));
                     return tx.Exec("UPDATE zones SET heartbeat_key_sealed = ?, heartbeat_pub_pem = ? WHERE id = ?",
                                    {store::Blob(sealed), pub, zone_id})
                         .status();
                   }).ok());
  }
  auto r = RotateMasterKey(dir_, clock_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string new_key = KeyOf(dir_);
  ExpectWhollyUnder(new_key, old_key_);
  ExpectEverythingOpens();
  auto d = OpenDataDir(dir_);
  ASSERT_TRUE(d.ok());
  auto db = store::OpenDatabase(d->store_url);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Row z, tx.QueryOne("SELECT heartbeat_key_sealed, heartbeat_pub_pem FROM zones "
                                                                    "WHERE id = ?", {zone_id}, "zone"));
                   const std::string aad = ZoneHeartbeatKeyAad(zone_id);
                   EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(old_key_), z.Bytes(0), AsBytes(aad)).ok());
                   auto opened = crypto::Aes256GcmOpen(AsBytes(new_key), z.Bytes(0), AsBytes(aad));
                   EXPECT_TRUE(opened.ok());
                   if (opened.ok()) {
                     EXPECT_EQ(HexEncode(opened->span()), HexEncode(der->span()));  // the same key
                   }
                   EXPECT_EQ(z.Str(1), pub);
                   return Status::Ok();
                 }).ok());
  // A heartbeat key that does not open stops a rotation before any change.
  ASSERT_TRUE((*db)->Write([&](store::Transaction& tx) -> Status {
                   return tx.Exec("UPDATE zones SET heartbeat_key_sealed = ? WHERE id = ?",
                                  {store::Blob(std::vector<uint8_t>(60, 7)), zone_id})
                       .status();
                 }).ok());
  auto refused = RotateMasterKey(dir_, clock_);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().reason(), kSealedValueUnreadable);
  EXPECT_EQ(KeyOf(dir_), new_key);
}

TEST_F(MasterKeyRotation, InterruptedAtAnyStepLeavesTheOldOrTheNewKeyNeverAMix) {
  const std::string steps[] = {"next_written", "in_transaction", "committed", "tls_renamed"};
  for (const std::string& crash_at : steps) {
    SCOPED_TRACE(crash_at);
    const std::string before = KeyOf(dir_);
    std::string next;
    RotateOptions o;
    o.step_hook = [&](std::string_view step) -> Status {
      if (step == "next_written") {
        auto n = ReadWholeFile(dir_ + "/master.key.next");
        EXPECT_TRUE(n.ok());
        if (n.ok()) next = *n;
      }
      return step == crash_at ? Aborted("injected crash at " + std::string(step)) : Status::Ok();
    };
    auto r = RotateMasterKey(dir_, clock_, o);
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(next.size(), 32u);
    EXPECT_TRUE(FileExists(dir_ + "/master.key.next"));  // as a crash leaves it
    // The restart: OpenDataDir finishes or rolls back.
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok()) << d.status().message();
    const bool committed = crash_at == "committed" || crash_at == "tls_renamed";
    const std::string now_key = KeyOf(dir_);
    EXPECT_EQ(now_key, committed ? next : before);
    ExpectWhollyUnder(now_key, committed ? before : next);
    ExpectEverythingOpens();
  }
  // And a rotation after all that completes.
  const std::string before = KeyOf(dir_);
  ASSERT_TRUE(RotateMasterKey(dir_, clock_).ok());
  ExpectWhollyUnder(KeyOf(dir_), before);
}

TEST_F(MasterKeyRotation, AMemberWithTheOldKeyIsToldToRejoin) {
  ASSERT_TRUE(RotateMasterKey(dir_, clock_).ok());
  auto d = OpenDataDir(dir_);
  ASSERT_TRUE(d.ok());
  auto db = store::OpenDatabase(d->store_url);
  ASSERT_TRUE(db.ok());
  Status st = CheckMasterKeyOpensStore(**db, crypto::SecretBytes(old_key_));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.reason(), kMasterKeyRotated);
  EXPECT_NE(st.message().find("re-join"), std::string::npos);
}

TEST_F(MasterKeyRotation, AValueThatDoesNotOpenStopsTheRotationBeforeAnyChange) {
  {
    auto d = OpenDataDir(dir_);
    ASSERT_TRUE(d.ok());
    auto db = store::OpenDatabase(d->store_url);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Write([&](store::Transaction& tx) -> Status {
                     return tx.Exec("UPDATE zones SET ca_key_sealed = ? WHERE name = ?",
                                    {store::Blob(60, 7), std::string("staging")})
                         .status();
                   }).ok());
  }
  auto r = RotateMasterKey(dir_, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kSealedValueUnreadable);
  EXPECT_EQ(KeyOf(dir_), old_key_);
  EXPECT_FALSE(FileExists(dir_ + "/master.key.next"));
}

}  // namespace
}  // namespace vouch::api

namespace vouch::api {
namespace {

TEST_F(MasterKeyRotation, AStartOrASecondRotationDuringARotationIsRefusedNotRacing) {
  // While the rotation is between its files and its commit, another process (here: another
  // call) must neither roll it back (a vouchd starting) nor rotate over it.
  Status during_open, during_rotate;
  RotateOptions o;
  o.step_hook = [&](std::string_view step) -> Status {
    if (step == "next_written") {
      during_open = OpenDataDir(dir_).status();
      during_rotate = RotateMasterKey(dir_, clock_).status();
    }
    return Status::Ok();
  };
  auto r = RotateMasterKey(dir_, clock_, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(during_open.reason(), kRotationInProgress);
  EXPECT_EQ(during_rotate.reason(), kRotationInProgress);
  ExpectWhollyUnder(KeyOf(dir_), old_key_);
  ExpectEverythingOpens();
}

}  // namespace
}  // namespace vouch::api
