// Instances at scale (issue 16): cursor pages over many instances, the status filters, the
// dashboard's counts, pruning of stopped instances, and the query plans that keep them fast
// (api/instance_counts.h, migration 6). Runs on SQLite, and on PostgreSQL as pg.<test>.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "api/instance_counts.h"
#include "api/manager.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "crypto/random.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Response;
using store::Rows;
using store::Transaction;
using store::Value;

constexpr int64_t kDay = 86400;

class InstanceScaleTest : public ManagerFixture {
 protected:
  InstanceScaleTest() {
    users_ = {{"viewer", "viewer"}};
    clock_.Set(FromUnixSeconds(now_));
  }
  void Configure(ManagerOptions& options) override {
    options.heartbeat_interval = std::chrono::seconds(10);
    options.missed_intervals = 3;  // unresponsive: last heartbeat more than 30 s ago
    options.counts_max_age = std::chrono::milliseconds(0);
    options.instance_retention = std::chrono::seconds(30 * kDay);
  }
  void SetUp() override {
    ManagerFixture::SetUp();
    if (!Ready()) return;
    ASSERT_TRUE(Exec("INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, ca_key_sealed) "
                     "VALUES ('zone_t', 't', ?, 'test', '{}', 'pem', ?)",
                     {now_, store::Blob{1}}));
    for (const char* app : {"a1", "a2"}) {
      const std::string id = std::string("app_") + app;
      ASSERT_TRUE(Exec("INSERT INTO apps (id, name, zone_id, domains, created_at, created_by) VALUES (?, ?, 'zone_t', "
                       "'[]', ?, 'test')",
                       {id, std::string(app), now_}));
      ASSERT_TRUE(Exec("INSERT INTO builds (id, app_id, platform, mrenclave, mrsigner, isvprodid, isvsvn, debug, status, "
                       "created_at, created_by) VALUES (?, ?, 'sgx', 'aa', 'bb', 0, 0, 0, 'approved', ?, 'test')",
                       {"bld_" + std::string(app), id, now_}));
    }
    for (const char* node : {"node_1", "node_2"}) {
      ASSERT_TRUE(Exec("INSERT INTO nodes (id, zone_id, platform, tcb_status, advisory_ids, public_key_sha256, status, "
                       "created_at) VALUES (?, 'zone_t', 'sgx', 'UpToDate', '[]', 'k', 'active', ?)",
                       {std::string(node), now_}));
    }
  }

  // A fresh session for the viewer (sessions expire when a test moves the clock by days).
  void SignIn() { ManagerFixture::SignIn("viewer"); }

  struct Seed {
    std::string id, app = "a1", node = "node_1", status = "running";
    int64_t first_seen = 0, last_heartbeat = 0;
  };
  // Instances with their certificates, 100 rows per statement, all in one transaction.
  void Insert(const std::vector<Seed>& seeds) {
    Status st = db_->Write([&](Transaction& tx) -> Status {
      for (size_t at = 0; at < seeds.size(); at += 100) {
        std::string inst = "INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, first_seen, "
                           "last_heartbeat) VALUES ";
        std::string cert = "INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, instance_id, "
                           "subject, sans, not_before, not_after, pem, status, issued_to, created_at) VALUES ";
        std::vector<Value> ip, cp;
        for (size_t k = at; k < seeds.size() && k < at + 100; ++k) {
          const Seed& s = seeds[k];
          const std::string serial = "s" + s.id;
          inst += std::string(k == at ? "" : ", ") + "(?, ?, ?, ?, ?, ?, 1, ?, ?)";
          ip.insert(ip.end(), {s.id, "app_" + s.app, "bld_" + s.app, s.node, serial, s.status, s.first_seen,
                               s.last_heartbeat});
          cert += std::string(k == at ? "" : ", ") + "(?, 'zone_t', 'workload', ?, ?, ?, ?, 'CN=w', '[]', ?, ?, 'pem', "
                                                     "'valid', 'test', ?)";
          cp.insert(cp.end(), {serial, "app_" + s.app, "bld_" + s.app, s.node, s.id, s.first_seen, now_ + 90 * kDay,
                               s.first_seen});
        }
        VOUCH_RETURN_IF_ERROR(tx.Exec(inst, ip).status());
        VOUCH_RETURN_IF_ERROR(tx.Exec(cert, cp).status());
      }
      return Status::Ok();
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Requests as the viewer.
  Response Call(const std::string& method, const std::string& target, const std::string& body = "") {
    return ManagerFixture::Call(method, target, body, "viewer");
  }
  json Get(const std::string& target, unsigned want = 200) {
    Response r = Call("GET", target);
    EXPECT_EQ(r.status, want) << target << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }
  // Every page of `query`, in order; fails on a page that does not advance.
  std::vector<json> Walk(const std::string& query, int limit = 100) {
    std::vector<json> all;
    std::string cursor;
    for (int pages = 0; pages < 10000; ++pages) {
      json page = Get("/api/v1/instances?limit=" + std::to_string(limit) + query + (cursor.empty() ? "" : "&cursor=" + cursor));
      if (!page.is_object()) break;
      for (const json& i : page["items"]) all.push_back(i);
      if (page["next_cursor"].is_null()) return all;
      EXPECT_NE(page["next_cursor"].get<std::string>(), cursor);
      cursor = page["next_cursor"].get<std::string>();
    }
    ADD_FAILURE() << "the walk of " << query << " did not end";
    return all;
  }
  static std::set<std::string> Ids(const std::vector<json>& items) {
    std::set<std::string> ids;
    for (const json& i : items) ids.insert(i["id"].get<std::string>());
    return ids;
  }

  const int64_t now_ = 1'800'000'000;
};

TEST_F(InstanceScaleTest, PagesWalkEveryInstanceOnceWhileOthersAreInserted) {
  std::vector<Seed> seeds;
  std::set<std::string> seeded;
  for (int i = 0; i < 1200; ++i) {
    Seed s;
    s.id = "inst_seed" + std::to_string(1000000 + (i * 7919) % 1200);  // ids not in first_seen order
    s.first_seen = now_ - 5000 + i / 7;                                  // runs of equal first_seen
    s.last_heartbeat = now_ - 1;
    s.app = i % 2 ? "a1" : "a2";
    seeds.push_back(s);
    seeded.insert(s.id);
  }
  Insert(seeds);
  // Inserted during the walk: new instances are seen first at now, like issuance's.
  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread writer([&] {
    for (int n = 0; !stop.load() && n < 2000; ++n) {
      Status st = db_->Write([&](Transaction& tx) {
        const std::string id = "inst_new" + std::to_string(n);
        return tx.Exec("INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, first_seen, "
                       "last_heartbeat) VALUES (?, 'app_a1', 'bld_a1', 'node_1', NULL, 'running', 0, ?, ?)",
                       {id, now_ - 5000 + (n % 300), now_})
            .status();
      });
      if (st.ok()) inserted.fetch_add(1);
    }
  });
  std::vector<json> items = Walk("", 97);
  stop.store(true);
  writer.join();
  EXPECT_GT(inserted.load(), 0);
  std::set<std::string> seen;
  size_t seeded_seen = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    const std::string id = items[k]["id"];
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
    if (seeded.count(id)) ++seeded_seen;
    if (k > 0) {  // (first_seen, id) strictly increasing
      const auto a = std::make_pair(items[k - 1]["first_seen"].get<std::string>(), items[k - 1]["id"].get<std::string>());
      const auto b = std::make_pair(items[k]["first_seen"].get<std::string>(), items[k]["id"].get<std::string>());
      EXPECT_LT(a, b) << "at " << k;
    }
  }
  EXPECT_EQ(seeded_seen, seeded.size()) << "seeded instances missing from the walk";
  // The app filter walks exactly that app's instances.
  std::vector<json> a2 = Walk("&app=a2");
  EXPECT_EQ(a2.size(), 600u);
  for (const json& i : a2) EXPECT_EQ(i["app"], "a2");
}

TEST_F(InstanceScaleTest, StatusFiltersAndCountsAreExact) {
  std::vector<Seed> seeds;
  std::map<std::string, std::set<std::string>> want;
  std::set<std::string> node2_unresponsive;
  auto add = [&](const std::string& shown, const std::string& stored, int64_t hb, int n, const std::string& node) {
    for (int i = 0; i < n; ++i) {
      Seed s;
      s.id = "inst_" + shown + "_" + node + "_" + std::to_string(seeds.size());
      s.status = stored;
      s.node = node;
      s.first_seen = now_ - 100000 + static_cast<int64_t>(seeds.size()) % 500;
      s.last_heartbeat = hb;
      want[shown].insert(s.id);
      if (shown == "unresponsive" && node == "node_2") node2_unresponsive.insert(s.id);
      seeds.push_back(s);
    }
  };
  add("running", "running", now_ - 5, 150, "node_1");
  add("running", "running", now_ - 30, 7, "node_1");   // exactly at the limit: still running
  add("unresponsive", "running", now_ - 31, 40, "node_1");
  add("unresponsive", "running", now_ - 5000, 25, "node_2");
  add("stopped", "stopped", now_ - 20, 60, "node_2");
  add("stopped", "stopped", now_ - 50 * kDay, 10, "node_1");
  Insert(seeds);
  for (const std::string status : {"running", "unresponsive", "stopped"}) {
    std::vector<json> items = Walk("&status=" + status, 50);
    EXPECT_EQ(Ids(items), want[status]) << status;
    EXPECT_EQ(items.size(), want[status].size()) << status;
    for (const json& i : items) EXPECT_EQ(i["status"], status);
  }
  EXPECT_EQ(Ids(Walk("&status=unresponsive&node=node_2")), node2_unresponsive);
  EXPECT_EQ(Walk("&node=node_2").size(), 25u + 60u);
  EXPECT_TRUE(Walk("&app=nosuch").empty());
  json counts = Get("/api/v1/instances/counts");
  EXPECT_EQ(counts, (json{{"running", 157}, {"unresponsive", 65}, {"stopped", 70}, {"total", 292}}));
  json bad = Get("/api/v1/instances?status=sleeping", 400);
  EXPECT_EQ(bad["error"]["code"], "invalid_status");
  // More running instances than one window (kInstanceScanWindow) ahead of three unresponsive
  // ones: pages of the unresponsive filter may be empty but carry a cursor, and the walk finds
  // exactly the unresponsive ones, as the running walk finds exactly the running ones.
  std::vector<Seed> more;
  for (int i = 0; i < static_cast<int>(kInstanceScanWindow) + 1500; ++i) {
    Seed s;
    s.id = "inst_many" + std::to_string(100000 + i);
    s.first_seen = now_ - 200000 + i / 3;
    s.last_heartbeat = now_ - 2;
    want["running"].insert(s.id);
    more.push_back(s);
  }
  for (int i = 0; i < 3; ++i) {
    Seed s;
    s.id = "inst_late" + std::to_string(i);
    s.first_seen = now_ - 10;
    s.last_heartbeat = now_ - 600;
    want["unresponsive"].insert(s.id);
    more.push_back(s);
  }
  Insert(more);
  EXPECT_EQ(Ids(Walk("&status=unresponsive", 20)), want["unresponsive"]);
  EXPECT_EQ(Ids(Walk("&status=running", 1000)), want["running"]);
  json first = Get("/api/v1/instances?status=unresponsive&limit=20");
  EXPECT_TRUE(first["items"].empty()) << first.dump();  // the first window holds none of them
  EXPECT_TRUE(first["next_cursor"].is_string());
  const int64_t many = kInstanceScanWindow + 1500;
  EXPECT_EQ(Get("/api/v1/instances/counts"),
            (json{{"running", 157 + many}, {"unresponsive", 68}, {"stopped", 70}, {"total", 295 + many}}));
  // Certificates: every seeded one is valid for 90 more days.
  json certs = Get("/api/v1/certificates/counts");
  EXPECT_EQ(certs["valid"], 295 + many);
  EXPECT_EQ(certs["expiring"], 0);
  EXPECT_EQ(Get("/api/v1/certificates/counts?expiring_within_days=91")["expiring"], 295 + many);
  EXPECT_EQ(Get("/api/v1/certificates/counts?expiring_within_days=0", 400)["error"]["code"], "invalid_filter");
  EXPECT_EQ(Get("/api/v1/certificates/counts?expiring_within_days=x", 400)["error"]["code"], "invalid_filter");
}

TEST_F(InstanceScaleTest, PruningDeletesOldStoppedInstancesAndAuditsOnce) {
  std::vector<Seed> seeds;
  std::set<std::string> kept;
  auto add = [&](const std::string& tag, const std::string& status, int64_t hb, int n, bool keep) {
    for (int i = 0; i < n; ++i) {
      Seed s;
      s.id = "inst_" + tag + std::to_string(i);
      s.status = status;
      s.first_seen = hb - 100;
      s.last_heartbeat = hb;
      if (keep) kept.insert(s.id);
      seeds.push_back(s);
    }
  };
  add("old", "stopped", now_ - 31 * kDay, 1500, false);  // more than one batch of 1000
  add("recent", "stopped", now_ - 29 * kDay, 20, true);
  add("silent", "running", now_ - 40 * kDay, 15, true);  // unresponsive, not stopped: kept
  Insert(seeds);
  int64_t audit_before = 0;
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows r, tx.Query("SELECT count(*) FROM audit"));
                   audit_before = r[0].Int(0);
                   return Status::Ok();
                 }).ok());
  // Left by an interrupted run: counted into this run's entry.
  ASSERT_TRUE(Exec("INSERT INTO settings (key, value) VALUES ('instance_prune_pending', '4')", {}));

  auto pruned = manager_->PruneInstances(Principal::System());
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(*pruned, 1500);
  EXPECT_EQ(manager_->InstancesPruned(), 1500);
  EXPECT_EQ(Ids(Walk("")), kept);
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows certs, tx.Query("SELECT count(*) FROM certificates"));
                   EXPECT_EQ(certs[0].Int(0), 1535);  // certificates stay
                   VOUCH_ASSIGN_OR_RETURN(Rows audit, tx.Query("SELECT count(*) FROM audit"));
                   EXPECT_EQ(audit[0].Int(0), audit_before + 1);
                   VOUCH_ASSIGN_OR_RETURN(Rows entry, tx.Query("SELECT actor, target, outcome, detail FROM audit "
                                                               "WHERE action = 'instance.prune'"));
                   EXPECT_EQ(entry.size(), 1u);
                   if (!entry.empty()) {
                     EXPECT_EQ(entry[0].Str(0), Principal::System().Actor());
                     EXPECT_EQ(entry[0].Str(1), "instances");
                     EXPECT_EQ(entry[0].Str(2), "ok");
                     json detail = json::parse(entry[0].Str(3));
                     EXPECT_EQ(detail["count"], 1504);
                     EXPECT_EQ(detail["stopped_before"], FormatRfc3339(FromUnixSeconds(now_ - 30 * kDay)));
                   }
                   VOUCH_ASSIGN_OR_RETURN(Rows pending, tx.Query("SELECT value FROM settings WHERE key = "
                                                                 "'instance_prune_pending'"));
                   EXPECT_EQ(pending.size() == 1 ? pending[0].Str(0) : "", "0");
                   return Status::Ok();
                 }).ok());
  auto verify = manager_->VerifyAudit(Principal::System());
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE((*verify)["ok"].get<bool>()) << verify->dump();

  // Nothing left to prune: no entry. A day later the "recent" ones are due.
  auto again = manager_->PruneInstances(Principal::System());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  clock_.Advance(std::chrono::seconds(2 * kDay));
  SignIn();
  auto later = manager_->PruneInstances(Principal::System());
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(*later, 20);
  std::set<std::string> silent;
  for (const auto& id : kept) {
    if (id.rfind("inst_silent", 0) == 0) silent.insert(id);
  }
  EXPECT_EQ(Ids(Walk("")), silent);
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(Rows n, tx.Query("SELECT count(*) FROM audit WHERE action = 'instance.prune'"));
                   EXPECT_EQ(n[0].Int(0), 2);
                   return Status::Ok();
                 }).ok());
  // A viewer may not prune.
  auto viewer = manager_->Authenticate(tokens_["viewer"]);
  ASSERT_TRUE(viewer.ok());
  EXPECT_FALSE(manager_->PruneInstances(*viewer).ok());
}

// The plans of the list, filter, count and prune queries use migration 6's indexes: a change
// that drops one (or writes a query no index serves) fails here.
TEST_F(InstanceScaleTest, QueriesUseTheirIndexes) {
  const bool sqlite = db_->backend() == "sqlite";
  const int64_t cutoff = now_ - 30;
  struct Case {
    std::string what, sql;
    std::vector<Value> params;
    std::string sqlite_index;  // expected in SQLite's plan
  };
  std::vector<Case> cases;
  const std::string order = " ORDER BY i.first_seen ASC, i.id ASC LIMIT 101";
  const std::string after = "(i.first_seen, i.id) > (?, ?)";
  cases.push_back({"list", std::string(kInstanceListSelect) + order, {}, "instances_first_seen"});
  cases.push_back({"list page 2", std::string(kInstanceListSelect) + " WHERE " + after + order, {now_, std::string("x")},
                   "instances_first_seen"});
  cases.push_back({"app", std::string(kInstanceListSelect) + " WHERE i.app_id = ? AND " + after + order,
                   {std::string("app_a1"), now_, std::string("x")}, "instances_app_seen"});
  cases.push_back({"node", std::string(kInstanceListSelect) + " WHERE i.node_id = ?" + order, {std::string("node_1")},
                   "instances_node_seen"});
  for (const std::string status : {"running", "stopped", "unresponsive"}) {
    auto f = InstanceStatusCondition(status, cutoff);
    ASSERT_TRUE(f.ok());
    std::vector<Value> params = f->params;
    std::string sql = std::string(kInstanceListSelect) + " WHERE " + f->sql;
    if (f->windowed) {
      sql += " AND (i.first_seen, i.id) <= (?, ?)";
      params.insert(params.end(), {now_, std::string("x")});
    }
    cases.push_back({status, sql + order, params, "instances_status_seen"});
  }
  if (!sqlite) {
    // PostgreSQL reads a status page's window lazily (manager_instances.cc): the subquery's LIMIT
    // bounds the walk, in index order, with no sort node (checked below) that would read all of it.
    auto f = InstanceStatusCondition("running", cutoff);
    ASSERT_TRUE(f.ok());
    std::vector<Value> params = {now_, std::string("x"), kInstanceScanWindow};
    params.insert(params.end(), f->params.begin(), f->params.end());
    cases.push_back({"lazy window", "SELECT i.*, a.name AS app_name FROM (SELECT * FROM instances i WHERE "
                                    "i.status = 'running' AND (i.first_seen, i.id) > (?, ?) ORDER BY i.first_seen, i.id "
                                    "LIMIT ?) i LEFT JOIN apps a ON a.id = i.app_id WHERE " + f->sql + order,
                     params, ""});
  }
  cases.push_back({"window", "SELECT i.first_seen, i.id FROM instances i WHERE i.status = 'running' AND "
                             "(i.first_seen, i.id) > (?, ?) ORDER BY i.first_seen, i.id LIMIT 1 OFFSET ?",
                   {now_, std::string("x"), kInstanceScanWindow - 1}, "COVERING INDEX instances_status_seen"});
  cases.push_back({"running count", "SELECT count(*) FROM instances WHERE status = 'running'", {},
                   "COVERING INDEX instances_status_seen"});
  cases.push_back({"stopped count", "SELECT count(*) FROM instances WHERE status = 'stopped'", {},
                   "COVERING INDEX instances_status_seen"});
  cases.push_back({"prune", "SELECT id FROM instances WHERE status = 'stopped' AND last_heartbeat < ? LIMIT 1000",
                   {cutoff}, "instances_status_seen"});
  cases.push_back({"certificate counts", "SELECT count(*) FROM certificates WHERE status = 'valid' AND not_after > ?",
                   {now_}, "COVERING INDEX certificates_status_expiry"});
  cases.push_back({"certificates", "SELECT c.serial FROM certificates c LEFT JOIN zones z ON z.id = c.zone_id "
                                   "ORDER BY c.created_at ASC, c.serial ASC LIMIT 101",
                   {}, "certificates_created"});
  // What a heartbeat writes (last_seq, last_heartbeat) is in no index of instances: on SQLite a
  // heartbeat rewrites no index entry, on PostgreSQL it may be a HOT update (migration 6).
  ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(
                       Rows defs, tx.Query(sqlite ? "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                                                    "'instances' AND sql IS NOT NULL"
                                                  : "SELECT indexdef FROM pg_indexes WHERE tablename = 'instances'"));
                   EXPECT_GE(defs.size(), 4u);
                   for (const auto& d : defs) {
                     EXPECT_EQ(d.Str(0).find("last_heartbeat"), std::string::npos) << d.Str(0);
                     EXPECT_EQ(d.Str(0).find("last_seq"), std::string::npos) << d.Str(0);
                   }
                   return Status::Ok();
                 }).ok());
  for (const Case& c : cases) {
    std::string plan;
    ASSERT_TRUE(db_->Read([&](Transaction& tx) -> Status {
                     if (!sqlite) VOUCH_RETURN_IF_ERROR(tx.Exec("SET LOCAL enable_seqscan = off").status());
                     VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query((sqlite ? "EXPLAIN QUERY PLAN " : "EXPLAIN ") + c.sql,
                                                                c.params));
                     for (const auto& r : rows) plan += r.Str(r.size() - 1) + "\n";
                     return Status::Ok();
                   }).ok())
        << c.what;
    if (sqlite) {
      EXPECT_NE(plan.find("USING " + (c.sqlite_index.rfind("COVERING", 0) == 0 ? c.sqlite_index
                                                                                 : "INDEX " + c.sqlite_index)),
                std::string::npos)
          << c.what << ":\n" << plan;
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << c.what << ":\n" << plan;
    } else {
      // With sequential scans priced out, a plan still scanning the table has no index to use.
      EXPECT_EQ(plan.find("Seq Scan on instances"), std::string::npos) << c.what << ":\n" << plan;
      EXPECT_EQ(plan.find("Seq Scan on certificates"), std::string::npos) << c.what << ":\n" << plan;
      if (c.what == "lazy window") {
        EXPECT_EQ(plan.find("Sort"), std::string::npos) << c.what << ":\n" << plan;
      }
    }
  }
}

}  // namespace
}  // namespace vouch::api
