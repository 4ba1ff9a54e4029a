#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "agent/agent.h"
#include "agent/disk_queue.h"
#include "agent/peer.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "http/server.h"
#include "pki/ca.h"
#include "testing/csr.h"
#include "testing/temp_dir.h"
#include "tsm/fuse_tsm.h"
#include "workload/local_http.h"
#include "workload/workload_client.h"

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


// ---- Confidential VMs: node evidence through configfs-tsm, workloads recognised by kernel facts.

TEST(NodeInblob, IsTheSgxBindingPaddedWithZeros) {
  std::vector<uint8_t> spki = {1, 2, 3}, nonce = {4, 5};
  auto in = NodeInblob(spki, nonce);
  auto d = crypto::Sha256(std::vector<uint8_t>{1, 2, 3, 4, 5});
  EXPECT_TRUE(std::equal(d.begin(), d.end(), in.begin()));
  EXPECT_TRUE(std::all_of(in.begin() + 32, in.end(), [](uint8_t b) { return b == 0; }));
}

class ClaimTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> Claim(EVP_PKEY* bound, bool debug = false) {
    evidence::SgxReport r;
    r.body.mr_enclave.fill(0xaa);
    r.body.mr_signer.fill(0xbb);
    r.body.isv_prod_id = 7;
    r.body.isv_svn = 3;
    r.body.attribute_flags = debug ? evidence::kSgxFlagDebug : 0;
    r.body.config_id.fill(0x55);  // not part of the identity: must not reach vouchd
    r.body.cpu_svn.fill(0x66);
    auto d = crypto::Sha256(*crypto::PublicKeyToDer(bound));
    std::copy(d.begin(), d.end(), r.body.report_data.begin());
    auto raw = evidence::EncodeSgxReport(r);
    return {raw.begin(), raw.end()};
  }
  crypto::EvpPkeyPtr key_ = std::move(*crypto::GenerateP256());
  std::string csr_ = test::CsrPemFor(key_.get(), {"web.example.com"}, "web.example.com");
};

TEST_F(ClaimTest, ForwardsOnlyTheClaimedIdentityWithTheCsrBinding) {
  std::vector<uint8_t> out;
  ASSERT_TRUE(ClaimedReportBody(Claim(key_.get(), true), csr_, &out).ok());
  ASSERT_EQ(out.size(), 384u);
  auto body = evidence::ParseSgxReportBody(out);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->mr_enclave[0], 0xaa);
  EXPECT_EQ(body->mr_signer[31], 0xbb);
  EXPECT_EQ(body->isv_prod_id, 7);
  EXPECT_EQ(body->isv_svn, 3);
  EXPECT_TRUE(body->debug());
  EXPECT_TRUE(std::all_of(body->config_id.begin(), body->config_id.end(), [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::all_of(body->cpu_svn.begin(), body->cpu_svn.end(), [](uint8_t b) { return b == 0; }));
  auto d = crypto::Sha256(*crypto::PublicKeyToDer(key_.get()));
  EXPECT_TRUE(std::equal(d.begin(), d.end(), body->report_data.begin()));
  EXPECT_TRUE(std::all_of(body->report_data.begin() + 32, body->report_data.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(ClaimTest, RefusesAClaimBindingAnotherKeyOrOfTheWrongSize) {
  std::vector<uint8_t> out;
  auto other = crypto::GenerateP256();
  EXPECT_EQ(ClaimedReportBody(Claim(other->get()), csr_, &out).reason(), "report_data_mismatch");
  auto claim = Claim(key_.get());
  claim.pop_back();
  EXPECT_EQ(ClaimedReportBody(claim, csr_, &out).reason(), "invalid_report");
}

Sha256 SelfExeHash() {
  auto h = Sha256OfFile("/proc/self/exe");
  EXPECT_TRUE(h.ok());
  return *h;
}

// A child process that has exited and been reaped, and a pidfd that still names it.
std::pair<pid_t, int> ReapedChild() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {pid, pidfd};
}

TEST(RteRecognizer, AcceptsOnlyALiveProcessRunningAKnownExecutable) {
  PeerProcess self{::getpid(), ::getuid(), -1};
  EXPECT_TRUE(RteRecognizer({SelfExeHash()}).Check(self).ok());
  Sha256 other{};
  other.fill(1);
  EXPECT_EQ(RteRecognizer({other}).Check(self).reason(), kPeerNotVouchRte);
  EXPECT_EQ(RteRecognizer({}).Check(self).reason(), kRteUnknown);
  EXPECT_EQ(RteRecognizer({SelfExeHash()}).Check(PeerProcess{}).reason(), kPeerUnknown);
  EXPECT_EQ(RteRecognizer({SelfExeHash()}).Check(PeerProcess{0, 0, -1}).reason(), kPeerUnknown);
  // The connecting process is gone (its pidfd says so), whatever now holds its pid.
  auto [pid, pidfd] = ReapedChild();
  ASSERT_GE(pidfd, 0);
  EXPECT_EQ(RteRecognizer({SelfExeHash()}).Check(PeerProcess{pid, 0, pidfd}).reason(), kPeerExited);
  ::close(pidfd);
}

// libs/http's Unix listener hands the handler the caller's pid and a pidfd pinned to it
// (SO_PEERPIDFD): a caller that exited (its pid free for reuse) fails the check even though the
// handler only runs afterwards.
TEST(RteRecognizer, ThePidfdOfTheConnectionOutlivesTheCallersPid) {
  test::TempDir tmp("agent-peer");
  const std::string sock = tmp.path() + "/s.sock";
  RteRecognizer rte({SelfExeHash()});
  std::mutex mu;
  std::condition_variable cv;
  bool child_reaped = false;
  std::vector<std::pair<int64_t, std::string>> seen;  // (pid, check reason or "ok")
  http::Router router;
  router.Add("GET", "/peer", [&](http::Request& req) {
    std::unique_lock<std::mutex> lock(mu);
    if (req.peer_pid != ::getpid()) cv.wait_for(lock, std::chrono::seconds(20), [&] { return child_reaped; });
    Status st = rte.Check(PeerProcess{req.peer_pid, req.peer_uid, req.peer_pidfd});
    seen.emplace_back(req.peer_pid, st.ok() ? "ok" : st.reason());
    EXPECT_GE(req.peer_pidfd, 0) << "no SO_PEERPIDFD (Linux 6.5+)";
    cv.notify_all();
    return http::Response::Json({{"pid", req.peer_pid}});
  });
  http::ServerOptions so;
  so.tcp_enabled = false;
  so.unix_socket_path = sock;
  so.threads = 2;
  auto server = http::Server::Create(so, std::move(router));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  // This process: recognised (the known executable is this test binary).
  auto self = workload::LocalHttp::Create(sock);
  ASSERT_TRUE(self.ok());
  auto answer = (*self)->Get("/peer");
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ((*answer)["pid"], ::getpid());
  // A child that sends its request and exits at once; the handler checks only after it was reaped.
  pid_t child = ::fork();
  if (child == 0) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) ::_exit(1);
    static const char kReq[] = "GET /peer HTTP/1.1\r\nHost: agent\r\n\r\n";
    if (::write(fd, kReq, sizeof kReq - 1) < 0) ::_exit(2);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  {
    std::unique_lock<std::mutex> lock(mu);
    child_reaped = true;
    cv.notify_all();
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return seen.size() == 2; }))
        << "the child's request never reached the handler";
  }
  (*server)->Stop(std::chrono::seconds(1));
  EXPECT_EQ(seen[0], (std::pair<int64_t, std::string>{::getpid(), "ok"}));
  EXPECT_EQ(seen[1].first, child);
  EXPECT_EQ(seen[1].second, kPeerExited);
}

// The agent on a (emulated) TDX guest: pre-provisioned identity, a manager that does not answer.
class CvmAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse is needed (scripts/setup installs fuse3)";
    ASSERT_TRUE(MakeDirs(tmp_.path() + "/mnt", 0700).ok());
    tsm::FuseTsmOptions o;
    o.mountpoint = tmp_.path() + "/mnt";
    o.provider = std::string(tsm::kProviderTdx);
    o.evidence = [](std::string_view, std::span<const uint8_t, 64> in, uint32_t) -> Result<tsm::Blobs> {
      return tsm::Blobs{std::vector<uint8_t>(in.begin(), in.end()), {}};
    };
    auto fs = tsm::FuseTsm::Mount(std::move(o));
    ASSERT_TRUE(fs.ok()) << fs.status().message();
    fs_ = std::move(*fs);
    // An identity as provisioning would have left it (the certificate is only read for its dates).
    pki::RootCaOptions ca;
    ca.common_name = "node-test";
    auto m = pki::CreateRootCa(ca);
    ASSERT_TRUE(m.ok());
    auto key_pem = crypto::PrivateKeyToPem(m->key.get());
    ASSERT_TRUE(MakeDirs(data_, 0700).ok());
    ASSERT_TRUE(WriteFileAtomic(data_ + "/node-key.pem", key_pem->view(), 0600).ok());
    ASSERT_TRUE(WriteFileAtomic(data_ + "/node-cert.pem", m->cert_pem, 0644).ok());
    ASSERT_TRUE(WriteFileAtomic(data_ + "/node.json", R"({"node_id":"node-1","zone":"z","obtained_at":0})", 0644).ok());
  }
  void TearDown() override {
    if (agent_) agent_->Stop();
    agent_.reset();
    fs_.reset();
  }
  AgentOptions Options(std::string tee, std::vector<std::string> rte) const {
    AgentOptions o;
    o.server_urls = {"https://127.0.0.1:1"};  // nothing listens: forwarding fails with 503
    o.data_dir = data_;
    o.socket_path = tmp_.path() + "/agent.sock";
    o.tee = std::move(tee);
    o.tsm_dir = tmp_.path() + "/mnt/report";
    o.rte_sha256 = std::move(rte);
    o.threads = 4;
    return o;
  }
  void StartAgent(std::vector<std::string> rte) {
    auto a = Agent::Create(Options("auto", std::move(rte)));
    ASSERT_TRUE(a.ok()) << a.status().message();
    agent_ = std::move(*a);
    ASSERT_TRUE(agent_->Start().ok());
  }
  Status RequestApprovedIdentity() {
    auto client = workload::WorkloadClient::Create(tmp_.path() + "/agent.sock");
    if (!client.ok()) return client.status();
    workload::SimIdentity id;
    id.mrenclave.fill(0xaa);  // whatever the approved build's measurement is: the claim is free
    id.mrsigner.fill(0xbb);
    auto creds = (*client)->RequestCertificate((*client)->ManifestReportSource(id), {"web.example.com"});
    return creds.status();
  }

  test::TempDir tmp_{"agent-cvm"};
  std::string data_ = tmp_.path() + "/data";
  std::unique_ptr<tsm::FuseTsm> fs_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(CvmAgentTest, AutoPicksTheProviderAndNoneOrAnotherIsAStartUpError) {
  StartAgent({HexEncode(SelfExeHash())});
  EXPECT_EQ(agent_->tee(), "tdx");
  auto client = workload::WorkloadClient::Create(tmp_.path() + "/agent.sock");
  ASSERT_TRUE(client.ok());
  auto v = (*client)->Version();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["tee"], "tdx");
  EXPECT_EQ((*v)["workload_auth"], "peer");
  EXPECT_EQ((*v)["insecure_sim"], false);
  auto t = (*client)->GetTargetInfo();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->tee, "tdx");
  agent_->Stop();
  agent_.reset();
  EXPECT_EQ(Agent::Create(Options("sev-snp", {})).status().reason(), tsm::kProviderMismatch);
  auto bad_dir = Options("tdx", {});
  bad_dir.tsm_dir = tmp_.path() + "/nothing";
  EXPECT_EQ(Agent::Create(bad_dir).status().reason(), tsm::kNoTsm);
  fs_.reset();
  tsm::FuseTsmOptions none;
  none.mountpoint = tmp_.path() + "/mnt";
  auto fs = tsm::FuseTsm::Mount(std::move(none));
  ASSERT_TRUE(fs.ok());
  fs_ = std::move(*fs);
  auto st = Agent::Create(Options("auto", {})).status();
  EXPECT_EQ(st.reason(), tsm::kNoProvider);
  EXPECT_NE(st.message().find("no TSM provider"), std::string::npos) << st.message();
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(CvmAgentTest, AProcessThatIsNotVouchRteGetsNoCertificateForAnApprovedMeasurement) {
  // The agent knows one vouch-rte executable, and this test binary is not it: the claim of an
  // (approved) measurement is refused before anything reaches vouchd, and the refusal is logged.
  Sha256 rte{};
  rte.fill(0x42);
  StartAgent({HexEncode(rte)});
  Status st = RequestApprovedIdentity();
  EXPECT_EQ(st.reason(), kPeerNotVouchRte) << st.message();
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  auto log = ReadWholeFile(data_ + "/refusals.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("peer_not_vouch_rte"), std::string::npos);
  EXPECT_NE(log->find(std::string(64, 'a')), std::string::npos);  // the claimed mrenclave is named
}

TEST_F(CvmAgentTest, TheKnownExecutablePassesAndAnotherProcessOfTheSameMachineDoesNot) {
  // Control: with this test binary's hash known, the same request passes the local checks and
  // fails only at forwarding (no manager listens).
  StartAgent({HexEncode(SelfExeHash())});
  Status st = RequestApprovedIdentity();
  EXPECT_EQ(st.reason(), "manager_unavailable") << st.message();
  // Another executable (curl, in a child process) sending the very same kind of request is
  // refused: the agent looks at the process at the other end of the connection.
  auto key = crypto::GenerateP256();
  std::string csr = test::CsrPemFor(key->get(), {"web.example.com"}, "web.example.com");
  evidence::SgxReport r;
  r.body.mr_enclave.fill(0xaa);
  auto d = crypto::Sha256(*crypto::PublicKeyToDer(key->get()));
  std::copy(d.begin(), d.end(), r.body.report_data.begin());
  auto raw = evidence::EncodeSgxReport(r);
  nlohmann::json body = {{"csr", csr}, {"report", Base64Encode(raw)}};
  const std::string body_file = tmp_.Write("req.json", body.dump());
  const std::string out_file = tmp_.path() + "/answer.json";
  const std::string cmd = "curl -sS --unix-socket " + tmp_.path() + "/agent.sock -o " + out_file +
                          " -H 'Content-Type: application/json' --data-binary @" + body_file +
                          " http://agent/v1/certificate";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto answer = ReadWholeFile(out_file);
  ASSERT_TRUE(answer.ok());
  EXPECT_NE(answer->find("peer_not_vouch_rte"), std::string::npos) << *answer;
}
}  // namespace
}  // namespace vouch::agent
