#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace vouch {
namespace {

class AtomicWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vouch-file-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(dir_, ec);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  static unsigned Mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(AtomicWriteTest, ReplacesTheWholeFileWithTheGivenMode) {
  const std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(100000, 'a'), 0600).ok());
  EXPECT_EQ(Mode(path), 0600u);
  ASSERT_TRUE(WriteFileAtomic(path, "short", 0640).ok());
  auto text = ReadWholeFile(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "short");  // not "short" followed by the rest of the old content
  EXPECT_EQ(Mode(path), 0640u);
  ASSERT_TRUE(WriteFileAtomic(path, "", 0644, /*durable=*/false).ok());
  EXPECT_EQ(*ReadWholeFile(path), "");
  EXPECT_EQ(Entries(), std::vector<std::string>{"state.json"});  // no temporary file left behind
}

TEST_F(AtomicWriteTest, AModeIsKeptDespiteTheUmask) {
  const mode_t old = ::umask(0077);
  const std::string path = dir_ + "/public.pem";
  Status st = WriteFileAtomic(path, "x", 0644);
  ::umask(old);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(Mode(path), 0644u);
}

TEST_F(AtomicWriteTest, AFailedWriteLeavesTheOldFileWhole) {
  const std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "old content", 0600).ok());
  // A file size limit makes the write of the new content fail half way (EFBIG), also for root.
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status st = WriteFileAtomic(path, std::string(100000, 'n'), 0600);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.reason(), "io_error");
  EXPECT_EQ(*ReadWholeFile(path), "old content");
  EXPECT_EQ(Entries(), std::vector<std::string>{"state.json"});  // the temporary file is removed
}

TEST_F(AtomicWriteTest, AFailedRenameLeavesNoTemporaryFile) {
  ASSERT_EQ(::mkdir((dir_ + "/taken").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir_ + "/taken/sub").c_str(), 0700), 0);  // a non-empty directory cannot be replaced
  EXPECT_FALSE(WriteFileAtomic(dir_ + "/taken", "x").ok());
  EXPECT_EQ(Entries(), std::vector<std::string>{"taken"});
}

TEST_F(AtomicWriteTest, AMissingDirectoryIsAnError) {
  Status st = WriteFileAtomic(dir_ + "/no/such/dir/file", "x");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.reason(), "io_error");
}

TEST_F(AtomicWriteTest, AtTakesOnlyAPlainNameAndUsesTheTempPrefix) {
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  EXPECT_FALSE(WriteFileAtomicAt(dfd, "../escape", "x").ok());
  EXPECT_FALSE(WriteFileAtomicAt(dfd, "", "x").ok());
  EXPECT_FALSE(WriteFileAtomicAt(dfd, "..", "x").ok());
  // A symbolic link in the place of the file is replaced, not followed.
  const std::string target = dir_ + "/target";
  ASSERT_TRUE(WriteFileAtomic(target, "target", 0600).ok());
  ASSERT_EQ(::symlink(target.c_str(), (dir_ + "/cert.pem").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomicAt(dfd, "cert.pem", "cert", 0644, /*durable=*/false).ok());
  ::close(dfd);
  EXPECT_EQ(*ReadWholeFile(target), "target");
  EXPECT_EQ(*ReadWholeFile(dir_ + "/cert.pem"), "cert");
  EXPECT_FALSE(std::filesystem::is_symlink(dir_ + "/cert.pem"));
  for (const std::string& e : Entries()) EXPECT_NE(e.rfind(kAtomicWriteTempPrefix, 0), 0u) << e;
}

}  // namespace
}  // namespace vouch
