#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "store/audit.h"
#include "store/database.h"

namespace vouch::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vouch-store-" + std::to_string(getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "vouch.db").string();
    auto db = OpenDatabase("sqlite:" + path_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto v = db_->Migrate();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  int64_t Count(const std::string& table) {
    int64_t n = -1;
    EXPECT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT COUNT(*) FROM " + table, {}, "count"));
                     n = r.Int(0);
                     return Status::Ok();
                   }).ok());
    return n;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Database> db_;
};

TEST_F(StoreTest, MigrateIsIdempotentAndFileIsPrivate) {
  auto v = db_->Migrate();
  ASSERT_TRUE(v.ok());
  EXPECT_GE(*v, 1);
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(StoreTest, FailedTransactionChangesNothing) {
  Status st = db_->Write([](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES ('a', '1')").status());
    return InvalidArgument("abort on purpose");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Count("settings"), 0);
}

TEST_F(StoreTest, UniqueViolationIsAlreadyExists) {
  auto insert = [&] {
    return db_->Write([](Transaction& tx) {
      return tx.Exec("INSERT INTO settings (key, value) VALUES ('k', 'v')").status();
    });
  };
  ASSERT_TRUE(insert().ok());
  Status st = insert();
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, ForeignKeysAreEnforced) {
  Status st = db_->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ('t', 'nobody', 1, 2)")
        .status();
  });
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, ParametersAreNeverInterpretedAsSql) {
  std::string evil = "x'); DROP TABLE settings; --";
  ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)", {evil, std::string("v")}).status();
                 }).ok());
  EXPECT_EQ(Count("settings"), 1);
}

TEST_F(StoreTest, AuditChainDetectsEditsDeletionsAndTruncation) {
  FixedClock clock(FromUnixSeconds(1700000000));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                     return AppendAudit(tx, clock.Now(), "user:admin", "zone.create", "z" + std::to_string(i), "ok",
                                        {{"i", i}});
                   }).ok());
  }
  auto verify = [&] {
    AuditVerification v;
    EXPECT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(v, VerifyAuditChain(tx));
                     return Status::Ok();
                   }).ok());
    return v;
  };
  auto v = verify();
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(v.entries, 5);

  auto exec = [&](const std::string& sql) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) { return tx.Exec(sql).status(); }).ok());
  };
  exec("UPDATE audit SET actor = 'user:mallory' WHERE seq = 3");
  v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  exec("UPDATE audit SET actor = 'user:admin' WHERE seq = 3");
  EXPECT_TRUE(verify().ok);

  exec("DELETE FROM audit WHERE seq = 2");
  v = verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
}

TEST_F(StoreTest, AuditTailTruncationIsDetected) {
  FixedClock clock(FromUnixSeconds(1700000000));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                     return AppendAudit(tx, clock.Now(), "system", "x", "t", "ok");
                   }).ok());
  }
  ASSERT_TRUE(db_->Write([](Transaction& tx) { return tx.Exec("DELETE FROM audit WHERE seq = 3").status(); }).ok());
  AuditVerification v;
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(v, VerifyAuditChain(tx));
                   return Status::Ok();
                 }).ok());
  EXPECT_FALSE(v.ok);
}

TEST_F(StoreTest, ConcurrentWritersDoNotLoseUpdates) {
  ASSERT_TRUE(db_->Write([](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES ('n', '0')").status();
                 }).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_TRUE(db_->Write([](Transaction& tx) -> Status {
                         VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT value FROM settings WHERE key='n'", {}, "n"));
                         int64_t n = std::stoll(r.Str(0));
                         return tx.Exec("UPDATE settings SET value = ? WHERE key = 'n'", {std::to_string(n + 1)})
                             .status();
                       }).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string value;
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT value FROM settings WHERE key='n'", {}, "n"));
                   value = r.Str(0);
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(value, "200");
}

// A child process commits, then is killed with SIGKILL: the commit must be there afterwards.
TEST_F(StoreTest, CommittedStateSurvivesKill9) {
  db_.reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto db = OpenDatabase(path_);
    if (!db.ok()) _exit(3);
    for (int i = 0; i < 100; ++i) {
      if (!(*db)->Write([&](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {"k" + std::to_string(i)})
                       .status();
                 }).ok()) {
        _exit(4);
      }
    }
    kill(getpid(), SIGKILL);
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto db = OpenDatabase(path_);
  ASSERT_TRUE(db.ok());
  db_ = std::move(*db);
  EXPECT_EQ(Count("settings"), 100);
}

TEST(OpenDatabase, RejectsUnknownBackendsClearly) {
  auto db = OpenDatabase("postgres://localhost/x");
  EXPECT_FALSE(db.ok());
  EXPECT_FALSE(OpenDatabase("").ok());
  EXPECT_FALSE(OpenDatabase("/nonexistent-dir/x/y.db").ok());
}

}  // namespace
}  // namespace vouch::store
