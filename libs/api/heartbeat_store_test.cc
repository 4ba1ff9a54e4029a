// RecordHeartbeats (api/heartbeat_store.h): one statement per table per batch with the results of
// one UPDATE per heartbeat in seq order. Runs on SQLite, and on PostgreSQL as pg.* (VOUCH_TEST_STORE).
#include "api/heartbeat_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "pgtest/test_postgres.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using store::Row;
using store::Rows;
using store::Transaction;

class HeartbeatStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string url = "sqlite:" + dir_.path() + "/vouch.db";
    if (const char* s = std::getenv("VOUCH_TEST_STORE"); s && std::string(s) == "postgres") {
      auto pg = pgtest::FreshTestDatabase();
      if (!pg.ok() && pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << pg.status().ToString();
      if (!pg.ok()) GTEST_SKIP() << "no PostgreSQL server: " << pg.status().ToString();
      url = *pg;
    }
    auto db = store::OpenDatabase(url);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    ASSERT_TRUE(db_->Write([](Transaction& tx) -> Status {
                     VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, "
                                                   "ca_key_sealed) VALUES ('z', 'z', 1, 't', '{}', 'pem', ?)",
                                                   {store::Blob{1}})
                                               .status());
                     VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO apps (id, name, zone_id, domains, created_at, created_by) "
                                                   "VALUES ('a', 'a', 'z', '[]', 1, 't')")
                                               .status());
                     VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO builds (id, app_id, platform, mrenclave, mrsigner, isvprodid, "
                                                   "isvsvn, debug, status, created_at, created_by) VALUES ('b', 'a', 'sgx', "
                                                   "'aa', 'bb', 0, 0, 0, 'approved', 1, 't')")
                                               .status());
                     for (const char* n : {"n1", "n2"}) {
                       VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO nodes (id, zone_id, platform, tcb_status, advisory_ids, "
                                                     "public_key_sha256, status, created_at) VALUES (?, 'z', 'sgx', "
                                                     "'UpToDate', '[]', 'k', 'active', 1)",
                                                     {std::string(n)})
                                                 .status());
                     }
                     return Status::Ok();
                   }).ok());
  }

  void Instance(const std::string& id, const std::string& node, int64_t last_seq, const std::string& status) {
    ASSERT_TRUE(db_->Write([&](Transaction& tx) {
                     return tx.Exec("INSERT INTO instances (id, app_id, build_id, node_id, status, last_seq, first_seen) "
                                    "VALUES (?, 'a', 'b', ?, ?, ?, 1)",
                                    {id, node, status, last_seq})
                         .status();
                   }).ok());
  }

  Row Get(const std::string& id) {
    Row out;
    EXPECT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(out, tx.QueryOne("SELECT * FROM instances WHERE id = ?", {id}, "instance"));
                     return Status::Ok();
                   }).ok());
    return out;
  }

  test::TempDir dir_{"hbstore"};
  std::unique_ptr<store::Database> db_;
};

TEST_F(HeartbeatStoreTest, OneBatchHasTheResultsOfOneUpdatePerHeartbeatInSeqOrder) {
  Instance("single", "n1", 4, "running");
  Instance("old", "n1", 3, "running");
  Instance("stopped", "n1", 1, "stopped");
  Instance("foreign", "n2", 0, "running");
  Instance("rep", "n1", 2, "running");
  Instance("stops", "n1", 5, "running");
  const int64_t now = 1000;
  std::vector<HeartbeatWrite> hbs = {
      {"single", 5, 2000, false, {}},   // ok; its time is capped at now
      {"old", 3, 900, false, {}},       // replayed (not above 3)
      {"stopped", 9, 900, false, {}},   // instance_stopped
      {"foreign", 1, 900, false, {}},   // another node's instance: replayed
      {"nosuch", 1, 900, false, {}},    // no such instance: replayed
      {"rep", 4, 904, false, {}},       // rep: 4 ok, 2 replayed, 3 ok, 4 (again) replayed
      {"rep", 2, 902, false, {}},
      {"rep", 3, 903, false, {}},
      {"rep", 4, 905, false, {}},
      {"stops", 7, 907, false, {}},     // stops: 6 (stopping) ok, then 7 instance_stopped
      {"stops", 6, 906, true, {}},
      {"ghost", 1, 900, false, {}},     // repeated, no such instance: replayed twice
      {"ghost", 2, 900, false, {}},
  };
  int64_t accepted = -1;
  ASSERT_TRUE(db_->Write(
                     [&](Transaction& tx) -> Status {
                       VOUCH_ASSIGN_OR_RETURN(accepted, RecordHeartbeats(tx, db_->backend(), "n1", now,
                                                                         nlohmann::json{{"v", 1}}, hbs));
                       return Status::Ok();
                     },
                     store::WriteMode::kRowKeyed)
                  .ok());
  std::vector<std::string> results;
  for (const auto& h : hbs) results.emplace_back(h.result);
  EXPECT_EQ(results, (std::vector<std::string>{"ok", "replayed", "instance_stopped", "replayed", "replayed", "ok",
                                               "replayed", "ok", "replayed", "instance_stopped", "ok", "replayed",
                                               "replayed"}));
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(Get("single").Int("last_seq"), 5);
  EXPECT_EQ(Get("single").Int("last_heartbeat"), now);
  EXPECT_EQ(Get("old").Int("last_seq"), 3);
  EXPECT_EQ(Get("foreign").Int("last_seq"), 0);
  EXPECT_EQ(Get("rep").Int("last_seq"), 4);
  EXPECT_EQ(Get("rep").Int("last_heartbeat"), 904);  // the first seq-4 heartbeat's, as recorded
  EXPECT_EQ(Get("rep").Str("status"), "running");
  EXPECT_EQ(Get("stops").Int("last_seq"), 6);
  EXPECT_EQ(Get("stops").Str("status"), "stopped");
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Row n, tx.QueryOne("SELECT last_seen, info FROM nodes WHERE id = 'n1'", {}, "n"));
                   EXPECT_EQ(n.Int(0), now);
                   EXPECT_EQ(n.Str(1), R"({"v":1})");
                   return Status::Ok();
                 }).ok());
  // The same batch again: nothing new.
  for (auto& h : hbs) h.result = {};
  ASSERT_TRUE(db_->Write([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(accepted, RecordHeartbeats(tx, db_->backend(), "n1", now, nullptr, hbs));
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(accepted, 0);
}

// Instance ids travel as one array parameter on PostgreSQL: quotes and backslashes are escaped,
// never interpreted.
TEST_F(HeartbeatStoreTest, ArrayParametersAreEscaped) {
  EXPECT_EQ(PgTextArray({}), "{}");
  EXPECT_EQ(PgTextArray({"a", "b\"c", "d\\e", "f,g}"}), R"({"a","b\"c","d\\e","f,g}"})");
  if (db_->backend() != "postgres") return;
  std::vector<std::string_view> odd = {"x'); DROP TABLE instances; --", "q\"uote", "back\\slash", "{brace}", ""};
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT unnest(?::text[]) AS v", {PgTextArray(odd)}));
                   EXPECT_EQ(rows.size(), odd.size());
                   for (size_t i = 0; i < rows.size() && i < odd.size(); ++i) EXPECT_EQ(rows[i].Str(0), odd[i]);
                   return Status::Ok();
                 }).ok());
}

}  // namespace
}  // namespace vouch::api
