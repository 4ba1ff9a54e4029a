#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/agent.h"
#include "agent/disk_queue.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "testing/csr.h"
#include "testing/temp_dir.h"

namespace vouch::agent {
namespace {

TEST(DiskQueue, KeepsOrderAcrossReopenAndRefusesPastItsBound) {
  test::TempDir tmp("agent-queue");
  const std::string& dir = tmp.path();
  {
    auto q = DiskQueue::Open(dir, 3);
    ASSERT_TRUE(q.ok());
    EXPECT_TRUE((*q)->Push("a").ok());
    EXPECT_TRUE((*q)->Push("b").ok());
    EXPECT_TRUE((*q)->Push("c").ok());
    Status full = (*q)->Push("d");
    EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(full.reason(), "queue_full");
  }
  // A leftover temporary file (an interrupted write) is ignored and removed.
  { std::ofstream(dir + "/.tmp-123") << "partial"; }
  auto q = DiskQueue::Open(dir, 3);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)->size(), 3u);
  auto items = (*q)->Peek(2);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].second, "a");
  EXPECT_EQ((*items)[1].second, "b");
  ASSERT_TRUE((*q)->PopThrough((*items)[1].first).ok());
  EXPECT_TRUE((*q)->Push("d").ok());
  items = (*q)->Peek(10);
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].second, "c");
  EXPECT_EQ((*items)[1].second, "d");
  EXPECT_FALSE(std::filesystem::exists(dir + "/.tmp-123"));
}

class LocalReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = attest::SimVendor::Create(dir_ + "/sim");
    ASSERT_TRUE(v.ok());
    sim_ = std::move(*v);
    key_ = std::move(*crypto::GenerateP256());
    csr_ = test::CsrPemFor(key_.get(), {"web.example.com"}, "web.example.com");
  }
  std::array<uint8_t, 432> Report(EVP_PKEY* bound) {
    evidence::SgxReportBody body;
    body.mr_enclave.fill(0xaa);
    auto spki = crypto::PublicKeyToDer(bound);
    auto d = crypto::Sha256(*spki);
    std::copy(d.begin(), d.end(), body.report_data.begin());
    return *sim_->platform().MakeReport(body, SimAgentMrEnclave());
  }
  test::TempDir tmp_{"agent-sim"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<attest::SimVendor> sim_;
  crypto::EvpPkeyPtr key_;
  std::string csr_;
};

TEST_F(LocalReportTest, AcceptsAGenuineReportBindingTheCsrKey) {
  auto report = Report(key_.get());
  std::vector<uint8_t> body;
  ASSERT_TRUE(VerifyLocalRequest(sim_->platform(), SimAgentMrEnclave(), report, csr_, &body).ok());
  EXPECT_EQ(body.size(), 384u);
  EXPECT_TRUE(std::equal(body.begin(), body.end(), report.begin()));
}

TEST_F(LocalReportTest, RefusesATamperedMacOrBodyOrAnotherTarget) {
  std::vector<uint8_t> body;
  for (size_t pos : {size_t{64}, size_t{320}, size_t{420}}) {  // mrenclave, report data, MAC
    auto report = Report(key_.get());
    report[pos] ^= 0x01;
    Status st = VerifyLocalRequest(sim_->platform(), SimAgentMrEnclave(), report, csr_, &body);
    EXPECT_EQ(st.reason(), "report_mac_invalid") << pos;
  }
  std::array<uint8_t, 32> other{};
  other.fill(7);
  auto report = Report(key_.get());
  EXPECT_EQ(VerifyLocalRequest(sim_->platform(), other, report, csr_, &body).reason(), "report_mac_invalid");
  EXPECT_EQ(VerifyLocalRequest(sim_->platform(), SimAgentMrEnclave(), std::span<const uint8_t>(report).first(431), csr_,
                               &body)
                .reason(),
            "invalid_report");
}

TEST_F(LocalReportTest, TheReportKeyDerivedOnceChecksTheSameWay) {
  // What the agent does: derives its report key at start, then checks each REPORT with it.
  auto key = sim_->platform().ReportKey(SimAgentMrEnclave());
  auto report = Report(key_.get());
  std::vector<uint8_t> body;
  EXPECT_TRUE(VerifyLocalRequest(key, report, csr_, &body).ok());
  report[420] ^= 0x01;
  EXPECT_EQ(VerifyLocalRequest(key, report, csr_, &body).reason(), "report_mac_invalid");
  std::array<uint8_t, 32> other{};
  other.fill(7);
  EXPECT_EQ(VerifyLocalRequest(sim_->platform().ReportKey(other), Report(key_.get()), csr_, &body).reason(),
            "report_mac_invalid");
}

TEST_F(LocalReportTest, RefusesAReportThatBindsAnotherKey) {
  auto other = crypto::GenerateP256();
  auto report = Report(other->get());
  std::vector<uint8_t> body;
  EXPECT_EQ(VerifyLocalRequest(sim_->platform(), SimAgentMrEnclave(), report, csr_, &body).reason(),
            "report_data_mismatch");
}

}  // namespace
}  // namespace vouch::agent
