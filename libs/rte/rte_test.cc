#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "rte/process.h"
#include "rte/runtime.h"
#include "rte/verify.h"

namespace vouch::rte {
namespace {

class RteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rte-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ASSERT_TRUE(MakeDirs(root_ + "/bin").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "app-bytes", 0755).ok());
    ASSERT_EQ(::symlink("app", (root_ + "/bin/alias").c_str()), 0);
    m_.entrypoint = {"/bin/app"};
    m_.files.push_back({manifest::FileEntry::Type::kSymlink, "/bin/alias", {}, 0, 0, "app"});
    m_.files.push_back({manifest::FileEntry::Type::kFile, "/bin/app",
                        HexEncode(crypto::Sha256(std::string_view("app-bytes"))), 9, 0755, {}});
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void WriteSigned() {
    auto key = crypto::GenerateP256();
    std::string c = *manifest::ToCanonical(m_);
    ASSERT_TRUE(MakeDirs(root_ + "/vouch").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/manifest.json", c).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/manifest.sig", ToString(*manifest::Sign(key->get(), c))).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/vouch/signer.pem", *crypto::PublicKeyToPem(key->get())).ok());
  }

  std::string root_;
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
  auto p = StartChild({"/bin/sh", "-c", "exit 7"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(SuperviseChild(*p), 7);
  auto missing = StartChild({"no-such-program-here"}, {"PATH=/bin"});
  EXPECT_EQ(missing.status().reason(), "executable_not_found");
  // The child traps TERM and exits 42; the forwarded signal must reach it.
  auto t = StartChild({"/bin/sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(t.ok());
  usleep(300000);
  ::kill(::getpid(), SIGTERM);  // blocked here, picked up by SuperviseChild and forwarded
  EXPECT_EQ(SuperviseChild(*t), 42);
  auto k = StartChild({"/bin/sh", "-c", "kill -KILL $$"}, {"PATH=/bin:/usr/bin"});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(SuperviseChild(*k), 128 + SIGKILL);
}

TEST_F(RteTest, RunRefusesAModifiedFileAndRunsAnIntactOne) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "#!/bin/sh\nexit 3\n", 0755).ok());
  m_.files[1].sha256 = HexEncode(crypto::Sha256(std::string_view("#!/bin/sh\nexit 3\n")));
  m_.files[1].size = 17;
  m_.entrypoint = {root_ + "/bin/app"};  // exec happens on the host file system in this test
  WriteSigned();
  RuntimeOptions o;
  o.root = root_;
  EXPECT_EQ(rte::Run(o), 3);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/bin/app", "#!/bin/sh\nexit 4\n", 0755).ok());
  EXPECT_EQ(rte::Run(o), 1);
}

}  // namespace
}  // namespace vouch::rte
