#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "rte/credentials.h"
#include "rte/process.h"
#include "rte/runtime.h"
#include "rte/verify.h"
#include "testing/temp_dir.h"

namespace vouch::rte {
namespace {

class RteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(root_ + "/bin").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "app-bytes", 0755).ok());
    ASSERT_EQ(::symlink("app", (root_ + "/bin/alias").c_str()), 0);
    m_.entrypoint = {"/bin/app"};
    m_.exec_path = "/bin/app";
    m_.ro_dirs = {"/"};
    m_.rw_dirs = {"/tmp", "/run", "/proc", "/sys", "/dev"};
    m_.files.push_back({manifest::FileEntry::Type::kDir, "/bin", {}, 0, 0755, {}});
    m_.files.push_back({manifest::FileEntry::Type::kSymlink, "/bin/alias", {}, 0, 0, "app"});
    m_.files.push_back({manifest::FileEntry::Type::kFile, "/bin/app",
                        HexEncode(crypto::Sha256(std::string_view("app-bytes"))), 9, 0755, {}});
  }

  void WriteSigned() {
    if (manifest::FindEntry(m_, "/vouch") == nullptr) {
      m_.files.push_back({manifest::FileEntry::Type::kDir, "/vouch", {}, 0, 0755, {}});
      std::sort(m_.files.begin(), m_.files.end(), [](auto& a, auto& b) { return a.path < b.path; });
    }
    auto key = crypto::GenerateP256();
    std::string c = *manifest::ToCanonical(m_);
    ASSERT_TRUE(MakeDirs(root_ + "/vouch").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/manifest.json", c).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/manifest.sig", ToString(*manifest::Sign(key->get(), c))).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/signer.pem", *crypto::PublicKeyToPem(key->get())).ok());
  }

  test::TempDir tmp_{"rte-test"};
  std::string root_ = tmp_.path();
  manifest::EnclaveManifest m_;
};

TEST_F(RteTest, VerifiesFilesAndNamesTheFirstDifference) {
  EXPECT_TRUE(VerifyFiles(m_, root_).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "app-byteZ", 0755).ok());
  Status st = VerifyFiles(m_, root_);
  EXPECT_EQ(st.reason(), "integrity_violation");
  EXPECT_NE(st.message().find("/bin/app: content differs"), std::string::npos) << st.message();
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "app-bytes", 0700).ok());
  EXPECT_NE(VerifyFiles(m_, root_).message().find("permission bits"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "app-bytes", 0755).ok());
  std::filesystem::remove(root_ + "/bin/alias");
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/bin/alias").c_str()), 0);
  EXPECT_NE(VerifyFiles(m_, root_).message().find("symlink target"), std::string::npos);
  std::filesystem::remove(root_ + "/bin/app");
  ASSERT_EQ(::symlink("alias", (root_ + "/bin/app").c_str()), 0);
  EXPECT_FALSE(VerifyFiles(m_, root_).ok());
}

TEST_F(RteTest, ManyLargeFilesAreCheckedInParallelAndTheFirstDifferenceInManifestOrderIsNamed) {
  // Enough bytes for the parallel path; sizes differ so the largest-first order is not manifest order.
  for (int i = 0; i < 12; ++i) {
    const std::string content(200000 + 50000 * ((i * 7) % 12), static_cast<char>('a' + i));
    const std::string path = "/bin/f" + std::to_string(10 + i);
    ASSERT_TRUE(WriteFileAtomic(root_ + path, content, 0644).ok());
    m_.files.push_back({manifest::FileEntry::Type::kFile, path, HexEncode(crypto::Sha256(std::string_view(content))),
                        content.size(), 0644, {}});
  }
  ASSERT_TRUE(VerifyFiles(m_, root_).ok());
  for (int i : {20, 13, 17}) {  // three damaged files; /bin/f13 comes first in the manifest
    std::string content = *ReadWholeFile(root_ + "/bin/f" + std::to_string(i));
    content[content.size() / 2] ^= 1;
    ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/f" + std::to_string(i), content, 0644).ok());
  }
  for (int run = 0; run < 20; ++run) {
    Status st = VerifyFiles(m_, root_);
    ASSERT_EQ(st.reason(), "integrity_violation");
    EXPECT_NE(st.message().find("/bin/f13: content differs"), std::string::npos) << st.message();
  }
}

TEST_F(RteTest, LoadsOnlyASignedCanonicalManifest) {
  WriteSigned();
  auto loaded = LoadManifest(root_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->mrenclave, HexEncode(crypto::Sha256(loaded->canonical)));
  ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/manifest.json", loaded->canonical + "\n").ok());
  EXPECT_EQ(LoadManifest(root_).status().reason(), "bad_manifest_signature");
}

TEST(Runtime, ArgvAndEnvFollowTheManifest) {
  manifest::EnclaveManifest m;
  m.entrypoint = {"/bin/app"};
  m.args = {"--default"};
  m.env = {"PATH=/bin", "MODE=prod"};
  m.mutable_env = {"LOG_LEVEL"};
  EXPECT_EQ(*ChildArgv(m, {}), (std::vector<std::string>{"/bin/app", "--default"}));
  EXPECT_EQ(ChildArgv(m, {"--evil"}).status().reason(), "cmdline_args_not_allowed");
  m.allow_cmdline_args = true;
  EXPECT_EQ(*ChildArgv(m, {"--x"}), (std::vector<std::string>{"/bin/app", "--x"}));
  EXPECT_EQ(ChildEnv(m, {"MODE=debug", "LOG_LEVEL=2", "SECRET=1"}),
            (std::vector<std::string>{"PATH=/bin", "MODE=prod", "LOG_LEVEL=2"}));
}

TEST(Process, PropagatesExitCodesAndForwardsSignals) {
  BlockSignals();
  auto p = StartChild("/bin/sh", {"sh", "-c", "exit 7"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(SuperviseChild(*p), 7);
  // No PATH search at run time: only an absolute path is executed.
  EXPECT_EQ(StartChild("sh", {"sh", "-c", "exit 0"}, {"PATH=/bin"}).status().reason(), "exec_failed");
  EXPECT_EQ(StartChild("/no/such/program", {"x"}, {}).status().reason(), "exec_failed");
  // The child traps TERM and exits 42; the forwarded signal must reach it.
  auto t = StartChild("/bin/sh", {"/bin/sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(t.ok());
  usleep(300000);
  ::kill(::getpid(), SIGTERM);  // blocked here, picked up by SuperviseChild and forwarded
  EXPECT_EQ(SuperviseChild(*t), 42);
  auto k = StartChild("/bin/sh", {"/bin/sh", "-c", "kill -KILL $$"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(SuperviseChild(*k), 128 + SIGKILL);
}

TEST_F(RteTest, RunRefusesAModifiedFileAndRunsAnIntactOne) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "#!/bin/sh\nexit 3\n", 0755).ok());
  m_.files[2].sha256 = HexEncode(crypto::Sha256(std::string_view("#!/bin/sh\nexit 3\n")));
  m_.files[2].size = 17;
  m_.entrypoint = {"app"};  // argv[0] as given; the program is exec_path under the root, no PATH search
  WriteSigned();
  RuntimeOptions o;
  o.root = root_;
  EXPECT_EQ(rte::Run(o), 3);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "#!/bin/sh\nexit 4\n", 0755).ok());
  EXPECT_EQ(rte::Run(o), 1);
}

TEST_F(RteTest, UnlistedEntriesInAProtectedTreeAreRefusedByPath) {
  ASSERT_TRUE(CheckNoUnlistedEntries(m_, root_).ok());
  auto expect_unlisted = [&](const std::string& path, const std::string& type) {
    std::string bad;
    Status st = VerifyFiles(m_, root_, &bad);
    EXPECT_EQ(st.reason(), "unlisted_entry") << st.ToString();
    EXPECT_EQ(bad, path);
    EXPECT_NE(st.message().find(path + ": a " + type), std::string::npos) << st.message();
    std::filesystem::remove_all(root_ + path);
    EXPECT_TRUE(VerifyFiles(m_, root_).ok());
  };
  // An added preload file at the top, a binary beside a listed one, a directory, a symlink.
  ASSERT_TRUE(WriteFileAtomic(root_ + "/ld.so.preload", "/x.so\n", 0644).ok());
  expect_unlisted("/ld.so.preload", "file");
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/ls", "evil", 0755).ok());
  expect_unlisted("/bin/ls", "file");
  ASSERT_TRUE(MakeDirs(root_ + "/etc/profile.d").ok());
  expect_unlisted("/etc", "directory");
  ASSERT_EQ(::symlink("/tmp/x", (root_ + "/bin/sneaky").c_str()), 0);
  expect_unlisted("/bin/sneaky", "symlink");
  ASSERT_EQ(::mkfifo((root_ + "/bin/pipe").c_str(), 0600), 0);
  expect_unlisted("/bin/pipe", "fifo");
  if (::mknod((root_ + "/bin/null").c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) {
    expect_unlisted("/bin/null", "character device");
  }
  // A read-write directory is not walked; a listed directory that is a file is a violation.
  ASSERT_TRUE(MakeDirs(root_ + "/tmp/anything").ok());
  EXPECT_TRUE(VerifyFiles(m_, root_).ok());
  std::filesystem::remove_all(root_ + "/bin");
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin", "x", 0644).ok());
  EXPECT_EQ(CheckNoUnlistedEntries(m_, root_).reason(), "integrity_violation");
}

TEST_F(RteTest, RuntimeMountNamesAreSkippedOnlyAsMountPoints) {
  // /etc/hosts, /proc and /dev protected here (no rw entry): an ordinary file or directory at
  // those names is an unlisted entry like any other (the test tree has no mounts).
  m_.rw_dirs = {"/tmp"};
  m_.files.push_back({manifest::FileEntry::Type::kDir, "/etc", {}, 0, 0755, {}});
  std::sort(m_.files.begin(), m_.files.end(), [](auto& a, auto& b) { return a.path < b.path; });
  ASSERT_TRUE(MakeDirs(root_ + "/etc").ok());
  ASSERT_TRUE(CheckNoUnlistedEntries(m_, root_).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/etc/hosts", "127.0.0.1 x\n", 0644).ok());
  std::string bad;
  EXPECT_EQ(CheckNoUnlistedEntries(m_, root_, &bad).reason(), "unlisted_entry");
  EXPECT_EQ(bad, "/etc/hosts");
  std::filesystem::remove(root_ + "/etc/hosts");
  ASSERT_TRUE(MakeDirs(root_ + "/proc").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/proc/ld.so.preload", "x", 0644).ok());
  EXPECT_EQ(CheckNoUnlistedEntries(m_, root_, &bad).reason(), "unlisted_entry");
  EXPECT_EQ(bad, "/proc");
  std::filesystem::remove_all(root_ + "/proc");
  // The directories on the way to the credentials directory and the agent socket may be made at
  // run time; what else they hold is still checked. The credentials directory itself is left to
  // CredentialStore.
  m_.certificates.push_back(manifest::CertificateRequest{});
  ASSERT_TRUE(MakeDirs(root_ + "/run/vouch/certs").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/run/vouch/certs/key.pem", "old", 0600).ok());
  EXPECT_TRUE(CheckNoUnlistedEntries(m_, root_).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/run/vouch/evil", "x", 0644).ok());
  EXPECT_EQ(CheckNoUnlistedEntries(m_, root_, &bad).reason(), "unlisted_entry");
  EXPECT_EQ(bad, "/run/vouch/evil");
  // The manifest's own three files are accepted as regular files only.
  std::filesystem::remove(root_ + "/run/vouch/evil");
  WriteSigned();
  EXPECT_TRUE(CheckNoUnlistedEntries(m_, root_).ok());
  std::filesystem::remove(root_ + "/vouch/signer.pem");
  ASSERT_TRUE(MakeDirs(root_ + "/vouch/signer.pem").ok());
  EXPECT_EQ(CheckNoUnlistedEntries(m_, root_).reason(), "unlisted_entry");
}

TEST_F(RteTest, CredentialsDirectoryIsMadeFreshAndNeverFollowed) {
  manifest::CertificateRequest req;
  {
    auto store = CredentialStore::Open(req, root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Write(req.key_path, "KEY1", 0600).ok());
    ASSERT_TRUE((*store)->Write(req.cert_path, "CERT1", 0644).ok());
    // Renewal: replaced within the same directory handle.
    ASSERT_TRUE((*store)->Write(req.cert_path, "CERT2", 0644).ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat((root_ + "/run/vouch/certs").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(*ReadWholeFile(root_ + "/run/vouch/certs/cert.pem"), "CERT2");
  ASSERT_EQ(::stat((root_ + "/run/vouch/certs/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A restart of the same container: its own files are removed, the directory reused.
  {
    auto store = CredentialStore::Open(req, root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_FALSE(FileExists(root_ + "/run/vouch/certs/key.pem"));
  }
  // A foreign file, a symlink at a credential name, a symlink at the directory or above it.
  ASSERT_TRUE(WriteFileAtomic(root_ + "/run/vouch/certs/ld.so.preload", "x", 0644).ok());
  std::string refused;
  auto foreign = CredentialStore::Open(req, root_, &refused);
  EXPECT_EQ(foreign.status().reason(), "credentials_path_unsafe");
  EXPECT_EQ(refused, "/run/vouch/certs/ld.so.preload");
  std::filesystem::remove(root_ + "/run/vouch/certs/ld.so.preload");
  ASSERT_TRUE(WriteFileAtomic(root_ + "/victim", "untouched", 0644).ok());
  ASSERT_EQ(::symlink((root_ + "/victim").c_str(), (root_ + "/run/vouch/certs/key.pem").c_str()), 0);
  EXPECT_EQ(CredentialStore::Open(req, root_).status().reason(), "credentials_path_unsafe");
  EXPECT_EQ(*ReadWholeFile(root_ + "/victim"), "untouched");
  std::filesystem::remove_all(root_ + "/run/vouch/certs");
  ASSERT_TRUE(MakeDirs(root_ + "/elsewhere").ok());
  ASSERT_EQ(::symlink((root_ + "/elsewhere").c_str(), (root_ + "/run/vouch/certs").c_str()), 0);
  auto linked = CredentialStore::Open(req, root_);
  EXPECT_EQ(linked.status().reason(), "credentials_path_unsafe");
  EXPECT_NE(linked.status().message().find("/run/vouch/certs: is a symlink"), std::string::npos)
      << linked.status().message();
  std::filesystem::remove(root_ + "/run/vouch/certs");
  std::filesystem::remove_all(root_ + "/run/vouch");
  ASSERT_EQ(::symlink((root_ + "/elsewhere").c_str(), (root_ + "/run/vouch").c_str()), 0);
  EXPECT_EQ(CredentialStore::Open(req, root_).status().reason(), "credentials_path_unsafe");
  EXPECT_TRUE(std::filesystem::is_empty(root_ + "/elsewhere"));
}

// A fake agent that records refusals.
class RecordingLink final : public AgentLink {
 public:
  explicit RecordingLink(std::vector<std::string>* log) : log_(log) {}
  Result<IssuedCredentials> RequestCertificate(const manifest::CertificateRequest&, const Identity&, EVP_PKEY*,
                                               const std::string&) override {
    return PermissionDenied("not in this test", "build_not_approved");
  }
  Status SendHeartbeat(EVP_PKEY*, std::span<const uint8_t>, const std::string&, int64_t, const std::string&) override {
    return Status::Ok();
  }
  Status ReportRefusal(const std::string& code, const std::string& path, const std::string&,
                       const std::string& mrenclave) override {
    log_->push_back(code + " " + path + " " + mrenclave.substr(0, 8));
    return Status::Ok();
  }

 private:
  std::vector<std::string>* log_;
};

TEST_F(RteTest, RunReportsARefusedStartToTheAgent) {
  m_.certificates.push_back(manifest::CertificateRequest{});
  WriteSigned();
  std::vector<std::string> log;
  RuntimeOptions o;
  o.root = root_;
  o.connect = [&](const std::string&) -> Result<std::unique_ptr<AgentLink>> {
    return std::unique_ptr<AgentLink>(new RecordingLink(&log));
  };
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/sh", "evil", 0755).ok());
  EXPECT_EQ(rte::Run(o), 1);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].substr(0, log[0].rfind(' ')), "unlisted_entry /bin/sh");
  std::filesystem::remove(root_ + "/bin/sh");
  ASSERT_TRUE(MakeDirs(root_ + "/run/vouch").ok());
  ASSERT_EQ(::symlink("/etc", (root_ + "/run/vouch/certs").c_str()), 0);
  EXPECT_EQ(rte::Run(o), 1);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].substr(0, log[1].rfind(' ')), "credentials_path_unsafe /run/vouch/certs");
}

}  // namespace
}  // namespace vouch::rte
