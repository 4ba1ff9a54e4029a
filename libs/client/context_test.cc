#include "client/context.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/temp_dir.h"

namespace vouch::client {
namespace {

namespace fs = std::filesystem;

class ContextTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"context-test"};
  fs::path dir_ = tmp_.path();
};

unsigned Mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST_F(ContextTest, SavesWithMode0600InA0700DirectoryAndReadsBack) {
  const fs::path path = dir_ / "new" / "vouch" / "config.json";
  Context c{"https://127.0.0.1:8443", "/data/service-ca.pem", "vt_abc", "admin", "2026-11-24T12:00:00Z"};
  ASSERT_TRUE(SaveContext(path.string(), c).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(path.parent_path()), 0700u);
  EXPECT_EQ(Mode(path.parent_path().parent_path()), 0700u);

  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str());
  EXPECT_EQ(j["server"], "https://127.0.0.1:8443");
  EXPECT_EQ(j["ca_file"], "/data/service-ca.pem");
  EXPECT_EQ(j["token"], "vt_abc");
  EXPECT_EQ(j["user"], "admin");
  EXPECT_EQ(j["expires_at"], "2026-11-24T12:00:00Z");

  auto loaded = LoadContext(path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->server, c.server);
  EXPECT_EQ(loaded->token, c.token);
  EXPECT_EQ(loaded->user, c.user);
  // Nothing but the file is left behind (no temporary files).
  EXPECT_EQ(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator()), 1);
}

TEST_F(ContextTest, OverwriteReplacesContentAndKeepsMode) {
  const fs::path path = dir_ / "config.json";
  ASSERT_TRUE(SaveContext(path.string(), {"https://a:1", "", "vt_1", "u1", ""}).ok());
  ASSERT_TRUE(SaveContext(path.string(), {"https://b:2", "", "", "u2", ""}).ok());
  auto loaded = LoadContext(path.string());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->server, "https://b:2");
  EXPECT_EQ(loaded->token, "");
  EXPECT_EQ(Mode(path), 0600u);
}

TEST_F(ContextTest, MissingFileIsNotFound) {
  auto r = LoadContext((dir_ / "absent.json").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().reason(), "no_context");
}

TEST_F(ContextTest, RefusesFileReadableByOthers) {
  const fs::path path = dir_ / "config.json";
  ASSERT_TRUE(SaveContext(path.string(), {"https://a:1", "", "vt_1", "u1", ""}).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto r = LoadContext(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "insecure_context");
  EXPECT_EQ(r.status().message().find("vt_1"), std::string::npos);
}

TEST_F(ContextTest, RejectsMalformedFile) {
  const fs::path path = dir_ / "config.json";
  { std::ofstream(path) << "{\"server\": 5}"; }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_EQ(LoadContext(path.string()).status().reason(), "invalid_context");
  { std::ofstream(path) << "not json"; }
  EXPECT_EQ(LoadContext(path.string()).status().reason(), "invalid_context");
}

TEST_F(ContextTest, RemoveIsIdempotent) {
  const fs::path path = dir_ / "config.json";
  ASSERT_TRUE(SaveContext(path.string(), {}).ok());
  EXPECT_TRUE(RemoveContext(path.string()).ok());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(RemoveContext(path.string()).ok());
}

TEST(ResolveContextPath, PrefersFlagThenEnvironmentThenHome) {
  const char* old_cfg = std::getenv("VOUCH_CONFIG");
  const std::string saved_cfg = old_cfg ? old_cfg : "";
  const char* old_home = std::getenv("HOME");
  const std::string saved_home = old_home ? old_home : "";

  ::setenv("VOUCH_CONFIG", "/env/config.json", 1);
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(*ResolveContextPath("/flag/config.json"), "/flag/config.json");
  EXPECT_EQ(*ResolveContextPath(""), "/env/config.json");
  ::unsetenv("VOUCH_CONFIG");
  EXPECT_EQ(*ResolveContextPath(""), "/home/someone/.config/vouch/config.json");
  ::unsetenv("HOME");
  EXPECT_FALSE(ResolveContextPath("").ok());

  if (old_cfg) ::setenv("VOUCH_CONFIG", saved_cfg.c_str(), 1);
  if (old_home) ::setenv("HOME", saved_home.c_str(), 1);
}

}  // namespace
}  // namespace vouch::client
