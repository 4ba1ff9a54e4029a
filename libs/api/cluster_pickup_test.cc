// A member picking up a master key another member rotated, through the join protocol (issue 18;
// docs/cluster.md "Picking up a rotated master key"): the granting side (manager_cluster.cc) hands
// out only the key the store is under and the TLS key sealed under it; the joiner's side is
// libs/cluster's RunJoinClient, here over an in-process transport; the key is taken by
// AdoptMasterKey. vouchd's watcher and HTTPS are covered by e2e.master_key_ha. Also on PostgreSQL
// as pg.ClusterPickup.*.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "api/bootstrap.h"
#include "api/manager.h"
#include "api/master_key.h"
#include "api/test_util.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "cluster/join.h"
#include "cluster/join_client.h"
#include "crypto/aead.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

class ClusterPickup : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions o;
    o.data_dir = tmp_.path() + "/a";
    o.admin_user = "root";
    o.admin_password = "correct horse battery staple";
    if (!UseTestStore(&o.store_url)) return;
    auto r = InitDataDir(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status().message();
    // Member B: the data directory a join writes (the same key and sealed TLS key).
    std::filesystem::copy(o.data_dir, tmp_.path() + "/b", std::filesystem::copy_options::recursive);
    auto d = OpenDataDir(o.data_dir);
    ASSERT_TRUE(d.ok()) << d.status().message();
    store_url_ = d->store_url;
    tls_chain_ = d->tls_chain_pem;
    a_ = Member("a");
    b_ = Member("b");
    ASSERT_TRUE(a_ && b_);
    auto sim = attest::SimVendor::Create(tmp_.path() + "/sim");
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    auto self = cluster::SelfMeasurement();
    ASSERT_TRUE(self.ok());
    self_ = *self;
    ASSERT_TRUE(EnableJoin(*a_.manager, "a").ok());
  }

  struct Node {
    std::unique_ptr<store::Database> db;
    std::unique_ptr<Manager> manager;
    Manager* operator->() const { return manager.get(); }
    explicit operator bool() const { return manager != nullptr; }
  };
  Node Member(const std::string& name) {
    Node n;
    auto db = store::OpenDatabase(store_url_);
    EXPECT_TRUE(db.ok()) << db.status().message();
    if (!db.ok()) return n;
    n.db = std::move(*db);
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    options.data_dir = Dir(name);
    auto m = Manager::Create(n.db.get(), crypto::SecretBytes(AsBytes(KeyOf(name))), &clock_, options);
    EXPECT_TRUE(m.ok()) << m.status().message();
    if (m.ok()) n.manager = std::move(*m);
    return n;
  }
  // As vouchd serve --allow-cluster-join: its own measurement, sim evidence of the test's vendor.
  Status EnableJoin(Manager& m, const std::string& name) {
    Manager::ClusterJoinConfig c;
    c.policy.measurements = {self_};
    c.policy.allow_sim = true;
    c.policy.collateral_dir = tmp_.path() + "/sim";
    c.tls_chain_pem = tls_chain_;
    std::string sealed = KeyOf(name, "tls/server.key.sealed");
    c.tls_key_sealed.assign(sealed.begin(), sealed.end());
    return m.EnableClusterJoin(std::move(c));
  }
  std::string Dir(const std::string& name) const { return tmp_.path() + "/" + name; }
  std::string KeyOf(const std::string& name, const std::string& file = "master.key") const {
    auto k = ReadWholeFile(Dir(name) + "/" + file, 1 << 20);
    EXPECT_TRUE(k.ok()) << name << "/" << file;
    return k.ok() ? *k : std::string();
  }
  // The joiner's side against member `m` (what vouchd's pickup sends over HTTPS).
  Result<cluster::JoinResult> JoinThrough(Manager& m, const cluster::Measurement& measurement) {
    cluster::JoinTransport post = [&m](const std::string& path, const nlohmann::json& body) -> Result<nlohmann::json> {
      if (path == "/api/v1/cluster/nonce") return m.ClusterNonce();
      return m.ClusterJoin(body, "127.0.0.9");
    };
    return cluster::RunJoinClient(post, cluster::EvidenceSource{sim_.get(), measurement});
  }
  int64_t Audited(const std::string& action, const std::string& outcome) {
    int64_t n = -1;
    EXPECT_TRUE(a_.db->Read([&](store::Transaction& tx) -> Status {
                      VOUCH_ASSIGN_OR_RETURN(auto row, tx.QueryOne("SELECT COUNT(*) FROM audit WHERE action = ? AND outcome = ?",
                                                                   {action, outcome}, "audit"));
                      n = row.Int(0);
                      return Status::Ok();
                    }).ok());
    return n;
  }

  test::TempDir tmp_{"cluster_pickup"};
  FixedClock clock_{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  std::string store_url_, tls_chain_;
  Node a_, b_;
  std::unique_ptr<attest::SimVendor> sim_;
  cluster::Measurement self_{};
};

TEST_F(ClusterPickup, AMemberLeftBehindObtainsTheRotatedKeyByAttestationAndAdoptsIt) {
  if (!a_) return;  // skipped (no PostgreSQL)
  ASSERT_TRUE(a_->RotateMasterKeyOnline(Principal::System()).ok());
  ASSERT_NE(KeyOf("a"), KeyOf("b"));
  auto current = b_->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_FALSE(*current);

  auto joined = JoinThrough(*a_.manager, self_);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  // The key the store is under, and the service TLS key sealed under that same key (A's file as
  // the rotation rewrote it, not the copy read when joining was enabled).
  EXPECT_EQ(std::string(joined->master_key.view()), KeyOf("a"));
  EXPECT_TRUE(crypto::Aes256GcmOpen(joined->master_key.span(), joined->tls_key_sealed, AsBytes("vouch:service-tls-key")).ok());
  EXPECT_EQ(Audited("cluster.join", "ok"), 1);

  ASSERT_TRUE(b_->AdoptMasterKey(joined->master_key).ok());
  current = b_->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_TRUE(*current);
  EXPECT_EQ(KeyOf("b"), KeyOf("a"));
  EXPECT_EQ(b_->MasterKeyId(), a_->MasterKeyId());
  // B seals again, under the new key: a zone it creates opens on A.
  ZoneSpec spec;
  spec.name = "made-on-b";
  ASSERT_TRUE(b_->CreateZone(Principal::System(), spec).ok());
  EXPECT_EQ(Audited("master_key.adopt", "ok"), 1);
}

TEST_F(ClusterPickup, AMemberLeftBehindHandsOutNoKey) {
  if (!a_) return;
  ASSERT_TRUE(EnableJoin(*b_.manager, "b").ok());
  ASSERT_TRUE(a_->RotateMasterKeyOnline(Principal::System()).ok());
  // B holds only the old key: it answers 503 master_key_rotated instead of a key that opens nothing.
  auto nonce = b_->ClusterNonce();
  EXPECT_EQ(nonce.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(nonce.status().reason(), kMasterKeyRotated);
  auto joined = JoinThrough(*b_.manager, self_);
  EXPECT_EQ(joined.status().reason(), kMasterKeyRotated);
  // Even with a nonce made by A (any member checks any nonce), B's join grants nothing.
  auto a_nonce = a_->ClusterNonce();
  ASSERT_TRUE(a_nonce.ok());
  auto joiner = cluster::Joiner::Create();
  ASSERT_TRUE(joiner.ok());
  auto req = (*joiner)->SimRequest(*sim_, self_, (*a_nonce)["nonce"].get<std::string>());
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(b_->ClusterJoin(req->ToJson(), "127.0.0.9").status().reason(), kMasterKeyRotated);
  // And a key B would offer is refused by AdoptMasterKey anyway: the old key opens nothing.
  EXPECT_EQ(a_->AdoptMasterKey(crypto::SecretBytes(AsBytes(KeyOf("b")))).reason(), kMasterKeyMismatch);
}

TEST_F(ClusterPickup, AnotherBuildGetsNothingAndStaysBehind) {
  if (!a_) return;
  ASSERT_TRUE(a_->RotateMasterKeyOnline(Principal::System()).ok());
  cluster::Measurement other = self_;
  other[0] ^= 1;
  auto joined = JoinThrough(*a_.manager, other);
  EXPECT_EQ(joined.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(joined.status().reason(), "measurement_not_allowed");
  EXPECT_EQ(Audited("cluster.join", "denied"), 1);
  auto current = b_->MasterKeyCurrent();
  ASSERT_TRUE(current.ok());
  EXPECT_FALSE(*current);
  ZoneSpec spec;
  spec.name = "made-on-stale-b";
  EXPECT_EQ(b_->CreateZone(Principal::System(), spec).status().reason(), kMasterKeyRotated);
}

}  // namespace
}  // namespace vouch::api
