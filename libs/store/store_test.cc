#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "pgtest/test_postgres.h"
#include "store/audit.h"
#include "store/database.h"
#include "store/migrations.h"
#include "store/postgres_sql.h"
#include "testing/temp_dir.h"

namespace vouch::store {
namespace {

// Every StoreTest runs against SQLite and against a real PostgreSQL server (libs/pgtest).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool postgres() const { return GetParam() == "postgres"; }

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    path_ = (dir_ / "vouch.db").string();
    url_ = "sqlite:" + path_;
    if (postgres()) {
      std::string why;
      pg_ = pgtest::SharedTestPostgres(&why);
      if (pg_ == nullptr) {
        if (pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << why;
        GTEST_SKIP() << "no PostgreSQL server: " << why;
      }
      static int counter = 0;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      auto url = pg_->CreateDatabase("t" + std::to_string(++counter) + "_" + name.substr(0, 40));
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
    }
    auto db = OpenDatabase(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto v = db_->Migrate();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  void TearDown() override {
    db_.reset();
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

  test::TempDir tmp_{"store"};
  std::filesystem::path dir_ = tmp_.path();
  std::string path_;
  std::string url_;
  pgtest::TestPostgres* pg_ = nullptr;
  std::unique_ptr<Database> db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& param_info) { return param_info.param; });

TEST_P(StoreTest, MigrateIsIdempotentAndFileIsPrivate) {
  auto v = db_->Migrate();
  ASSERT_TRUE(v.ok());
  EXPECT_GE(*v, 1);
  EXPECT_EQ(db_->backend(), GetParam());
  if (postgres()) return;  // the server owns its files
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_P(StoreTest, FailedTransactionChangesNothing) {
  Status st = db_->Write([](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES ('a', '1')").status());
    return InvalidArgument("abort on purpose");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Count("settings"), 0);
}

TEST_P(StoreTest, UniqueViolationIsAlreadyExists) {
  auto insert = [&] {
    return db_->Write([](Transaction& tx) {
      return tx.Exec("INSERT INTO settings (key, value) VALUES ('k', 'v')").status();
    });
  };
  ASSERT_TRUE(insert().ok());
  Status st = insert();
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
}

TEST_P(StoreTest, ForeignKeysAreEnforced) {
  Status st = db_->Write([](Transaction& tx) {
    return tx.Exec("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ('t', 'nobody', 1, 2)")
        .status();
  });
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
}

TEST_P(StoreTest, ParametersAreNeverInterpretedAsSql) {
  std::string evil = "x'); DROP TABLE settings; --";
  ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)", {evil, std::string("v")}).status();
                 }).ok());
  EXPECT_EQ(Count("settings"), 1);
}

TEST_P(StoreTest, AuditChainDetectsEditsDeletionsAndTruncation) {
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

// A group's audit entries are written by one statement on PostgreSQL (arrays through unnest):
// text that array literals quote or escape comes back exactly, in chain order, and the chain
// verifies; more entries than one multi-row INSERT takes (64) go in the same way.
TEST_P(StoreTest, AuditEntriesWithAwkwardTextRoundTripInOneWrite) {
  FixedClock clock(FromUnixSeconds(1700000000));
  const std::vector<std::string> texts = {"",         "NULL",        "a,b",    "{x}",     "say \"hi\"", "back\\slash",
                                          "new\nline", "tab\tend",    " lead",  "trail ",  "caf\u00e9 \u2713", "\"",
                                          "\\",       "{\"k\":[1,2]}", "'quote'", "$1 ?"};
  const int n = 70;
  ASSERT_TRUE(db_->Write([&](Transaction& tx) -> Status {
                   for (int i = 0; i < n; ++i) {
                     const std::string& t = texts[static_cast<size_t>(i) % texts.size()];
                     VOUCH_RETURN_IF_ERROR(AppendAudit(tx, clock.Now(), "user:" + t, "act" + t, t, "ok", {{"t", t}, {"i", i}}));
                   }
                   return Status::Ok();
                 }).ok());
  Status st = db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT seq, actor, action, target, detail FROM audit ORDER BY seq"));
    EXPECT_EQ(rows.size(), static_cast<size_t>(n));
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::string& t = texts[i % texts.size()];
      EXPECT_EQ(rows[i].Int(0), static_cast<int64_t>(i + 1));
      EXPECT_EQ(rows[i].Str(1), "user:" + t);
      EXPECT_EQ(rows[i].Str(2), "act" + t);
      EXPECT_EQ(rows[i].Str(3), t);
      auto detail = nlohmann::json::parse(rows[i].Str(4), nullptr, false);
      EXPECT_EQ(detail, (nlohmann::json{{"t", t}, {"i", static_cast<int>(i)}})) << rows[i].Str(4);
    }
    VOUCH_ASSIGN_OR_RETURN(AuditVerification v, VerifyAuditChain(tx));
    EXPECT_TRUE(v.ok) << v.message;
    EXPECT_EQ(v.entries, n);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(StoreTest, AuditTailTruncationIsDetected) {
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

TEST_P(StoreTest, AuditVerifyFailsWhenTheHeadRecordOrTheNewestEntryIsMissing) {
  FixedClock clock(FromUnixSeconds(1700000000));
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(db_->Write([&](Transaction& tx) { return AppendAudit(tx, clock.Now(), "system", "x", "t", "ok"); }).ok());
    }
  };
  auto exec = [&](const std::string& sql) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) { return tx.Exec(sql).status(); }).ok());
  };
  // An empty log verifies.
  auto empty = VerifyAuditChain(*db_, 2);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->ok);
  EXPECT_EQ(empty->entries, 0);
  append(7);
  // Pages of 2 and of 1000 agree.
  for (int64_t page : {1, 2, 3, 1000}) {
    auto v = VerifyAuditChain(*db_, page);
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok) << page << ": " << v->message;
    EXPECT_EQ(v->entries, 7) << page;
  }
  // The newest entry removed: the head record names a missing entry.
  std::string head_value;
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT value FROM settings WHERE key = 'audit_head'", {}, "head"));
                   head_value = r.Str(0);
                   return Status::Ok();
                 }).ok());
  exec("DELETE FROM audit WHERE seq = 7");
  auto v = VerifyAuditChain(*db_, 2);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_NE(v->message.find("missing entry"), std::string::npos) << v->message;
  // The head record itself removed (with entries present): refused too.
  exec("DELETE FROM settings WHERE key = 'audit_head'");
  v = VerifyAuditChain(*db_, 2);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_NE(v->message.find("head record"), std::string::npos) << v->message;
  // A forged entry after the head (the head not moved) is refused.
  exec("DELETE FROM audit");
  exec("DELETE FROM settings WHERE key = 'audit_head'");
  append(3);
  exec("INSERT INTO audit (seq, at, actor, action, target, outcome, detail, prev_hash, hash) "
       "SELECT 4, at, actor, action, target, outcome, detail, hash, hash FROM audit WHERE seq = 3");
  v = VerifyAuditChain(*db_, 2);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_bad_seq, 4);
}

TEST_P(StoreTest, AuditVerifyFollowsEntriesAppendedDuringTheWalk) {
  FixedClock clock(FromUnixSeconds(1700000000));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) { return AppendAudit(tx, clock.Now(), "system", "x", "t", "ok"); }).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {
    while (!stop.load() && appended.load() < 2000) {
      if (db_->Write([&](Transaction& tx) { return AppendAudit(tx, clock.Now(), "system", "y", "t", "ok"); }).ok()) {
        ++appended;
      }
    }
  });
  // Walks page by page while the writer appends: every walk verifies, and sees at least the
  // entries that existed when it began.
  for (int i = 0; i < 5; ++i) {
    int before = 50 + appended.load();
    auto v = VerifyAuditChain(*db_, 7);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_TRUE(v->ok) << v->message;
    EXPECT_GE(v->entries, before);
  }
  stop = true;
  writer.join();
}

TEST_P(StoreTest, ConcurrentWritersDoNotLoseUpdates) {
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

// Concurrent writers (SQLite commits them in groups, one transaction and one fsync per group):
// a writer whose callback fails, or whose statement violates a constraint, changes nothing and
// gets its own error; every other writer's changes are there, each exactly once.
TEST_P(StoreTest, ConcurrentWritersFailAlone) {
  constexpr int kThreads = 8, kEach = 40;
  std::atomic<int> ok_count{0}, failed{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string key = "k" + std::to_string(t) + "_" + std::to_string(i);
        Status st = db_->Write([&](Transaction& tx) -> Status {
          VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {key}).status());
          if (i % 5 == 1) return InvalidArgument("abort on purpose");
          // i % 5 == 2: the second insert of the same key fails, after the first one succeeded.
          if (i % 5 == 2) return tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'w')", {key}).status();
          return Status::Ok();
        });
        if (st.ok()) {
          ok_count.fetch_add(1);
        } else if (st.code() == StatusCode::kInvalidArgument) {
          failed.fetch_add(1);
        } else if (st.code() == StatusCode::kAlreadyExists) {
          duplicates.fetch_add(1);
        } else {
          ADD_FAILURE() << st.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok_count.load(), kThreads * kEach * 3 / 5);
  EXPECT_EQ(failed.load(), kThreads * kEach / 5);
  EXPECT_EQ(duplicates.load(), kThreads * kEach / 5);
  EXPECT_EQ(Count("settings"), kThreads * kEach * 3 / 5);
  int64_t wrong = -1;
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT key FROM settings"));
                   wrong = 0;
                   for (const Row& r : rows) {
                     int i = std::stoi(r.Str(0).substr(r.Str(0).find('_') + 1));
                     if (i % 5 == 1 || i % 5 == 2) ++wrong;
                   }
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(wrong, 0);
  // The store is still usable after all of that.
  EXPECT_TRUE(db_->Write([](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES ('after', 'v')").status();
                 }).ok());
}

// A child process commits, then is killed with SIGKILL: the commit must be there afterwards.
TEST_P(StoreTest, CommittedStateSurvivesKill9) {
  db_.reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto db = OpenDatabase(url_);
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
  auto db = OpenDatabase(url_);
  ASSERT_TRUE(db.ok());
  db_ = std::move(*db);
  EXPECT_EQ(Count("settings"), 100);
}

TEST_P(StoreTest, ValuesRoundTripWithTheirTypes) {
  Blob blob = {0, 1, 2, 0xff, 0, '\\', 'x'};
  const int64_t big = int64_t{1} << 62;
  ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                   return tx.Exec("INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, "
                                  "ca_key_sealed, crl_number, crl_der) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  {std::string("z1"), std::string("n\u00e9'\"?"), -big, std::string("me"),
                                   std::string("{}"), std::string("pem"), blob, big, nullptr})
                       .status();
                 }).ok());
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT name, created_at, ca_key_sealed, crl_number, "
                                                             "crl_der, crl_updated_at FROM zones WHERE id = ?",
                                                             {std::string("z1")}, "zone"));
                   EXPECT_EQ(r.Str("name"), "n\u00e9'\"?");
                   EXPECT_EQ(r.Int("created_at"), -big);
                   EXPECT_EQ(r.Bytes("ca_key_sealed"), blob);
                   EXPECT_EQ(r.Int("crl_number"), big);
                   EXPECT_TRUE(r.IsNull("crl_der"));
                   EXPECT_TRUE(r.IsNull("crl_updated_at"));
                   VOUCH_ASSIGN_OR_RETURN(Row c, tx.QueryOne("SELECT COUNT(*) AS n, MAX(crl_number) AS m FROM zones "
                                                             "WHERE name LIKE ?",
                                                             {std::string("n%")}, "count"));
                   EXPECT_EQ(c.Int("n"), 1);
                   EXPECT_EQ(c.Int("m"), big);
                   return Status::Ok();
                 }).ok());
}

// Two Database objects on one store behave like two vouchd instances: concurrent read-modify-write
// transactions from both never lose an update, count an approval twice or fork the audit chain.
TEST_P(StoreTest, TwoInstancesOnOneStoreStayConsistent) {
  auto other = OpenDatabase(url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::vector<Database*> instances = {db_.get(), other->get()};
  ASSERT_TRUE(db_->Write([](Transaction& tx) {
                   return tx.Exec("INSERT INTO settings (key, value) VALUES ('n', '0')").status();
                 }).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      Database* db = instances[static_cast<size_t>(t % 2)];
      for (int i = 0; i < 25; ++i) {
        Status st = db->Write([&](Transaction& tx) -> Status {
          VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT value FROM settings WHERE key='n'", {}, "n"));
          VOUCH_RETURN_IF_ERROR(
              tx.Exec("UPDATE settings SET value = ? WHERE key = 'n'", {std::to_string(std::stoll(r.Str(0)) + 1)})
                  .status());
          return AppendAudit(tx, FromUnixSeconds(1700000000), "t" + std::to_string(t), "count", "n", "ok");
        });
        if (!st.ok()) {
          ++failures;
          ADD_FAILURE() << st.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (Database* db : instances) {
    ASSERT_TRUE(db->Read([&](Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT value FROM settings WHERE key='n'", {}, "n"));
                     EXPECT_EQ(r.Str(0), "150");
                     VOUCH_ASSIGN_OR_RETURN(AuditVerification v, VerifyAuditChain(tx));
                     EXPECT_TRUE(v.ok) << v.message;
                     EXPECT_EQ(v.entries, 150);
                     return Status::Ok();
                   }).ok());
  }
}

// Row-keyed groups (WriteMode::kRowKeyed) of two instances, and of one instance, run at the same
// time on PostgreSQL: each callback waits inside its transaction until the other one is inside
// its own, which the exclusive writer lock would never allow. They hold the writer lock shared.
TEST_P(StoreTest, RowKeyedGroupsRunConcurrentlyWithoutTheExclusiveLock) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one writer";
  auto other = OpenDatabase(url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  for (Database* second : {other->get(), db_.get()}) {
    std::atomic<int> inside{0};
    std::atomic<int> met{0};
    auto writer = [&](Database* db, const std::string& key) {
      Status st = db->Write(
          [&](Transaction& tx) -> Status {
            VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {key}).status());
            VOUCH_ASSIGN_OR_RETURN(Rows locks, tx.Query("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND "
                                                        "pid = pg_backend_pid() AND granted"));
            EXPECT_EQ(locks.size(), 1u);
            if (!locks.empty()) {
              EXPECT_EQ(locks[0].Str(0), "ShareLock");
            }
            ++inside;
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (inside.load() < 2 && std::chrono::steady_clock::now() < deadline) {
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            if (inside.load() >= 2) ++met;
            return Status::Ok();
          },
          WriteMode::kRowKeyed);
      EXPECT_TRUE(st.ok()) << st.ToString();
    };
    std::string suffix = second == db_.get() ? "same" : "other";
    std::thread a(writer, db_.get(), "a_" + suffix);
    // The second starts once the first is inside its transaction (else one group could take both).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (inside.load() < 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::thread b(writer, second, "b_" + suffix);
    a.join();
    b.join();
    EXPECT_EQ(met.load(), 2) << "the row-keyed groups (" << suffix << " instance) did not overlap";
  }
  EXPECT_EQ(Count("settings"), 4);
}

// A serial group holds the writer lock exclusively: a row-keyed group of another instance waits
// for it (seen as an ungranted advisory lock in pg_locks while the serial group is still open),
// then commits after it.
TEST_P(StoreTest, SerialGroupsExcludeRowKeyedGroups) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one writer";
  auto other = OpenDatabase(url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::atomic<bool> serial_inside{false}, row_keyed_done{false};
  bool saw_waiter = false;
  std::thread serial([&] {
    Status st = db_->Write([&](Transaction& tx) -> Status {
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES ('s', '1')").status());
      serial_inside = true;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!saw_waiter && std::chrono::steady_clock::now() < deadline) {
        VOUCH_ASSIGN_OR_RETURN(Rows w, tx.Query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"));
        saw_waiter = !w.empty();
        if (!saw_waiter) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_FALSE(row_keyed_done.load());
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!serial_inside.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(serial_inside.load());
  Status st = (*other)->Write(
      [&](Transaction& tx) -> Status {
        // Runs only after the serial group committed: its row is visible.
        VOUCH_ASSIGN_OR_RETURN(Rows s, tx.Query("SELECT value FROM settings WHERE key = 's'"));
        EXPECT_EQ(s.size(), 1u);
        return tx.Exec("INSERT INTO settings (key, value) VALUES ('r', '1')").status();
      },
      WriteMode::kRowKeyed);
  row_keyed_done = true;
  serial.join();
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(saw_waiter) << "the row-keyed group never waited for the serial one";
}

// Serial and row-keyed groups of two instances append to the audit chain at once: the chain
// stays one valid chain holding every committed entry exactly once, a group's entries are
// contiguous (chained at the group's end, under the audit lock, in commit order), and the entries
// of a member that failed are not there.
TEST_P(StoreTest, AuditChainStaysOneChainUnderConcurrentMixedGroups) {
  auto other = OpenDatabase(url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::vector<Database*> instances = {db_.get(), other->get()};
  constexpr int kThreads = 6, kEach = 30;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Database* db = instances[static_cast<size_t>(t % 2)];
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "t" + std::to_string(t) + "_" + std::to_string(i);
        const WriteMode mode = (t + i) % 3 == 0 ? WriteMode::kSerial : WriteMode::kRowKeyed;
        Status st = db->Write(
            [&](Transaction& tx) -> Status {
              VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {key}).status());
              VOUCH_RETURN_IF_ERROR(AppendAudit(tx, FromUnixSeconds(1700000000), "system", "first", key, "ok"));
              VOUCH_RETURN_IF_ERROR(AppendAudit(tx, FromUnixSeconds(1700000000), "system", "second", key, "ok"));
              if (i % 7 == 3) return InvalidArgument("abort on purpose");
              return Status::Ok();
            },
            mode);
        if (st.ok()) {
          ++committed;
        } else if (st.code() != StatusCode::kInvalidArgument) {
          ADD_FAILURE() << st.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto v = VerifyAuditChain(*db_, 50);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok) << v->message;
  EXPECT_EQ(v->entries, 2 * committed.load());
  EXPECT_EQ(Count("settings"), committed.load() + 1);  // and audit_head
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT seq, action, target FROM audit ORDER BY seq"));
                   for (size_t i = 0; i + 1 < rows.size(); i += 2) {
                     EXPECT_EQ(rows[i].Str(1), "first");
                     EXPECT_EQ(rows[i + 1].Str(1), "second");
                     EXPECT_EQ(rows[i].Str(2), rows[i + 1].Str(2)) << "entries of one write interleaved";
                     int i_of = std::stoi(rows[i].Str(2).substr(rows[i].Str(2).find('_') + 1));
                     EXPECT_NE(i_of % 7, 3) << "a failed write's entry was chained";
                   }
                   return Status::Ok();
                 }).ok());
}

// An audit entry appended in a write is chained when the write's group ends: not visible to the
// callback itself, visible (and chained) once the write returns.
TEST_P(StoreTest, AuditEntriesAreChainedAtTheEndOfTheGroup) {
  FixedClock clock(FromUnixSeconds(1700000000));
  int64_t seen_inside = -1;
  ASSERT_TRUE(db_->Write([&](Transaction& tx) -> Status {
                   VOUCH_RETURN_IF_ERROR(AppendAudit(tx, clock.Now(), "system", "x", "t", "ok"));
                   VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT COUNT(*) FROM audit", {}, "count"));
                   seen_inside = r.Int(0);
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(seen_inside, 0);
  EXPECT_EQ(Count("audit"), 1);
  auto v = VerifyAuditChain(*db_);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->message;
}

// PostgreSQL restarted under a writer: the pool reconnects by itself; every acknowledged commit
// is there, and a failure is only ever "unavailable" (a commit whose outcome was unknown).
TEST_P(StoreTest, ReconnectsAfterAServerRestart) {
  if (!postgres()) GTEST_SKIP() << "PostgreSQL only";
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      Status st = db_->Write([&](Transaction& tx) {
        return tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {"k" + std::to_string(i)}).status();
      });
      if (st.ok()) {
        ++ok;
      } else if (st.code() == StatusCode::kUnavailable) {
        ++unavailable;
      } else {
        ++other;
        ADD_FAILURE() << st.ToString();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(pg_->Restart().ok());
  int before = ok.load();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ok.load() < before + 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  writer.join();
  EXPECT_GE(ok.load(), before + 20) << "no writes succeeded after the restart";
  EXPECT_EQ(other.load(), 0);
  EXPECT_LE(unavailable.load(), 1);
  int64_t rows = Count("settings");
  EXPECT_GE(rows, ok.load());
  EXPECT_LE(rows, ok.load() + unavailable.load());
  EXPECT_TRUE(db_->Ping().ok());
}

// QueryOnce (a single SELECT, no transaction of its own on PostgreSQL): the same rows, types and
// errors as the statement inside Read(), and nothing but a SELECT.
TEST_P(StoreTest, QueryOnceReadsLikeOneQueryInARead) {
  Blob blob = {0, 1, 0xff, '\\', 'x'};
  ASSERT_TRUE(db_->Write([&](Transaction& tx) -> Status {
                   for (int i = 0; i < 3; ++i) {
                     VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO zones (id, name, created_at, created_by, policy, "
                                                   "ca_cert_pem, ca_key_sealed, crl_number) VALUES (?, ?, ?, 'me', "
                                                   "'{}', 'pem', ?, ?)",
                                                   {"z" + std::to_string(i), "n" + std::to_string(i), int64_t{-7 + i},
                                                    blob, int64_t{1} << 62})
                                               .status());
                   }
                   return Status::Ok();
                 }).ok());
  const std::string sql = "SELECT id, name AS zone_name, created_at, ca_key_sealed, crl_der FROM zones "
                          "WHERE created_at >= ? ORDER BY id";
  for (int round = 0; round < 7; ++round) {  // PostgreSQL: prepared once, then generic plans
    auto rows = db_->QueryOnce(sql, {int64_t{-6}});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    ASSERT_EQ(rows->size(), 2u);
    EXPECT_EQ((*rows)[0].Str("id"), "z1");
    EXPECT_EQ((*rows)[1].Str("zone_name"), "n2");
    EXPECT_EQ((*rows)[0].Int("created_at"), -6);
    EXPECT_EQ((*rows)[1].Bytes("ca_key_sealed"), blob);
    EXPECT_TRUE((*rows)[0].IsNull("crl_der"));
    Rows in_read;
    ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(in_read, tx.Query(sql, {int64_t{-6}}));
                     return Status::Ok();
                   }).ok());
    ASSERT_EQ(in_read.size(), rows->size());
    for (size_t i = 0; i < in_read.size(); ++i) {
      for (size_t c = 0; c < 5; ++c) {
        EXPECT_EQ(in_read[i].IsNull(c), (*rows)[i].IsNull(c));
        EXPECT_EQ(in_read[i].Str(c), (*rows)[i].Str(c));
        EXPECT_EQ(in_read[i].Int(c), (*rows)[i].Int(c));
      }
    }
  }
  auto none = db_->QueryOnce("  select id FROM zones WHERE id = ?", {std::string("nope")});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  auto bad = db_->QueryOnce("SELECT no_such_column FROM zones", {});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal) << bad.status().ToString();
  // The pool is fine after the error.
  EXPECT_TRUE(db_->QueryOnce(sql, {int64_t{-100}}).ok());
  for (const char* write : {"DELETE FROM zones", "UPDATE zones SET name = 'x'", "WITH d AS (DELETE FROM zones "
                            "RETURNING id) SELECT id FROM d", "SELECTED", "selection FROM zones"}) {
    auto refused = db_->QueryOnce(write, {});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << write;
  }
  EXPECT_EQ(Count("zones"), 3);
}

// PostgreSQL: QueryOnce sends no BEGIN (the statement runs in autocommit, at the server's default
// READ COMMITTED, where a Read() is REPEATABLE READ READ ONLY), and it is retried on a fresh
// connection when the server has closed the pooled one.
TEST_P(StoreTest, QueryOnceRunsOutsideATransactionAndSurvivesALostConnection) {
  if (!postgres()) GTEST_SKIP() << "PostgreSQL only";
  const std::string isolation = "SELECT current_setting('transaction_isolation') AS iso, "
                                "current_setting('transaction_read_only') AS ro";
  auto once = db_->QueryOnce(isolation, {});
  ASSERT_TRUE(once.ok()) << once.status().ToString();
  EXPECT_EQ((*once)[0].Str("iso"), "read committed");
  EXPECT_EQ((*once)[0].Str("ro"), "off");
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(isolation, {}, "setting"));
                   EXPECT_EQ(r.Str("iso"), "repeatable read");
                   EXPECT_EQ(r.Str("ro"), "on");
                   return Status::Ok();
                 }).ok());
  auto other = OpenDatabase(url_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const std::string pid_sql = "SELECT pg_backend_pid() AS pid";
  for (int kill = 0; kill < 3; ++kill) {
    auto before = db_->QueryOnce(pid_sql, {});
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    // Every backend of this database but the killer's: the pooled connections die under the pool.
    ASSERT_TRUE((*other)->Read([&](Transaction& tx) -> Status {
                          return tx.Query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                          "datname = current_database() AND pid <> pg_backend_pid()", {})
                              .status();
                        }).ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int64_t left = -1;
    while (left != 0 && std::chrono::steady_clock::now() < deadline) {
      auto n = (*other)->QueryOnce("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                                   "pid <> pg_backend_pid()", {});
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      left = (*n)[0].Int(0);
      if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(left, 0);
    auto after = db_->QueryOnce(pid_sql, {});
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_NE((*after)[0].Int("pid"), (*before)[0].Int("pid"));
    auto rows = db_->QueryOnce("SELECT COUNT(*) AS n FROM zones WHERE id <> ?", {std::string("x")});
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ((*rows)[0].Int("n"), 0);
  }
}

// PostgreSQL sends a group's audit entries and COMMIT in one pipeline. A trigger on `audit` makes
// that statement fail: with an error (the group rolls back, COMMIT skipped), with a serialization
// failure twice (the group runs again and commits once), or by ending its own connection (the
// outcome is unknown: reported as unavailable, the callback never runs twice).
TEST_P(StoreTest, AuditFlushAndCommitInOnePipelineKeepTheirGuarantees) {
  if (!postgres()) GTEST_SKIP() << "PostgreSQL only";
  ASSERT_TRUE(db_->Write([&](Transaction& tx) -> Status {
                   VOUCH_RETURN_IF_ERROR(tx.Exec("CREATE SEQUENCE conflicts").status());
                   VOUCH_RETURN_IF_ERROR(tx.Exec("CREATE SEQUENCE deaths").status());
                   return tx.Exec(R"(CREATE FUNCTION audit_trap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.action = 'boom' THEN RAISE EXCEPTION 'trapped'; END IF;
  IF NEW.action = 'conflict' AND nextval('conflicts') <= 2 THEN
    RAISE EXCEPTION 'conflict' USING ERRCODE = '40001';
  END IF;
  IF NEW.action = 'die' AND nextval('deaths') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
  RETURN NEW;
END $$)")
                       .status();
                 }).ok());
  ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                   return tx.Exec("CREATE TRIGGER audit_trap BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION "
                                  "audit_trap()")
                       .status();
                 }).ok());
  FixedClock clock(FromUnixSeconds(1700000000));
  auto write = [&](const std::string& key, const std::string& action, int* calls) {
    return db_->Write([&](Transaction& tx) -> Status {
      ++*calls;
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, 'v')", {key}).status());
      return AppendAudit(tx, clock.Now(), "system", action, key, "ok");
    });
  };
  auto settings = [&](const std::string& key) {
    auto r = db_->QueryOnce("SELECT COUNT(*) FROM settings WHERE key = ?", {key});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? (*r)[0].Int(0) : -1;
  };
  int calls = 0;
  ASSERT_TRUE(write("k-ok", "fine", &calls).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(settings("k-ok"), 1);

  calls = 0;
  Status st = write("k-boom", "boom", &calls);
  EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
  EXPECT_NE(st.message().find("trapped"), std::string::npos) << st.ToString();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(settings("k-boom"), 0);  // rolled back: the server skipped COMMIT

  calls = 0;
  ASSERT_TRUE(write("k-conflict", "conflict", &calls).ok());
  EXPECT_EQ(calls, 3);  // two serialization failures, then committed
  EXPECT_EQ(settings("k-conflict"), 1);

  calls = 0;
  st = write("k-die", "die", &calls);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("outcome is unknown"), std::string::npos) << st.ToString();
  EXPECT_EQ(calls, 1);  // never retried: COMMIT had been sent
  EXPECT_LE(settings("k-die"), 1);

  calls = 0;
  ASSERT_TRUE(write("k-after", "fine", &calls).ok());  // the pool reconnects
  EXPECT_EQ(settings("k-after"), 1);
  auto v = VerifyAuditChain(*db_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok) << v->message;
  auto n = db_->QueryOnce("SELECT COUNT(*) FROM audit WHERE action IN ('fine', 'conflict')", {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[0].Int(0), 3);
}

TEST(TranslateSqlForPostgres, RewritesPlaceholdersAndTypesOutsideLiterals) {
  EXPECT_EQ(TranslateSqlForPostgres("SELECT a FROM t WHERE b = ? AND c = ?"), "SELECT a FROM t WHERE b = $1 AND c = $2");
  EXPECT_EQ(TranslateSqlForPostgres("CREATE TABLE t (a INTEGER NOT NULL, b BLOB, c integer, d TEXT)"),
            "CREATE TABLE t (a BIGINT NOT NULL, b BYTEA, c BIGINT, d TEXT)");
  EXPECT_EQ(TranslateSqlForPostgres("SELECT '?', 'it''s ?', \"BLOB?\" FROM t WHERE x = ? -- why?\n AND y = ?"),
            "SELECT '?', 'it''s ?', \"BLOB?\" FROM t WHERE x = $1 -- why?\n AND y = $2");
  EXPECT_EQ(TranslateSqlForPostgres("SELECT integers, blobby, my_integer FROM t"),
            "SELECT integers, blobby, my_integer FROM t");
  EXPECT_EQ(TranslateSqlForPostgres("SELECT 'unterminated ?"), "SELECT 'unterminated ?");
}

TEST(OpenDatabase, RejectsUnknownBackendsClearly) {
  auto db = OpenDatabase("postgres://vouch@127.0.0.1:1/x");  // nothing listens on port 1
  EXPECT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(OpenDatabase("postgres://[bad").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(OpenDatabase("").ok());
  EXPECT_FALSE(OpenDatabase("/nonexistent-dir/x/y.db").ok());
}

// Migration 7 (issue 16): instances leave room on each page for heartbeat versions on
// PostgreSQL (fillfactor 70, so that a heartbeat is a HOT update); SQLite skips the statement
// (its kMigrationOnlyPrefix names PostgreSQL) and its table is unchanged.
TEST_P(StoreTest, MigrationSevenSetsInstancesFillfactorOnPostgresOnly) {
  const auto& m = Migrations();
  ASSERT_GE(m.size(), 7u);
  for (const std::string& stmt : m[6]) EXPECT_EQ(stmt.rfind(std::string(kMigrationOnlyPrefix) + "postgres*/", 0), 0u);
  Status st = db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows v, tx.Query("SELECT version FROM schema_version"));
    EXPECT_EQ(v.size(), 1u);
    if (!v.empty()) { EXPECT_EQ(v[0].Int(0), static_cast<int64_t>(m.size())); }
    if (postgres()) {
      VOUCH_ASSIGN_OR_RETURN(Rows r, tx.Query("SELECT array_to_string(c.reloptions, ',') FROM pg_class c "
                                              "WHERE c.oid = to_regclass('instances')"));
      EXPECT_EQ(r.size(), 1u);
      if (!r.empty()) { EXPECT_EQ(r[0].Str(0), "fillfactor=70"); }
    } else {
      VOUCH_ASSIGN_OR_RETURN(Rows r, tx.Query("SELECT COUNT(*) FROM pragma_table_info('instances')"));
      EXPECT_EQ(r.size(), 1u);
      if (!r.empty()) { EXPECT_EQ(r[0].Int(0), 9); }
    }
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// SQLite's memory statistics are off (store/sqlite_database.cc): with them every allocation of
// every connection takes one process-wide mutex. Nothing counted after a store was used.
TEST(SqliteSettings, MemoryStatisticsAreOff) {
  test::TempDir tmp("sqlite_memstatus");
  auto db = OpenSqlite(tmp.File("m.db"));
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE((*db)->Migrate().ok());
  ASSERT_TRUE((*db)->Write([](Transaction& tx) { return tx.Exec("CREATE TABLE t (x TEXT)").status(); }).ok());
  EXPECT_EQ(sqlite3_memory_used(), 0);
}

// Migration 8 (issue 16): on SQLite the heartbeat batch lookup (the statement of
// api/manager_heartbeats.cc, which names these indexes) reads the covering indexes only, never a
// row of instances or certificates, and finds the same rows as through the primary keys;
// PostgreSQL skips the statements and has neither index.
TEST_P(StoreTest, MigrationEightHeartbeatLookupReadsCoveringIndexesOnSqliteOnly) {
  const auto& m = Migrations();
  ASSERT_GE(m.size(), 8u);
  for (const std::string& stmt : m[7]) EXPECT_EQ(stmt.rfind(std::string(kMigrationOnlyPrefix) + "sqlite*/", 0), 0u);
  if (postgres()) {
    Status st = db_->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows r, tx.Query("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%heartbeat_lookup'"));
      EXPECT_TRUE(r.empty());
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return;
  }
  const std::string lookup =
      "SELECT i.id, i.serial, c.status, c.zone_id FROM instances i INDEXED BY instances_heartbeat_lookup "
      "JOIN certificates c INDEXED BY certificates_heartbeat_lookup ON c.serial = i.serial "
      "WHERE (i.node_id || '') = ? AND i.id IN (?, ?, ?, ?) ORDER BY i.id";
  const std::vector<Value> params = {std::string("node-a"), std::string("inst-0"), std::string("inst-1"),
                                     std::string("inst-2"), std::string("inst-9")};
  // Rows without their zones, apps, builds and nodes: the foreign keys are checked at COMMIT
  // (deferred), and the transaction is rolled back after the checks.
  Status st = db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("PRAGMA defer_foreign_keys = ON").status());
    for (int k = 0; k < 3; ++k) {
      const std::string n = std::to_string(k);
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO certificates (serial, zone_id, kind, subject, sans, not_before, "
                                    "not_after, pem, status, issued_to, created_at) VALUES (?, ?, 'workload', 's', "
                                    "'[]', 0, 9, 'PEM', ?, 'x', 0)",
                                    {"serial-" + n, "zone-" + n, std::string(k == 1 ? "revoked" : "valid")})
                                .status());
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO instances (id, app_id, build_id, node_id, serial, status, first_seen) "
                                    "VALUES (?, 'a', 'b', ?, ?, 'running', 0)",
                                    {"inst-" + n, std::string(k == 2 ? "node-b" : "node-a"), "serial-" + n})
                                .status());
    }
    std::string plan;
    VOUCH_ASSIGN_OR_RETURN(Rows p, tx.Query("EXPLAIN QUERY PLAN " + lookup, params));
    for (const Row& r : p) plan += r.Str(r.size() - 1) + "\n";
    EXPECT_NE(plan.find("USING COVERING INDEX instances_heartbeat_lookup"), std::string::npos) << plan;
    EXPECT_NE(plan.find("USING COVERING INDEX certificates_heartbeat_lookup"), std::string::npos) << plan;
    VOUCH_ASSIGN_OR_RETURN(Rows got, tx.Query(lookup, params));
    VOUCH_ASSIGN_OR_RETURN(Rows want, tx.Query("SELECT i.id, i.serial, c.status, c.zone_id FROM instances i "
                                               "JOIN certificates c ON c.serial = i.serial WHERE i.node_id = ? AND "
                                               "i.id IN (?, ?, ?, ?) ORDER BY i.id",
                                               params));
    EXPECT_EQ(got.size(), 2u);  // inst-2 is node-b's, inst-9 does not exist
    EXPECT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size() && k < want.size(); ++k) {
      for (size_t c = 0; c < 4; ++c) EXPECT_EQ(got[k].Str(c), want[k].Str(c)) << k << " " << c;
    }
    if (got.size() == 2) {
      EXPECT_EQ(got[1].Str(2), "revoked");
      EXPECT_EQ(got[1].Str(3), "zone-1");
    }
    return Aborted("checked; roll back");
  });
  EXPECT_EQ(st.message(), "checked; roll back") << st.ToString();
}

// Migration 3 (issue 13) on a store with data, as an upgrade meets it: tasks are rebuilt (a new
// kind, app_id optional) keeping their approvals and the approvals' foreign key; zones that
// allow sim get the shipped sim agent's node identity, other zones none.
TEST_P(StoreTest, MigrationThreeUpgradesTasksAndSeedsSimZones) {
  std::unique_ptr<Database> old;
  if (postgres()) {
    auto url = pg_->CreateDatabase("m3upgrade_" + std::to_string(getpid()));
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    auto db = OpenDatabase(*url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    old = std::move(*db);
  } else {
    auto db = OpenDatabase("sqlite:" + (dir_ / "old.db").string());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    old = std::move(*db);
  }
  const auto& m = Migrations();
  ASSERT_GE(m.size(), 3u);
  Status st = old->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("CREATE TABLE schema_version (version INTEGER NOT NULL)").status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO schema_version (version) VALUES (2)").status());
    for (size_t i = 0; i < 2; ++i) {
      for (const std::string& stmt : m[i]) VOUCH_RETURN_IF_ERROR(tx.Exec(stmt).status());
    }
    const char* zone = "INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, ca_key_sealed) "
                       "VALUES (?, ?, 1, 'x', ?, 'pem', ?)";
    VOUCH_RETURN_IF_ERROR(
        tx.Exec(zone, {std::string("z1"), std::string("dev"), std::string(R"({"allow_debug":false,"allow_sim":true})"),
                       Blob{1}})
            .status());
    VOUCH_RETURN_IF_ERROR(
        tx.Exec(zone, {std::string("z2"), std::string("prod"), std::string(R"({"allow_debug":false,"allow_sim":false})"),
                       Blob{1}})
            .status());
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO apps (id, name, zone_id, domains, created_at, created_by) VALUES ('a1', 'web', 'z1', '[]', 1, 'x')")
            .status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, summary, approvals_required, "
                                  "created_at, created_by) VALUES ('t1', 'build', 'pending', 'z1', 'a1', 's', 2, 1, 'x')")
                              .status());
    return tx.Exec("INSERT INTO task_approvals (task_id, user_name, at) VALUES ('t1', 'bob', 1)").status();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto v = old->Migrate();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, static_cast<int>(m.size()));
  st = old->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows a, tx.Query("SELECT task_id, user_name FROM task_approvals"));
    EXPECT_EQ(a.size(), 1u);
    VOUCH_ASSIGN_OR_RETURN(Rows t, tx.Query("SELECT kind, app_id FROM tasks WHERE id = 't1'"));
    EXPECT_EQ(t.size(), 1u);
    VOUCH_ASSIGN_OR_RETURN(Rows ids, tx.Query("SELECT zone_id, platform, status, rule FROM node_identities"));
    EXPECT_EQ(ids.size(), 1u);
    if (ids.size() == 1) {
      EXPECT_EQ(ids[0].Str("zone_id"), "z1");
      EXPECT_EQ(ids[0].Str("status"), "active");
      EXPECT_NE(ids[0].Str("rule").find("\"mrenclave\""), std::string::npos);
    }
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  // The new kind without an app; approvals still need their task.
  EXPECT_TRUE(old->Write([](Transaction& tx) -> Status {
                   return tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, summary, approvals_required, created_at, "
                                  "created_by, node_identity_id) VALUES ('t2', 'node_identity', 'pending', 'z2', 's', 1, 1, "
                                  "'x', 'nid_1')")
                       .status();
                 }).ok());
  EXPECT_FALSE(old->Write([](Transaction& tx) -> Status {
                    return tx.Exec("INSERT INTO task_approvals (task_id, user_name, at) VALUES ('nope', 'bob', 1)").status();
                  }).ok());
  EXPECT_FALSE(old->Write([](Transaction& tx) -> Status {
                    return tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, summary, approvals_required, created_at, "
                                   "created_by) VALUES ('t3', 'other', 'pending', 'z2', 's', 1, 1, 'x')")
                        .status();
                  }).ok());
}

}  // namespace
}  // namespace vouch::store
