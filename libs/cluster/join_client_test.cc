#include <gtest/gtest.h>

#include "base/encoding.h"
#include "cluster/join_client.h"
#include "cluster/reasons.h"
#include "crypto/random.h"
#include "testing/temp_dir.h"

namespace vouch::cluster {
namespace {

// RunJoinClient against an in-process member (the same calls manager_cluster.cc makes).
class JoinClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sim = attest::SimVendor::Create(tmp_.path() + "/sim");
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    master_ = crypto::RandomSecret(32);
    approved_.fill(0xa1);
    policy_.measurements = {approved_};
    policy_.allow_sim = true;
    policy_.collateral_dir = tmp_.path() + "/sim";
    auto verifier = MakeJoinVerifier(policy_);
    ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
    verifier_ = std::move(*verifier);
  }
  static TimePoint Now() { return std::chrono::system_clock::now(); }

  // The member: a nonce, then a grant wrapped to the joiner, with the member's answer fields.
  Result<nlohmann::json> Member(const std::string& path, const nlohmann::json& body) {
    calls_.push_back(path);
    if (path == "/api/v1/cluster/nonce") return nlohmann::json{{"nonce", MakeNonce(master_, Now())}};
    VOUCH_ASSIGN_OR_RETURN(JoinRequest req, JoinRequest::FromJson(body));
    VOUCH_ASSIGN_OR_RETURN(JoinGrant g, GrantJoin(req, policy_, *verifier_, master_, master_.span(), Now()));
    return nlohmann::json{{"peer_public_key", Base64Encode(g.peer_public_key)},
                          {"wrapped_master_key", Base64Encode(g.wrapped)},
                          {"tls_chain_pem", "CHAIN"},
                          {"tls_key_sealed", Base64Encode(std::vector<uint8_t>{1, 2, 3})},
                          {"service_ca_pem", "CA"},
                          {"insecure_sim", true}};
  }
  JoinTransport Transport() {
    return [this](const std::string& p, const nlohmann::json& b) { return Member(p, b); };
  }
  EvidenceSource Source(const Measurement& m) { return EvidenceSource{sim_.get(), m}; }

  test::TempDir tmp_{"join_client"};
  std::unique_ptr<attest::SimVendor> sim_;
  crypto::SecretBytes master_;
  Measurement approved_{};
  JoinPolicy policy_;
  std::unique_ptr<attest::DcapVerifier> verifier_;
  std::vector<std::string> calls_;
};

TEST_F(JoinClientTest, AnApprovedBuildReceivesTheMasterKeyAndTheMembersIdentity) {
  auto r = RunJoinClient(Transport(), Source(approved_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(HexEncode(r->master_key.span()), HexEncode(master_.span()));
  EXPECT_EQ(r->tls_chain_pem, "CHAIN");
  EXPECT_EQ(r->service_ca_pem, "CA");
  EXPECT_EQ(r->tls_key_sealed, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_TRUE(r->insecure_sim);
  EXPECT_EQ(calls_, (std::vector<std::string>{"/api/v1/cluster/nonce", "/api/v1/cluster/join"}));
}

TEST_F(JoinClientTest, AnotherBuildIsRefusedWithTheMembersReason) {
  Measurement other{};
  other.fill(0xb2);
  auto r = RunJoinClient(Transport(), Source(other));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "measurement_not_allowed");
  EXPECT_NE(r.status().message().find("refused the join"), std::string::npos) << r.status().message();
}

TEST_F(JoinClientTest, AMemberThatRefusesANonceStopsTheAttempt) {
  JoinTransport closed = [this](const std::string& p, const nlohmann::json&) -> Result<nlohmann::json> {
    calls_.push_back(p);
    return NotFound("this instance does not accept cluster joins", "cluster_join_disabled");
  };
  auto r = RunJoinClient(closed, Source(approved_));
  EXPECT_EQ(r.status().reason(), "cluster_join_disabled");
  EXPECT_EQ(calls_.size(), 1u);  // no evidence was sent
}

TEST_F(JoinClientTest, MalformedAnswersAreBadPeerResponsesNeverAKey) {
  for (const char* field : {"peer_public_key", "wrapped_master_key", "tls_key_sealed"}) {
    for (const nlohmann::json& bad : {nlohmann::json(nullptr), nlohmann::json(42), nlohmann::json("%%%not base64")}) {
      JoinTransport t = [&](const std::string& p, const nlohmann::json& b) -> Result<nlohmann::json> {
        VOUCH_ASSIGN_OR_RETURN(nlohmann::json answer, Member(p, b));
        if (p == "/api/v1/cluster/join") answer[field] = bad;
        return answer;
      };
      auto r = RunJoinClient(t, Source(approved_));
      ASSERT_FALSE(r.ok()) << field;
      EXPECT_EQ(r.status().reason(), kBadPeerResponse) << field << " " << bad.dump();
    }
  }
  JoinTransport no_nonce = [](const std::string&, const nlohmann::json&) -> Result<nlohmann::json> {
    return nlohmann::json::array();
  };
  EXPECT_EQ(RunJoinClient(no_nonce, Source(approved_)).status().reason(), kBadPeerResponse);
  // A wrapped key made for another joiner (replayed) does not open.
  std::optional<nlohmann::json> first;
  JoinTransport replay = [&](const std::string& p, const nlohmann::json& b) -> Result<nlohmann::json> {
    VOUCH_ASSIGN_OR_RETURN(nlohmann::json answer, Member(p, b));
    if (p != "/api/v1/cluster/join") return answer;
    if (!first) first = answer;
    return *first;
  };
  ASSERT_TRUE(RunJoinClient(replay, Source(approved_)).ok());
  EXPECT_EQ(RunJoinClient(replay, Source(approved_)).status().reason(), kUnwrapFailed);
}

}  // namespace
}  // namespace vouch::cluster
