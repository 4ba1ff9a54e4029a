#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <atomic>
#include <algorithm>
#include <sstream>

#include "api/manager.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "store/database.h"
#include "testing/csr.h"
#include "testing/request.h"
#include "testing/temp_dir.h"


namespace vouch::api {
namespace {

using http::Request;
using http::Response;

// A CSR made with OpenSSL directly (libs/testing), so that the manager's parser is tested against real input.
std::string MakeCsr(const std::vector<std::string>& dns) { return test::CsrPemFor(test::Key().get(), dns); }

class ApiTest : public ManagerFixture {
 protected:
  // Every row of every table except the audit log and sessions: the "store unchanged" check.
  std::string Snapshot() {
    std::string out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     for (const char* t : {"zones", "users", "api_keys", "join_tokens", "apps", "tasks", "task_approvals",
                                           "builds", "nodes", "certificates", "instances"}) {
                       VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(std::string("SELECT * FROM ") + t));
                       out += std::string(t) + ":" + std::to_string(rows.size()) + ";";
                       for (const auto& r : rows) {
                         for (size_t i = 0; i < r.size(); ++i) out += r.Str(i) + "|";
                       }
                     }
                     return Status::Ok();
                   }).ok());
    return out;
  }

  void MakeZoneAndApp(int approvals = 1) {
    MakeZone("prod", approvals);
    ApproveDomainTasks(MakeApp("web", "prod", json::array({"web.example.com", "*.svc.example.com"})), approvals);
  }
};

// ------------------------------------------------------------------ authorisation

// The smallest role allowed for each route; "public" needs no credentials, "any" any user.
const std::map<std::string, std::string>& RouteRoles() {
  static const std::map<std::string, std::string> kRoles = {
      {"GET /healthz", "public"},
      {"GET /readyz", "public"},
      {"GET /metrics", "public"},  // from loopback
      {"GET /api/v1/openapi.json", "public"},
      {"POST /api/v1/sys/auth", "public"},
      {"POST /api/v1/cluster/nonce", "public"},  // joiners authenticate with TEE evidence
      {"POST /api/v1/cluster/join", "public"},
      {"DELETE /api/v1/sys/auth", "any"},
      {"GET /api/v1/sys/whoami", "any"},
      {"POST /api/v1/zones", "admin"},
      {"GET /api/v1/zones", "any"},
      {"GET /api/v1/zones/{id}", "any"},
      {"PATCH /api/v1/zones/{id}", "admin"},
      {"GET /api/v1/zones/{id}/ca", "public"},
      {"GET /api/v1/zones/{id}/crl", "public"},
      {"GET /api/v1/zones/{id}/ca/bundle", "public"},
      {"GET /api/v1/zones/{id}/cas", "viewer"},
      {"POST /api/v1/zones/{id}/ca/rotate", "admin"},
      {"POST /api/v1/zones/{id}/ca/activate", "admin"},
      {"POST /api/v1/zones/{id}/join-tokens", "admin"},
      {"GET /api/v1/zones/{id}/join-tokens", "admin"},
      {"GET /api/v1/zones/{id}/node-identities", "viewer"},
      {"POST /api/v1/zones/{id}/node-identities", "admin"},
      {"DELETE /api/v1/zones/{id}/node-identities/{identity}", "admin"},
      {"POST /api/v1/users", "admin"},
      {"GET /api/v1/users", "admin"},
      {"GET /api/v1/users/{id}", "admin"},
      {"PATCH /api/v1/users/{id}", "admin"},
      {"DELETE /api/v1/users/{id}", "admin"},
      {"POST /api/v1/apikeys", "any"},
      {"GET /api/v1/apikeys", "any"},
      {"DELETE /api/v1/apikeys/{id}", "any"},
      {"POST /api/v1/apps", "member"},
      {"GET /api/v1/apps", "any"},
      {"GET /api/v1/apps/{id}", "any"},
      {"DELETE /api/v1/apps/{id}", "admin"},
      {"POST /api/v1/apps/{id}/domains", "member"},
      {"DELETE /api/v1/apps/{id}/domains/{domain}", "member"},
      {"POST /api/v1/builds", "member"},
      {"GET /api/v1/builds", "any"},
      {"GET /api/v1/builds/{id}", "any"},
      {"POST /api/v1/builds/{id}/revoke", "approver"},
      {"GET /api/v1/tasks", "any"},
      {"GET /api/v1/tasks/{id}", "any"},
      {"POST /api/v1/tasks/{id}/approve", "approver"},
      {"POST /api/v1/tasks/{id}/deny", "approver"},
      {"POST /api/v1/certificates", "admin"},
      {"GET /api/v1/certificates", "any"},
      {"GET /api/v1/certificates/{serial}", "any"},
      {"GET /api/v1/certificates/counts", "any"},  // issue 16: the dashboard's counts
      {"POST /api/v1/certificates/{serial}/revoke", "admin"},
      {"GET /api/v1/nodes", "any"},
      {"GET /api/v1/nodes/{id}", "any"},
      {"POST /api/v1/nodes/{id}/deactivate", "admin"},
      {"POST /api/v1/nodes/nonce", "public"},
      {"POST /api/v1/nodes", "public"},  // authenticated by the join token in the body
      {"POST /api/v1/nodes/renew", "node"},
      {"POST /api/v1/heartbeats", "node"},
      {"GET /api/v1/instances", "any"},
      {"GET /api/v1/instances/counts", "any"},
      {"GET /api/v1/audit", "any"},
      {"GET /api/v1/audit/verify", "any"},
      // issue 14: the collateral service; the PCCS v4 read side is public like a PCCS.
      {"GET /api/v1/collateral", "any"},
      {"POST /api/v1/collateral/refresh", "admin"},
      {"POST /api/v1/collateral/import", "admin"},
      {"GET /api/v1/collateral/export", "admin"},
      {"POST /api/v1/evidence/verify", "any"},
      // issue 18: backups taken by the server into its backup folder.
      {"POST /api/v1/backups", "admin"},
      {"GET /api/v1/backups", "admin"},
      {"POST /api/v1/master-key/rotate", "admin"},
      // issue 15: registries (GET: members and approvers; the Manager refuses viewers, registries_test)
      // and app settings and signing keys.
      {"POST /api/v1/registries", "admin"},
      {"GET /api/v1/registries", "any"},
      {"GET /api/v1/registries/{id}", "any"},
      {"PATCH /api/v1/registries/{id}", "admin"},
      {"DELETE /api/v1/registries/{id}", "admin"},
      {"PATCH /api/v1/apps/{id}", "member"},
      {"POST /api/v1/apps/{id}/signing-key/rotate", "admin"},
      // issue 15: conversion jobs (members create and cancel; conversions_test)
      {"POST /api/v1/conversions", "member"},
      {"GET /api/v1/conversions", "any"},
      {"GET /api/v1/conversions/{id}", "any"},
      {"POST /api/v1/conversions/{id}/cancel", "member"},
      {"GET /sgx/certification/v4/tcb", "public"},
      {"GET /tdx/certification/v4/tcb", "public"},
      {"GET /sgx/certification/v4/qe/identity", "public"},
      {"GET /tdx/certification/v4/qe/identity", "public"},
      {"GET /sgx/certification/v4/pckcrl", "public"},
      {"GET /sgx/certification/v4/rootcacrl", "public"},
      {"GET /sgx/certification/v4/crl", "public"},
  };
  return kRoles;
}

std::string Fill(std::string pattern) {
  for (const char* p : {"{id}", "{domain}", "{serial}"}) {
    size_t pos;
    while ((pos = pattern.find(p)) != std::string::npos) pattern.replace(pos, std::string(p).size(), "x");
  }
  return pattern;
}

TEST_F(ApiTest, EveryRouteHasAnAuthorisationRule) {
  std::set<std::string> routes;
  for (const auto& r : router_->Routes()) routes.insert(r.method + " " + r.pattern);
  std::set<std::string> table;
  for (const auto& [k, v] : RouteRoles()) table.insert(k);
  EXPECT_EQ(routes, table) << "add new routes to RouteRoles() with their minimal role";
}

TEST_F(ApiTest, NonPublicRoutesAnswer401WithoutCredentials) {
  for (const auto& [route, role] : RouteRoles()) {
    if (role == "public") continue;
    std::string method = route.substr(0, route.find(' '));
    std::string path = Fill(route.substr(route.find(' ') + 1));
    Response r = Call(method, path, "{}");
    EXPECT_EQ(r.status, 401u) << route << ": " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << route;
    EXPECT_EQ(j["error"]["code"], "unauthenticated") << route;
    // A wrong token is just as unauthenticated.
    bool parsed = false;
    Request req = test::RequestBuilder(method, path).Bearer("vt_not-a-real-token-at-all").Build(&parsed);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(router_->Dispatch(req).status, 401u) << route;
  }
}

TEST_F(ApiTest, NodeRoutesRefuseBearerTokens) {
  int checked = 0;
  for (const auto& [route, role] : RouteRoles()) {
    if (role != "node") continue;
    std::string method = route.substr(0, route.find(' '));
    Response r = Call(method, Fill(route.substr(route.find(' ') + 1)), "{}", "admin");
    EXPECT_EQ(r.status, 403u) << route;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "node_identity_required") << route;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST_F(ApiTest, MutatingRoutesAnswer403ToTooSmallRoles) {
  const std::map<std::string, std::vector<std::string>> kTooSmall = {
      {"admin", {"viewer", "member", "approver1"}},
      {"member", {"viewer", "approver1"}},
      {"approver", {"viewer", "member"}},
  };
  int checked = 0;
  for (const auto& [route, role] : RouteRoles()) {
    auto it = kTooSmall.find(role);
    if (it == kTooSmall.end()) continue;
    std::string method = route.substr(0, route.find(' '));
    std::string path = Fill(route.substr(route.find(' ') + 1));
    std::string before = Snapshot();
    for (const auto& user : it->second) {
      Response r = Call(method, path, "{\"name\":\"x\"}", user);
      EXPECT_EQ(r.status, 403u) << route << " as " << user << ": " << r.body;
      EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden") << route;
      ++checked;
    }
    EXPECT_EQ(Snapshot(), before) << route;
  }
  EXPECT_GT(checked, 30);
  // Refused mutations are audited.
  bool found = false;
  json audit = CallJson("GET", "/api/v1/audit?limit=1000", nullptr, "admin", 200);
  for (const auto& e : audit["items"]) {
    if (e["outcome"] == "denied:forbidden" && e["actor"] == "user:viewer") found = true;
  }
  EXPECT_TRUE(found) << CallJson("GET", "/api/v1/audit?limit=5", nullptr, "admin", 200).dump(1);
}

TEST_F(ApiTest, ApiKeysAuthenticateWithTheOwnersRoleAndCanBeDeleted) {
  json key = CallJson("POST", "/api/v1/apikeys", {{"name", "ci"}}, "member", 201);
  std::string secret = key["key"];
  ASSERT_EQ(secret.rfind("vk_", 0), 0u);
  tokens_["ci"] = secret;
  EXPECT_EQ(CallJson("GET", "/api/v1/sys/whoami", nullptr, "ci", 200)["role"], "member");
  EXPECT_EQ(Call("POST", "/api/v1/zones", json{{"name", "z"}}.dump(), "ci").status, 403u);
  // Not listed for someone else, and not deletable by them.
  EXPECT_EQ(Call("DELETE", "/api/v1/apikeys/" + key["id"].get<std::string>(), "", "viewer").status, 404u);
  EXPECT_EQ(Call("DELETE", "/api/v1/apikeys/" + key["id"].get<std::string>(), "", "member").status, 204u);
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "ci").status, 401u);
}

TEST_F(ApiTest, LoginRefusesWrongPasswordsAndLogoutEndsTheSession) {
  Response bad = Call("POST", "/api/v1/sys/auth", json{{"username", "admin"}, {"password", "nope-nope"}}.dump());
  EXPECT_EQ(bad.status, 401u);
  EXPECT_EQ(json::parse(bad.body)["error"]["code"], "invalid_credentials");
  Response unknown = Call("POST", "/api/v1/sys/auth", json{{"username", "ghost"}, {"password", "nope-nope"}}.dump());
  EXPECT_EQ(unknown.status, 401u);
  EXPECT_EQ(Call("DELETE", "/api/v1/sys/auth", "", "viewer").status, 204u);
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 401u);
}

TEST_F(ApiTest, SessionsExpire) {
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 200u);
  clock_.Advance(std::chrono::hours(13));
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", "viewer").status, 401u);
}

// ------------------------------------------------------------------ flows

TEST_F(ApiTest, BuildNeedsAQuorumOfDistinctApprovers) {
  MakeZoneAndApp(2);
  json build = MakeBuild();
  EXPECT_EQ(build["status"], "pending");
  std::string task = build["task_id"];
  json t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(t["status"], "pending");
  // The same approver again counts once.
  t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(t["status"], "pending");
  EXPECT_EQ(t["approvals"].size(), 1u);
  EXPECT_EQ(CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "pending");
  t = CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver2", 200);
  EXPECT_EQ(t["status"], "approved");
  EXPECT_EQ(CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "approved");
  // A decided task cannot be decided again.
  EXPECT_EQ(Call("POST", "/api/v1/tasks/" + task + "/deny", json{{"reason", "late"}}.dump(), "admin").status, 409u);
}

TEST_F(ApiTest, OneDenialDeniesTheBuild) {
  MakeZoneAndApp(2);
  json build = MakeBuild();
  std::string task = build["task_id"];
  CallJson("POST", "/api/v1/tasks/" + task + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(Call("POST", "/api/v1/tasks/" + task + "/deny", "{}", "approver2").status, 400u);  // reason required
  json t = CallJson("POST", "/api/v1/tasks/" + task + "/deny", {{"reason", "unknown signer"}}, "approver2", 200);
  EXPECT_EQ(t["status"], "denied");
  json b = CallJson("GET", "/api/v1/builds/" + build["id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(b["status"], "denied");
  EXPECT_EQ(b["reason"], "unknown signer");
}

TEST_F(ApiTest, DomainAdditionRaisesATask) {
  MakeZoneAndApp(1);
  json t = CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "api.example.com"}}, "member", 202);
  EXPECT_EQ(t["kind"], "domain");
  json app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(app["pending_domains"], json({"api.example.com"}));
  EXPECT_EQ(std::count(app["domains"].begin(), app["domains"].end(), "api.example.com"), 0);
  CallJson("POST", "/api/v1/tasks/" + t["id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(std::count(app["domains"].begin(), app["domains"].end(), "api.example.com"), 1);
  EXPECT_EQ(app["spiffe_id"], "spiffe://prod/app/web");
}

// ------------------------------------------------------------------ names (issue 13)

TEST_F(ApiTest, InitialDomainsArePendingUntilApprovedAndOnlyThenIssuable) {
  CallJson("POST", "/api/v1/zones", {{"name", "prod"}}, "admin", 201);
  json app = CallJson("POST", "/api/v1/apps",
                      {{"name", "web"}, {"zone", "prod"}, {"domains", {"Web.Example.COM", "*.svc.example.com"}}}, "member", 201);
  EXPECT_EQ(app["domains"], json::array());
  EXPECT_EQ(app["pending_domains"], json({"*.svc.example.com", "web.example.com"}));  // lower-cased
  ASSERT_EQ(app["domain_tasks"].size(), 2u);
  json build = MakeBuild();
  CallJson("POST", "/api/v1/tasks/" + build["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  // The build task shows what its certificates may carry now: nothing approved yet.
  json bt = CallJson("GET", "/api/v1/tasks/" + build["task_id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(bt["domains"], json::array());
  EXPECT_EQ(bt["pending_domains"], json({"*.svc.example.com", "web.example.com"}));
  auto issue = [&](const std::vector<std::string>& names) {
    return Call("POST", "/api/v1/certificates", json{{"build_id", build["id"]}, {"csr", MakeCsr(names)}}.dump(), "admin");
  };
  Response r = issue({"web.example.com"});
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_not_allowed");
  // Approve only web.example.com.
  std::string web_task;
  for (const auto& t : app["domain_tasks"]) {
    if (t["domain"] == "web.example.com") web_task = t["task_id"];
  }
  ASSERT_FALSE(web_task.empty());
  json dt = CallJson("GET", "/api/v1/tasks/" + web_task, nullptr, "viewer", 200);
  EXPECT_EQ(dt["kind"], "domain");
  EXPECT_EQ(dt["domain"], "web.example.com");
  CallJson("POST", "/api/v1/tasks/" + web_task + "/approve", nullptr, "approver1", 200);
  r = issue({"WEB.example.com"});
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(json::parse(r.body)["sans"][0], "web.example.com");  // certified in lower case
  r = issue({"a.svc.example.com"});
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_not_allowed");
  // Task views (one and the list) carry the app's approved and pending names.
  bt = CallJson("GET", "/api/v1/tasks/" + build["task_id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(bt["domains"], json({"web.example.com"}));
  EXPECT_EQ(bt["pending_domains"], json({"*.svc.example.com"}));
  json list = CallJson("GET", "/api/v1/tasks", nullptr, "viewer", 200);
  for (const auto& t : list["items"]) {
    EXPECT_EQ(t["domains"], json({"web.example.com"})) << t.dump();
    EXPECT_EQ(t["pending_domains"], json({"*.svc.example.com"})) << t.dump();
  }
  // A denied initial domain never becomes allowed.
  json app_now = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  ASSERT_EQ(app_now["domain_tasks"].size(), 1u);
  CallJson("POST", "/api/v1/tasks/" + app_now["domain_tasks"][0]["task_id"].get<std::string>() + "/deny",
           {{"reason", "not ours"}}, "approver1", 200);
  app_now = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(app_now["domains"], json({"web.example.com"}));
  EXPECT_EQ(app_now["pending_domains"], json::array());
}

TEST_F(ApiTest, DomainTakenExactAndThroughWildcardsInBothDirections) {
  CallJson("POST", "/api/v1/zones", {{"name", "prod"}}, "admin", 201);
  CallJson("POST", "/api/v1/zones", {{"name", "staging"}}, "admin", 201);
  json web = CallJson("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "prod"}, {"domains", {"a.example.com"}}}, "member", 201);
  auto refused = [&](const std::string& method, const std::string& path, const json& body) {
    std::string before = Snapshot();
    Response r = Call(method, path, body.dump(), "member");
    EXPECT_EQ(r.status, 409u) << path << " " << body.dump() << ": " << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_taken") << r.body;
    EXPECT_EQ(Snapshot(), before) << "a refused request changed the store";
  };
  // Pending counts: the same name, another case, and a wildcard covering it.
  refused("POST", "/api/v1/apps", {{"name", "other"}, {"zone", "prod"}, {"domains", {"a.example.com"}}});
  refused("POST", "/api/v1/apps", {{"name", "other"}, {"zone", "prod"}, {"domains", {"ok.example.org", "A.Example.com"}}});
  refused("POST", "/api/v1/apps", {{"name", "other"}, {"zone", "prod"}, {"domains", {"*.example.com"}}});
  ApproveDomainTasks(web);
  // Approved counts too; names the wildcard would not cover are free.
  json other = CallJson("POST", "/api/v1/apps",
                        {{"name", "other"}, {"zone", "prod"}, {"domains", {"example.com", "x.a.example.com"}}}, "member", 201);
  refused("POST", "/api/v1/apps/other/domains", {{"domain", "*.example.com"}});
  refused("POST", "/api/v1/apps/other/domains", {{"domain", "a.EXAMPLE.com"}});
  // The other direction: a name under another app's wildcard.
  CallJson("POST", "/api/v1/apps/other/domains", {{"domain", "*.wild.example.com"}}, "member", 202);
  refused("POST", "/api/v1/apps/web/domains", {{"domain", "q.wild.example.com"}});
  refused("POST", "/api/v1/apps", {{"name", "third"}, {"zone", "prod"}, {"domains", {"*.wild.example.com"}}});
  CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "wild.example.com"}}, "member", 202);
  // An app's own names never conflict with each other; other zones are independent.
  CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "*.example.com"}}, "member", 202);
  CallJson("POST", "/api/v1/apps", {{"name", "elsewhere"}, {"zone", "staging"}, {"domains", {"a.example.com"}}}, "member", 201);
  // A deleted app's names are released.
  CallJson("DELETE", "/api/v1/apps/other", nullptr, "admin", 204);
  CallJson("POST", "/api/v1/apps", {{"name", "fourth"}, {"zone", "prod"}, {"domains", {"q.wild.example.com"}}}, "member", 201);
}

TEST_F(ApiTest, OfTwoPendingRequestsForOneNameTheSecondApprovalFailsWithDomainTaken) {
  CallJson("POST", "/api/v1/zones", {{"name", "prod"}}, "admin", 201);
  json web = CallJson("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "prod"}, {"domains", {"dup.example.com"}}}, "member", 201);
  json other = CallJson("POST", "/api/v1/apps", {{"name", "other"}, {"zone", "prod"}}, "member", 201);
  // A second pending request for the same name, as concurrent requests or a store from before
  // the check could leave it.
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) {
                   return tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, domain, summary, approvals_required, "
                                  "created_at, created_by) SELECT 'task_dup', 'domain', 'pending', zone_id, id, "
                                  "'*.example.com', 'dup', 1, 0, 'test' FROM apps WHERE name = 'other'")
                       .status();
                 }).ok());
  ApproveDomainTasks(web);
  std::string before = Snapshot();
  Response r = Call("POST", "/api/v1/tasks/task_dup/approve", "", "approver1");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_taken");
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(CallJson("GET", "/api/v1/tasks/task_dup", nullptr, "viewer", 200)["status"], "pending");
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/other", nullptr, "viewer", 200)["domains"], json::array());
}

// The serials a CRL (DER or PEM file) lists, upper-case hex as `openssl crl -text` prints them.
std::set<std::string> CrlSerials(const std::string& dir, const std::string& crl_pem) {
  EXPECT_TRUE(WriteFileAtomic(dir + "/names-crl.pem", crl_pem).ok());
  std::string cmd = "openssl crl -in " + dir + "/names-crl.pem -noout -text | sed -n 's/.*Serial Number: *//p' > " + dir +
                    "/names-crl.txt";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::set<std::string> out;
  std::istringstream in(ReadWholeFile(dir + "/names-crl.txt").value_or(""));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

TEST_F(ApiTest, RemovingADomainRevokesExactlyTheCertificatesCarryingIt) {
  MakeZoneAndApp(1);  // web.example.com, *.svc.example.com
  json add = CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "api.example.com"}}, "member", 202);
  CallJson("POST", "/api/v1/tasks/" + add["id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  json build = MakeBuild();
  CallJson("POST", "/api/v1/tasks/" + build["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  auto issue = [&](const std::vector<std::string>& names) -> std::string {
    json c = CallJson("POST", "/api/v1/certificates", {{"build_id", build["id"]}, {"csr", MakeCsr(names)}}, "admin", 201);
    return c["serial"];
  };
  std::string web = issue({"web.example.com"});
  std::string svc = issue({"a.svc.example.com"});
  std::string both = issue({"api.example.com", "web.example.com"});
  std::string api = issue({"api.example.com"});
  auto status = [&](const std::string& serial) {
    return CallJson("GET", "/api/v1/certificates/" + serial, nullptr, "viewer", 200)["status"].get<std::string>();
  };
  // A name still covered by the app's wildcard: removing its own entry revokes nothing.
  json exact = CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "a.svc.example.com"}}, "member", 202);
  CallJson("POST", "/api/v1/tasks/" + exact["id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  json r = CallJson("DELETE", "/api/v1/apps/web/domains/a.svc.example.com", nullptr, "member", 200);
  EXPECT_EQ(r["revoked_serials"], json::array());
  EXPECT_EQ(status(svc), "valid");
  r = CallJson("DELETE", "/api/v1/apps/web/domains/*.svc.example.com", nullptr, "member", 200);
  EXPECT_EQ(r["revoked_serials"], json({svc}));
  EXPECT_EQ(status(svc), "revoked");
  // Upper case in the path names the same domain.
  r = CallJson("DELETE", "/api/v1/apps/web/domains/WEB.example.com", nullptr, "member", 200);
  std::set<std::string> got(r["revoked_serials"].begin(), r["revoked_serials"].end());
  EXPECT_EQ(got, (std::set<std::string>{web, both}));
  EXPECT_EQ(r["domains"], json({"api.example.com"}));
  EXPECT_EQ(status(web), "revoked");
  EXPECT_EQ(status(both), "revoked");
  EXPECT_EQ(status(api), "valid");
  EXPECT_EQ(CrlSerials(dir_, Call("GET", "/api/v1/zones/prod/crl?format=pem").body),
            (std::set<std::string>{Upper(web), Upper(svc), Upper(both)}));
  json audit = CallJson("GET", "/api/v1/audit?action=app.domain.remove", nullptr, "viewer", 200);
  ASSERT_EQ(audit["items"].size(), 3u) << audit.dump();
  int64_t total = 0;
  for (const auto& a : audit["items"]) total += a["detail"]["revoked"].get<int64_t>();
  EXPECT_EQ(total, 3);
  // Withdrawing a pending request revokes nothing and cancels the task.
  json pend = CallJson("POST", "/api/v1/apps/web/domains", {{"domain", "later.example.com"}}, "member", 202);
  r = CallJson("DELETE", "/api/v1/apps/web/domains/later.example.com", nullptr, "member", 200);
  EXPECT_EQ(r["pending_domains"], json::array());
  EXPECT_EQ(CallJson("GET", "/api/v1/tasks/" + pend["id"].get<std::string>(), nullptr, "viewer", 200)["status"], "cancelled");
  EXPECT_EQ(Call("DELETE", "/api/v1/apps/web/domains/never.example.com", "", "member").status, 404u);
}

TEST_F(ApiTest, TighteningAZoneRevokesExactlyWhatItWouldNoLongerIssue) {
  CallJson("POST", "/api/v1/zones",
           {{"name", "prod"}, {"allow_sim", true}, {"allow_debug", true}, {"min_tcb", "ConfigurationNeeded"},
            {"tolerated_advisories", {"INTEL-SA-00001"}}},
           "admin", 201);
  json app = CallJson("POST", "/api/v1/apps", {{"name", "web"}, {"zone", "prod"}, {"domains", {"web.example.com"}}}, "member", 201);
  ApproveDomainTasks(app);
  json build = MakeBuild("aa");
  json debug_build = CallJson("POST", "/api/v1/builds",
                              {{"app", "web"}, {"mrenclave", std::string(64, 'c')}, {"mrsigner", std::string(64, 'b')},
                               {"isvprodid", 1}, {"isvsvn", 2}, {"debug", true}},
                              "member", 201);
  for (const json* b : {&build, &debug_build}) {
    CallJson("POST", "/api/v1/tasks/" + (*b)["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  }
  auto manual = [&](const json& b) {
    return CallJson("POST", "/api/v1/certificates", {{"build_id", b["id"]}, {"csr", MakeCsr({"web.example.com"})}}, "admin",
                    201)["serial"]
        .get<std::string>();
  };
  std::string m_ok = manual(build);
  std::string m_debug = manual(debug_build);
  std::string zone_id = CallJson("GET", "/api/v1/zones/prod", nullptr, "viewer", 200)["id"];
  std::string app_id = app["id"];
  // Nodes as enrolment records them, each with a node certificate and a workload certificate.
  int64_t now = ToUnixSeconds(clock_.Now());
  int counter = 0;
  auto cert_row = [&](const std::string& kind, const std::string& node, const std::string& build_id) {
    char serial[33];
    std::snprintf(serial, sizeof serial, "7e%030x", ++counter);
    EXPECT_TRUE(db_->Write([&](store::Transaction& tx) {
                     return tx.Exec("INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, subject, sans, "
                                    "not_before, not_after, pem, status, issued_to, created_at) VALUES (?, ?, ?, ?, ?, ?, "
                                    "'CN=x', '[]', ?, ?, '', 'valid', 'test', ?)",
                                    {std::string(serial), zone_id, kind,
                                     kind == "node" ? store::Value(nullptr) : store::Value(app_id),
                                     build_id.empty() ? store::Value(nullptr) : store::Value(build_id), node, now - 60,
                                     now + 3600, now})
                         .status();
                   }).ok());
    return std::string(serial);
  };
  struct N {
    std::string platform, tcb, advisories;
    std::string node_cert, workload_cert;
  };
  std::map<std::string, N> nodes = {{"node_sim", {"sim-sgx", "UpToDate", "[]", "", ""}},
                                    {"node_hw", {"sgx", "UpToDate", "[]", "", ""}},
                                    {"node_cfg", {"sgx", "ConfigurationNeeded", "[]", "", ""}},
                                    {"node_swh", {"sgx", "SWHardeningNeeded", "[\"INTEL-SA-00001\"]", "", ""}}};
  for (auto& [id, n] : nodes) {
    ASSERT_TRUE(db_->Write([&](store::Transaction& tx) {
                     return tx.Exec("INSERT INTO nodes (id, zone_id, platform, tcb_status, advisory_ids, public_key_sha256, "
                                    "status, created_at) VALUES (?, ?, ?, ?, ?, 'x', 'active', ?)",
                                    {id, zone_id, n.platform, n.tcb, n.advisories, now})
                         .status();
                   }).ok());
    n.node_cert = cert_row("node", id, "");
    n.workload_cert = cert_row("workload", id, build["id"]);
  }
  std::string hw_debug = cert_row("workload", "node_hw", debug_build["id"]);
  auto valid = [&]() {
    std::set<std::string> out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT serial FROM certificates WHERE status = 'valid'"));
                     for (const auto& r : rows) out.insert(r.Str("serial"));
                     return Status::Ok();
                   }).ok());
    return out;
  };
  auto patch = [&](const json& body, int64_t want_workload, int64_t want_node) {
    json z = CallJson("PATCH", "/api/v1/zones/prod", body, "admin", 200);
    EXPECT_EQ(z["revoked"]["workload_certificates"], want_workload) << body.dump() << " " << z.dump();
    EXPECT_EQ(z["revoked"]["node_certificates"], want_node) << body.dump() << " " << z.dump();
  };
  std::set<std::string> all = valid();
  auto without = [&](std::initializer_list<std::string> gone) {
    for (const auto& g : gone) all.erase(g);
    return all;
  };
  // Debug off: the debug build's certificates, nothing else.
  patch({{"allow_debug", false}}, 2, 0);
  EXPECT_EQ(valid(), without({m_debug, hw_debug}));
  // A stricter minimum: the ConfigurationNeeded node (the tolerated SWHardeningNeeded one counts as UpToDate).
  patch({{"min_tcb", "UpToDate"}}, 1, 1);
  EXPECT_EQ(valid(), without({nodes["node_cfg"].workload_cert, nodes["node_cfg"].node_cert}));
  // The advisory no longer tolerated.
  patch({{"tolerated_advisories", json::array()}}, 1, 1);
  EXPECT_EQ(valid(), without({nodes["node_swh"].workload_cert, nodes["node_swh"].node_cert}));
  // Sim off.
  patch({{"allow_sim", false}}, 1, 1);
  EXPECT_EQ(valid(), without({nodes["node_sim"].workload_cert, nodes["node_sim"].node_cert}));
  EXPECT_EQ(valid(), (std::set<std::string>{m_ok, nodes["node_hw"].node_cert, nodes["node_hw"].workload_cert}));
  // Loosening revokes nothing and reports nothing.
  json z = CallJson("PATCH", "/api/v1/zones/prod", {{"allow_sim", true}, {"approvals_required", 2}}, "admin", 200);
  EXPECT_FALSE(z.contains("revoked")) << z.dump();
  EXPECT_EQ(valid().size(), 3u);
  // The CRL lists exactly the revoked workload certificates (node certificates belong to the node CA).
  EXPECT_EQ(CrlSerials(dir_, Call("GET", "/api/v1/zones/prod/crl?format=pem").body),
            (std::set<std::string>{Upper(m_debug), Upper(hw_debug), Upper(nodes["node_cfg"].workload_cert),
                                   Upper(nodes["node_swh"].workload_cert), Upper(nodes["node_sim"].workload_cert)}));
  json audit = CallJson("GET", "/api/v1/audit?action=zone.update", nullptr, "viewer", 200);
  ASSERT_EQ(audit["items"].size(), 5u);
  int64_t revoked = 0;
  for (const auto& a : audit["items"]) {
    if (a["detail"].contains("revoked")) {
      revoked += a["detail"]["revoked"]["workload_certificates"].get<int64_t>() +
                 a["detail"]["revoked"]["node_certificates"].get<int64_t>();
    }
  }
  EXPECT_EQ(revoked, 8);
}

TEST_F(ApiTest, IssuedCertificateFollowsTheProfileAndRevocationReachesTheCrl) {
  MakeZoneAndApp(1);
  json build = MakeBuild();
  // Not approved yet: no certificate.
  Response r = Call("POST", "/api/v1/certificates", json{{"build_id", build["id"]}, {"csr", MakeCsr({"web.example.com"})}}.dump(),
                    "admin");
  EXPECT_EQ(r.status, 409u) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "build_not_approved");
  CallJson("POST", "/api/v1/tasks/" + build["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  // A name outside the app's domains is refused.
  r = Call("POST", "/api/v1/certificates", json{{"build_id", build["id"]}, {"csr", MakeCsr({"evil.example.org"})}}.dump(),
           "admin");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "domain_not_allowed");
  json cert = CallJson("POST", "/api/v1/certificates",
                       {{"build_id", build["id"]}, {"csr", MakeCsr({"web.example.com", "a.svc.example.com"})}}, "admin", 201);
  auto x = crypto::CertFromPem(cert["pem"].get<std::string>());
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(crypto::SerialHex(x->get()), cert["serial"]);
  EXPECT_GE(cert["serial"].get<std::string>().size(), 30u);  // ~128 random bits
  // SANs: DNS names and the SPIFFE URI.
  std::string sans = cert["sans"].dump();
  EXPECT_NE(sans.find("spiffe://prod/app/web"), std::string::npos);
  EXPECT_NE(sans.find("a.svc.example.com"), std::string::npos);
  // Chain verifies under the zone CA with OpenSSL.
  std::string ca_pem = Call("GET", "/api/v1/zones/prod/ca").body;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/ca.pem", ca_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/leaf.pem", cert["pem"].get<std::string>()).ok());
  std::string cmd = "openssl verify -CAfile " + dir_ + "/ca.pem -purpose sslserver " + dir_ + "/leaf.pem >" + dir_ +
                    "/verify.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadWholeFile(dir_ + "/verify.txt").value_or("") << cert["pem"];

  // Revoking the build revokes the certificate, and the CRL lists it.
  json revoked = CallJson("POST", "/api/v1/builds/" + build["id"].get<std::string>() + "/revoke", {{"reason", "CVE"}},
                          "approver1", 200);
  EXPECT_EQ(revoked["status"], "revoked");
  json c = CallJson("GET", "/api/v1/certificates/" + cert["serial"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(c["status"], "revoked");
  Response crl = Call("GET", "/api/v1/zones/prod/crl?format=pem");
  ASSERT_EQ(crl.status, 200u);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/crl.pem", crl.body).ok());
  std::string text_cmd = "openssl crl -in " + dir_ + "/crl.pem -noout -text > " + dir_ + "/crl.txt 2>&1";
  ASSERT_EQ(std::system(text_cmd.c_str()), 0);
  auto text = ReadWholeFile(dir_ + "/crl.txt");
  ASSERT_TRUE(text.ok());
  std::string serial_upper = cert["serial"];
  for (char& ch : serial_upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_NE(text->find(serial_upper), std::string::npos) << *text;
  // With the CRL, OpenSSL now refuses the leaf.
  std::string crl_cmd = "cat " + dir_ + "/ca.pem " + dir_ + "/crl.pem > " + dir_ + "/ca-crl.pem && openssl verify -crl_check -CAfile " +
                        dir_ + "/ca-crl.pem " + dir_ + "/leaf.pem >/dev/null 2>&1";
  EXPECT_NE(std::system(crl_cmd.c_str()), 0);
}

TEST_F(ApiTest, AuditChainVerifiesAndDetectsEdits) {
  MakeZoneAndApp(1);
  MakeBuild();
  json v = CallJson("GET", "/api/v1/audit/verify", nullptr, "viewer", 200);
  EXPECT_TRUE(v["ok"]);
  EXPECT_GT(v["entries"].get<int>(), 5);
  json list = CallJson("GET", "/api/v1/audit?action=build", nullptr, "viewer", 200);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["action"], "build.create");
  EXPECT_EQ(list["items"][0]["actor"], "user:member");
  ASSERT_TRUE(db_->Write([](store::Transaction& tx) {
                   return tx.Exec("UPDATE audit SET actor = 'user:nobody' WHERE action = 'build.create'").status();
                 }).ok());
  v = CallJson("GET", "/api/v1/audit/verify", nullptr, "viewer", 200);
  EXPECT_FALSE(v["ok"]);
}

TEST_F(ApiTest, ListsPaginate) {
  for (int i = 0; i < 5; ++i) {
    CallJson("POST", "/api/v1/zones", {{"name", "z" + std::to_string(i)}}, "admin", 201);
    clock_.Advance(std::chrono::seconds(1));
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    json page = CallJson("GET", "/api/v1/zones?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), nullptr, "viewer", 200);
    for (const auto& z : page["items"]) seen.insert(z["name"]);
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(Call("GET", "/api/v1/zones?limit=0", "", "viewer").status, 400u);
  EXPECT_EQ(Call("GET", "/api/v1/zones?cursor=!!!", "", "viewer").status, 400u);
  EXPECT_EQ(Call("GET", "/api/v1/zones?cursor=bm9wZQ", "", "viewer").status, 400u);
}

// ------------------------------------------------------------------ bad input

TEST_F(ApiTest, BadInputGets4xxJsonAndChangesNothing) {
  MakeZoneAndApp(1);
  json build = MakeBuild();
  std::string before = Snapshot();
  struct Case {
    std::string method, path, body;
    unsigned status;
    std::string code;  // "" = any
  };
  std::string mre(64, 'c');
  std::vector<Case> cases = {
      {"POST", "/api/v1/zones", "{", 400, "invalid_json"},
      {"POST", "/api/v1/zones", "[]", 400, ""},
      {"POST", "/api/v1/zones", "{\"name\": 5}", 400, "invalid_type"},
      {"POST", "/api/v1/zones", "{}", 400, "missing_field"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"bogus\":1}", 400, "unknown_field"},
      {"POST", "/api/v1/zones", "{\"name\":\"prod\"}", 409, "zone_exists"},
      {"POST", "/api/v1/zones", "{\"name\":\"a'; DROP TABLE zones; --\"}", 400, "invalid_name"},
      {"POST", "/api/v1/zones", "{\"name\":\"../../etc/passwd\"}", 400, "invalid_name"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"min_tcb\":\"Great\"}", 400, "invalid_min_tcb"},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"approvals_required\":0}", 400, ""},
      {"POST", "/api/v1/zones", "{\"name\":\"ok\",\"approvals_required\":\"2\"}", 400, "invalid_type"},
      {"POST", "/api/v1/zones", "{\"name\":\"" + std::string(10000, 'a') + "\"}", 400, ""},
      {"PATCH", "/api/v1/zones/nope", "{}", 404, "zone_not_found"},
      {"GET", "/api/v1/zones/..%2F..%2Fetc", "", 404, ""},
      {"POST", "/api/v1/apps", "{\"name\":\"web\",\"zone\":\"prod\"}", 409, "app_exists"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"nope\"}", 404, "zone_not_found"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"prod\",\"domains\":[\"bad domain\"]}", 400, "invalid_domain"},
      {"POST", "/api/v1/apps", "{\"name\":\"x\",\"zone\":\"prod\",\"domains\":\"a.com\"}", 400, "invalid_type"},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"zz\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":70000,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"web\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1.5,\"isvsvn\":1}", 400, ""},
      {"POST", "/api/v1/builds", "{\"app\":\"ghost\",\"mrenclave\":\"" + mre + "\",\"mrsigner\":\"" + mre + "\",\"isvprodid\":1,\"isvsvn\":1}", 404, "app_not_found"},
      {"POST", "/api/v1/tasks/task_nope/approve", "", 404, "task_not_found"},
      {"POST", "/api/v1/builds/build_nope/revoke", "", 404, "build_not_found"},
      {"POST", "/api/v1/certificates", "{\"build_id\":\"" + build["id"].get<std::string>() + "\",\"csr\":\"garbage\"}", 400, ""},
      {"POST", "/api/v1/certificates", "{\"build_id\":\"" + build["id"].get<std::string>() + "\",\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}", 400, ""},
      {"POST", "/api/v1/certificates/deadbeef/revoke", "", 404, "certificate_not_found"},
      {"POST", "/api/v1/users", "{\"name\":\"u\",\"role\":\"root\",\"password\":\"12345678\"}", 400, "invalid_role"},
      {"POST", "/api/v1/users", "{\"name\":\"u\",\"role\":\"viewer\",\"password\":\"short\"}", 400, "weak_password"},
      {"POST", "/api/v1/users", "{\"name\":\"admin\",\"role\":\"viewer\",\"password\":\"12345678\"}", 409, "user_exists"},
      {"DELETE", "/api/v1/users/admin", "", 409, "last_admin"},
      {"PATCH", "/api/v1/users/admin", "{\"role\":\"viewer\"}", 409, "last_admin"},
      {"POST", "/api/v1/zones/prod/join-tokens", "{\"ttl_seconds\":1}", 400, ""},
      {"GET", "/api/v1/builds?status=weird", "", 400, "invalid_status"},
      {"GET", "/api/v1/nope", "", 404, ""},
      {"PUT", "/api/v1/zones", "{}", 405, ""},
  };
  for (const auto& c : cases) {
    Response r = Call(c.method, c.path, c.body, "admin");
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body.substr(0, 80) << " -> " << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << c.path << ": " << r.body;
    EXPECT_TRUE(j["error"]["code"].is_string() && j["error"]["message"].is_string());
    if (!c.code.empty()) {
      EXPECT_EQ(j["error"]["code"], c.code) << c.method << " " << c.path << " " << c.body.substr(0, 80);
    }
    EXPECT_EQ(Snapshot(), before) << c.method << " " << c.path << " " << c.body.substr(0, 80);
  }
}

// ------------------------------------------------------------------ OpenAPI

TEST_F(ApiTest, OpenApiDocumentMatchesTheRouter) {
  auto doc = json::parse(OpenApiDocument(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << "docs/api/openapi.json is not valid JSON";
  ASSERT_TRUE(doc.contains("paths"));
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      if (method == "parameters" || method == "summary" || method == "description") continue;
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(m + " " + path);
    }
  }
  std::set<std::string> routed;
  for (const auto& r : router_->Routes()) routed.insert(r.method + " " + r.pattern);
  for (const auto& r : routed) EXPECT_TRUE(documented.count(r)) << "undocumented route: " << r;
  for (const auto& d : documented) EXPECT_TRUE(routed.count(d)) << "documented but not routed: " << d;
  Response served = Call("GET", "/api/v1/openapi.json");
  EXPECT_EQ(served.status, 200u);
  EXPECT_EQ(json::parse(served.body)["openapi"].get<std::string>().substr(0, 2), "3.");
}

TEST_F(ApiTest, HealthAndMetrics) {
  EXPECT_EQ(Call("GET", "/healthz").status, 200u);
  EXPECT_EQ(Call("GET", "/readyz").status, 200u);
  Response m = Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_NE(m.body.find("vouch_tasks_pending"), std::string::npos);
}


// ------------------------------------------------------------------ backups (issue 18)

// The backup routes with fake archive hooks (vouchd sets libs/backup's; e2e.backup_restore and
// e2e.server_backups run those): an archive is a small file, "BAD" content fails verification.
class BackupApiTest : public ApiTest {
 protected:
  void Configure(ManagerOptions& o) override {
    backup_dir_ = dir_ + "/backups";
    o.backups.dir = backup_dir_;
    o.backups.keep = 3;
    o.backups.create = [this](const std::string& path) -> Result<json> {
      if (block_.load()) {
        entered_.store(true);
        while (block_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (fail_create_.load()) return Unavailable("disk full", "backup_store_tool_failed");
      VOUCH_RETURN_IF_ERROR(WriteFileAtomic(path, "archive " + std::to_string(++made_), 0600));
      return json{{"schema_version", 4}, {"created_at", FormatRfc3339(clock_.Now())}};
    };
    o.backups.verify = [](const std::string& path) -> Result<json> {
      VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, 1 << 20));
      if (text.rfind("archive ", 0) != 0) return DataLoss("checksum mismatch", "backup_archive_corrupt");
      return json{{"schema_version", 4}, {"created_at", "2026-01-02T03:04:05Z"}};
    };
  }
  std::vector<std::string> FilesInFolder() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(backup_dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string backup_dir_;
  std::atomic<bool> block_{false}, entered_{false}, fail_create_{false};
  std::atomic<int> made_{0};
};

TEST_F(ApiTest, BackupRoutesAnswer409WhenNoBackupFolderIsConfigured) {
  json e = CallJson("POST", "/api/v1/backups", nullptr, "admin", 409);
  EXPECT_EQ(e["error"]["code"], "backups_disabled");
  e = CallJson("GET", "/api/v1/backups", nullptr, "admin", 409);
  EXPECT_EQ(e["error"]["code"], "backups_disabled");
}

TEST_F(BackupApiTest, AnAdminTakesABackupThatIsListedVerifiedAndAudited) {
  EXPECT_NE(metrics_.Render().find("vouch_backup_newest_age_seconds -1"), std::string::npos) << metrics_.Render();
  for (const char* user : {"member", "viewer", "approver1"}) {
    EXPECT_EQ(Call("POST", "/api/v1/backups", "", user).status, 403u) << user;
    EXPECT_EQ(Call("GET", "/api/v1/backups", "", user).status, 403u) << user;
  }
  EXPECT_EQ(made_.load(), 0);
  json b = CallJson("POST", "/api/v1/backups", nullptr, "admin", 201);
  const std::string name = b["name"];
  EXPECT_TRUE(name.starts_with("vouch-backup-") && name.ends_with("-00.vbk")) << name;
  EXPECT_EQ(b["schema_version"], 4);
  EXPECT_EQ(b["created_at"], "2026-01-02T03:04:05Z");  // the verified manifest's
  auto bytes = ReadWholeFile(backup_dir_ + "/" + name, 1 << 20);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(b["size"], bytes->size());
  EXPECT_EQ(b["sha256"], HexEncode(crypto::Sha256(*bytes)));
  json list = CallJson("GET", "/api/v1/backups", nullptr, "admin", 200);
  ASSERT_EQ(list["backups"].size(), 1u) << list.dump();
  EXPECT_EQ(list["backups"][0]["name"], name);
  EXPECT_EQ(list["backups"][0]["verified"], true);
  // Metrics: one good backup, its age from the (fixed) clock.
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("vouch_backups_total{result=\"ok\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("vouch_backup_newest_age_seconds -1"), std::string::npos) << text;
  json audit = CallJson("GET", "/api/v1/audit?limit=100", nullptr, "admin", 200);
  bool found = false;
  for (const auto& e : audit["items"]) {
    if (e["action"] == "backup.create" && e["target"] == name && e.dump().find("\"ok\"") != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << audit.dump(1);
}

TEST_F(BackupApiTest, RetentionKeepsTheNewestN) {
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) names.push_back(CallJson("POST", "/api/v1/backups", nullptr, "admin", 201)["name"]);
  EXPECT_EQ(FilesInFolder(), (std::vector<std::string>{names[2], names[3], names[4]}));
  json list = CallJson("GET", "/api/v1/backups", nullptr, "admin", 200);
  ASSERT_EQ(list["backups"].size(), 3u) << list.dump();
  EXPECT_EQ(list["backups"][0]["name"], names[4]);  // newest first
  EXPECT_EQ(list["keep"], 3);
}

TEST_F(BackupApiTest, ASecondBackupWhileOneRunsIs409) {
  block_ = true;
  Response first;
  std::thread t([&] { first = Call("POST", "/api/v1/backups", "", "admin"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!entered_.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(entered_.load()) << "the first backup never started";
  json e = CallJson("POST", "/api/v1/backups", nullptr, "admin", 409);
  EXPECT_EQ(e["error"]["code"], "backup_in_progress");
  block_ = false;
  t.join();
  EXPECT_EQ(first.status, 201u) << first.body;
  EXPECT_EQ(made_.load(), 1);
  CallJson("POST", "/api/v1/backups", nullptr, "admin", 201);  // free again
}

TEST_F(BackupApiTest, BadInputAndFailuresAreRefusedCleanly) {
  EXPECT_EQ(Call("POST", "/api/v1/backups", "{\"out\":\"/etc/passwd\"}", "admin").status, 400u);
  EXPECT_EQ(Call("POST", "/api/v1/backups", "not json", "admin").status, 400u);
  EXPECT_EQ(made_.load(), 0);
  // A failed backup: the error is answered, counted, audited; nothing is left in the folder.
  fail_create_ = true;
  http::Response unavailable = Call("POST", "/api/v1/backups", "", "admin");
  EXPECT_EQ(unavailable.status, 503u);
  EXPECT_EQ(unavailable.Header("Retry-After"), "1");  // every 503 of the API says when to come back
  json e = json::parse(unavailable.body, nullptr, false);
  EXPECT_EQ(e["error"]["code"], "backup_store_tool_failed");
  EXPECT_NE(metrics_.Render().find("vouch_backups_total{result=\"failed\"} 1"), std::string::npos);
  fail_create_ = false;
  // A damaged archive in the folder is listed as not verified, with the reason.
  json good = CallJson("POST", "/api/v1/backups", nullptr, "admin", 201);
  ASSERT_TRUE(WriteFileAtomic(backup_dir_ + "/vouch-backup-20000101T000000Z-00.vbk", "BAD", 0600).ok());
  json list = CallJson("GET", "/api/v1/backups", nullptr, "admin", 200);
  ASSERT_EQ(list["backups"].size(), 2u) << list.dump();
  EXPECT_EQ(list["backups"][0]["name"], good["name"]);
  EXPECT_EQ(list["backups"][1]["verified"], false);
  EXPECT_EQ(list["backups"][1]["reason"], "backup_archive_corrupt");
  json audit = CallJson("GET", "/api/v1/audit?limit=100", nullptr, "admin", 200);
  bool failed_audited = false;
  for (const auto& a : audit["items"]) {
    if (a["action"] == "backup.create" && a.dump().find("\"failed\"") != std::string::npos) failed_audited = true;
  }
  EXPECT_TRUE(failed_audited) << audit.dump(1);
}

}  // namespace
}  // namespace vouch::api
