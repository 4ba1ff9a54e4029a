#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/encoding.h"
#include "cluster/join.h"
#include "crypto/random.h"
#include "testing/temp_dir.h"

namespace vouch::cluster {
namespace {

class JoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sim = attest::SimVendor::Create(dir_ + "/sim");
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    master_ = crypto::RandomSecret(32);
    approved_.fill(0xa1);
    policy_.measurements = {approved_};
    policy_.allow_sim = true;
    policy_.collateral_dir = dir_ + "/sim";
  }

  Result<JoinGrant> Grant(const JoinRequest& req) {
    VOUCH_ASSIGN_OR_RETURN(auto verifier, MakeJoinVerifier(policy_));
    return GrantJoin(req, policy_, *verifier, master_, master_.span(), Now());
  }
  static TimePoint Now() { return std::chrono::system_clock::now(); }

  test::TempDir tmp_{"cluster"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<attest::SimVendor> sim_;
  crypto::SecretBytes master_;
  Measurement approved_{};
  JoinPolicy policy_;
};

TEST_F(JoinTest, ApprovedMeasurementGetsTheMasterKeyAndOnlyItsKeyOpensIt) {
  auto joiner = Joiner::Create();
  ASSERT_TRUE(joiner.ok());
  auto req = (*joiner)->SimRequest(*sim_, approved_, MakeNonce(master_, Now()));
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  // The request survives its JSON encoding.
  auto decoded = JoinRequest::FromJson(nlohmann::json::parse(req->ToJson().dump()));
  ASSERT_TRUE(decoded.ok());
  auto grant = Grant(*decoded);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  EXPECT_EQ(grant->verdict["insecure_sim"], true);
  auto key = (*joiner)->Open(*req, grant->peer_public_key, grant->wrapped);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(HexEncode(key->span()), HexEncode(master_.span()));

  // Another key (an eavesdropper that saw the request and the grant) cannot open it.
  auto other = Joiner::Create();
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->Open(*req, grant->peer_public_key, grant->wrapped).ok());
  // Nor does a flipped bit.
  auto tampered = grant->wrapped;
  tampered[20] ^= 1;
  EXPECT_EQ((*joiner)->Open(*req, grant->peer_public_key, tampered).status().reason(), "unwrap_failed");
}

TEST_F(JoinTest, WrongMeasurementGetsNothing) {
  auto joiner = Joiner::Create();
  Measurement other{};
  other.fill(0xb2);
  auto req = (*joiner)->SimRequest(*sim_, other, MakeNonce(master_, Now()));
  ASSERT_TRUE(req.ok());
  auto grant = Grant(*req);
  EXPECT_EQ(grant.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(grant.status().reason(), "measurement_not_allowed");
}

TEST_F(JoinTest, SimEvidenceWhereSimIsNotAllowedGetsNothing) {
  policy_.allow_sim = false;
  auto joiner = Joiner::Create();
  auto req = (*joiner)->SimRequest(*sim_, approved_, MakeNonce(master_, Now()));
  ASSERT_TRUE(req.ok());
  auto grant = Grant(*req);
  EXPECT_EQ(grant.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(grant.status().reason(), "sim_not_allowed");
}

TEST_F(JoinTest, EvidenceFromAnotherVendorGetsNothing) {
  auto foreign = attest::SimVendor::Create(dir_ + "/foreign");
  ASSERT_TRUE(foreign.ok());
  auto joiner = Joiner::Create();
  auto req = (*joiner)->SimRequest(**foreign, approved_, MakeNonce(master_, Now()));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(Grant(*req).status().reason(), "evidence_not_genuine");
}

TEST_F(JoinTest, OutOfDateTcbGetsNothing) {
  attest::SimVendorOptions o;
  o.tcb = attest::SimTcb::kOutOfDate;
  auto old = attest::SimVendor::Create(dir_ + "/old", o);
  ASSERT_TRUE(old.ok());
  policy_.collateral_dir = dir_ + "/old";
  auto joiner = Joiner::Create();
  auto req = (*joiner)->SimRequest(**old, approved_, MakeNonce(master_, Now()));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(Grant(*req).status().reason(), "tcb_too_old");
}

TEST_F(JoinTest, EvidenceBoundToAnotherKeyOrNonceGetsNothing) {
  auto joiner = Joiner::Create();
  auto mallory = Joiner::Create();
  std::string nonce = MakeNonce(master_, Now());
  auto req = (*joiner)->SimRequest(*sim_, approved_, nonce);
  ASSERT_TRUE(req.ok());
  // Mallory replays the joiner's evidence with her own key: the report data does not match.
  JoinRequest stolen = *req;
  stolen.public_key = (*mallory)->public_key();
  EXPECT_EQ(Grant(stolen).status().reason(), "report_data_mismatch");
  // ... or with another valid nonce.
  JoinRequest renonced = *req;
  renonced.nonce = MakeNonce(master_, Now() - std::chrono::seconds(1));
  EXPECT_EQ(Grant(renonced).status().reason(), "report_data_mismatch");
}

TEST_F(JoinTest, NoncesExpireAndAreBoundToTheCluster) {
  std::string nonce = MakeNonce(master_, Now());
  EXPECT_TRUE(CheckNonce(master_, nonce, Now()).ok());
  EXPECT_EQ(CheckNonce(master_, nonce, Now() + std::chrono::seconds(301)).reason(), "invalid_nonce");
  auto other_key = crypto::RandomSecret(32);
  EXPECT_EQ(CheckNonce(other_key, nonce, Now()).reason(), "invalid_nonce");
  for (std::string bad : {"", ".", "x.y", "123", "123.", "99999999999999999999999.00"}) {
    EXPECT_FALSE(CheckNonce(master_, bad, Now()).ok()) << bad;
  }
  auto joiner = Joiner::Create();
  auto req = (*joiner)->SimRequest(*sim_, approved_, MakeNonce(other_key, Now()));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(Grant(*req).status().reason(), "invalid_nonce");
}

TEST(JoinRequest, RejectsMalformedJson) {
  using nlohmann::json;
  EXPECT_FALSE(JoinRequest::FromJson(json::array()).ok());
  EXPECT_FALSE(JoinRequest::FromJson(json{{"evidence", 1}}).ok());
  EXPECT_FALSE(JoinRequest::FromJson(json{{"evidence", "AAAA"}, {"public_key", "AAAA"}, {"nonce", "1.2"}}).ok());
  EXPECT_FALSE(JoinRequest::FromJson(json{{"evidence", "%%%"}, {"public_key", "AAAA"}, {"nonce", "1.2"}}).ok());
}

TEST(Measurement, SelfMeasurementIsTheHashOfTheExecutable) {
  auto self = SelfMeasurement();
  ASSERT_TRUE(self.ok());
  auto file = FileMeasurement(std::filesystem::read_symlink("/proc/self/exe").string());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*self, *file);
}

}  // namespace
}  // namespace vouch::cluster
