#include "store/sqlite_backup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::store {
namespace {

// Every write transaction inserts two rows, so any committed state holds an even number; a copy
// taken while writers run must be one committed state: even, and passing integrity_check.
TEST(SqliteOnlineBackup, CopyTakenUnderConcurrentWritesIsOneCommittedState) {
  test::TempDir tmp("sqlite-backup");
  auto db = OpenSqlite(tmp.File("live.db"));
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Write([](Transaction& tx) {
                      return tx.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)").status();
                    }).ok());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> commits{0};
  std::thread writer([&] {
    while (!stop) {
      Status st = (*db)->Write([](Transaction& tx) -> Status {
        for (int i = 0; i < 2; ++i) {
          VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO t (pad) VALUES (?)", {Blob(2048, 0x5a)}).status());
        }
        return Status::Ok();
      });
      if (st.ok()) ++commits;
    }
  });
  std::vector<int64_t> counts;
  for (int i = 0; i < 5; ++i) {
    while (commits < 20 * (i + 1)) std::this_thread::yield();
    const std::string copy = tmp.File("copy" + std::to_string(i) + ".db");
    Status st = SqliteOnlineBackup(tmp.File("live.db"), copy);
    ASSERT_TRUE(st.ok()) << st.message();
    struct stat s {};
    ASSERT_EQ(::stat(copy.c_str(), &s), 0);
    EXPECT_EQ(s.st_mode & 0777, 0600u);
    auto c = OpenSqlite(copy, 1);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Read([&](Transaction& tx) -> Status {
                        VOUCH_ASSIGN_OR_RETURN(Row ok, tx.QueryOne("PRAGMA integrity_check", {}, "check"));
                        EXPECT_EQ(ok.Str(size_t{0}), "ok");
                        VOUCH_ASSIGN_OR_RETURN(Row n, tx.QueryOne("SELECT COUNT(*) FROM t", {}, "count"));
                        counts.push_back(n.Int(size_t{0}));
                        return Status::Ok();
                      }).ok());
  }
  stop = true;
  writer.join();
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_EQ(counts[i] % 2, 0) << "copy " << i << " holds half a transaction";
    EXPECT_GE(counts[i], 2 * 20 * static_cast<int64_t>(i + 1)) << "copy " << i << " misses committed rows";
  }
}

TEST(SqliteOnlineBackup, NeverOverwritesAndLeavesNothingOnFailure) {
  test::TempDir tmp("sqlite-backup");
  auto db = OpenSqlite(tmp.File("live.db"));
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Migrate().ok());
  const std::string existing = tmp.Write("exists.db", "keep me");
  EXPECT_FALSE(SqliteOnlineBackup(tmp.File("live.db"), existing).ok());
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(existing)), {}), "keep me");
  EXPECT_FALSE(SqliteOnlineBackup(tmp.File("absent.db"), tmp.File("out.db")).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp.File("out.db")));
  const std::string not_db = tmp.Write("garbage.db", std::string(8192, 'x'));
  EXPECT_FALSE(SqliteOnlineBackup(not_db, tmp.File("out2.db")).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp.File("out2.db")));
}

}  // namespace
}  // namespace vouch::store
