#include "http/router.h"

#include <gtest/gtest.h>

namespace vouch::http {
namespace {

Request MakeRequest(std::string method, std::string target) {
  Request req;
  req.method = std::move(method);
  req.target = std::move(target);
  EXPECT_TRUE(req.ParseTarget().ok()) << req.target;
  return req;
}

Handler Echo(std::string tag) {
  return [tag](Request& req) {
    nlohmann::json j = {{"tag", tag}, {"route", req.route}, {"params", req.path_params}};
    return Response::Json(j);
  };
}

nlohmann::json BodyOf(const Response& r) { return nlohmann::json::parse(r.body); }

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/healthz", Echo("healthz"));
    router_.Add("GET", "/api/v1/zones", Echo("list"));
    router_.Add("POST", "/api/v1/zones", Echo("create"));
    router_.Add("GET", "/api/v1/zones/{id}", Echo("get"));
    router_.Add("PATCH", "/api/v1/zones/{id}", Echo("patch"));
    router_.Add("GET", "/api/v1/zones/{id}/ca", Echo("ca"));
    router_.Add("GET", "/api/v1/audit/{seq}", Echo("audit-entry"));
    router_.Add("GET", "/api/v1/audit/verify", Echo("audit-verify"));
    router_.Add("DELETE", "/api/v1/apps/{id}/domains/{domain}", Echo("del-domain"));
    router_.Add("GET", "/ui/{path...}", Echo("ui"));
  }
  Response Dispatch(std::string method, std::string target) {
    Request req = MakeRequest(std::move(method), std::move(target));
    return router_.Dispatch(req);
  }
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralRoute) {
  Response r = Dispatch("GET", "/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["tag"], "healthz");
  EXPECT_EQ(BodyOf(r)["route"], "/healthz");
}

TEST_F(RouterTest, FillsPathParamsAndRecordsPattern) {
  Response r = Dispatch("GET", "/api/v1/zones/zone_1/ca");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["tag"], "ca");
  EXPECT_EQ(BodyOf(r)["route"], "/api/v1/zones/{id}/ca");
  EXPECT_EQ(BodyOf(r)["params"]["id"], "zone_1");

  r = Dispatch("DELETE", "/api/v1/apps/app1/domains/a.example.com");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["params"]["id"], "app1");
  EXPECT_EQ(BodyOf(r)["params"]["domain"], "a.example.com");
}

TEST_F(RouterTest, SelectsByMethod) {
  EXPECT_EQ(BodyOf(Dispatch("GET", "/api/v1/zones"))["tag"], "list");
  EXPECT_EQ(BodyOf(Dispatch("POST", "/api/v1/zones"))["tag"], "create");
  EXPECT_EQ(BodyOf(Dispatch("PATCH", "/api/v1/zones/x"))["tag"], "patch");
}

TEST_F(RouterTest, PercentDecodesParamsWithinOneSegment) {
  Response r = Dispatch("GET", "/api/v1/zones/a%2Fb%20c");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["params"]["id"], "a/b c");
  EXPECT_EQ(BodyOf(r)["route"], "/api/v1/zones/{id}");
}

TEST_F(RouterTest, LiteralBeatsParameter) {
  EXPECT_EQ(BodyOf(Dispatch("GET", "/api/v1/audit/verify"))["tag"], "audit-verify");
  EXPECT_EQ(BodyOf(Dispatch("GET", "/api/v1/audit/42"))["tag"], "audit-entry");
}

TEST_F(RouterTest, RestParameterTakesRemainingPath) {
  Response r = Dispatch("GET", "/ui/js/app.js");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["params"]["path"], "js/app.js");
  r = Dispatch("GET", "/ui/");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["params"]["path"], "");
}

TEST_F(RouterTest, UnknownPathIs404Json) {
  Response r = Dispatch("GET", "/api/v1/nope");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(BodyOf(r)["error"]["code"], "not_found");
  // An empty parameter segment does not match "{id}".
  EXPECT_EQ(Dispatch("GET", "/api/v1/zones//ca").status, 404u);
  // Trailing slash is a different path.
  EXPECT_EQ(Dispatch("GET", "/healthz/").status, 404u);
}

TEST_F(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  Response r = Dispatch("DELETE", "/api/v1/zones");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(BodyOf(r)["error"]["code"], "method_not_allowed");
  EXPECT_EQ(r.Header("allow"), "GET, HEAD, POST");
  r = Dispatch("PUT", "/api/v1/zones/z1");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.Header("Allow"), "GET, HEAD, PATCH");
}

TEST_F(RouterTest, HeadFallsBackToGet) {
  Response r = Dispatch("HEAD", "/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(BodyOf(r)["tag"], "healthz");
}

TEST_F(RouterTest, BadEscapeIs400) {
  Request req;
  req.method = "GET";
  req.target = "/api/v1/zones/%zz";
  Response r = router_.Dispatch(req);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(BodyOf(r)["error"]["code"], "invalid_target");
}

TEST_F(RouterTest, ListsRoutesInRegistrationOrder) {
  std::vector<RouteInfo> routes = router_.Routes();
  ASSERT_EQ(routes.size(), 10u);
  EXPECT_EQ(routes[0].method, "GET");
  EXPECT_EQ(routes[0].pattern, "/healthz");
  EXPECT_EQ(routes[3].name, "GET /api/v1/zones/{id}");
}

TEST(RouterAdd, RejectsMalformedAndDuplicatePatterns) {
  Router router;
  auto h = [](Request&) { return Response::NoContent(); };
  EXPECT_TRUE(router.AddChecked("GET", "/a/{id}", h).ok());
  EXPECT_EQ(router.AddChecked("GET", "/a/{id}", h).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(router.AddChecked("GET", "a", h).ok());
  EXPECT_FALSE(router.AddChecked("get", "/b", h).ok());
  EXPECT_FALSE(router.AddChecked("GET", "/b/{x}/{x}", h).ok());
  EXPECT_FALSE(router.AddChecked("GET", "/b/{rest...}/c", h).ok());
  EXPECT_FALSE(router.AddChecked("GET", "/b/x{y}", h).ok());
  EXPECT_FALSE(router.AddChecked("GET", "/b", Handler()).ok());
  EXPECT_EQ(router.Routes().size(), 1u);
}

TEST(RequestTarget, DecodesPathAndQuery) {
  Request req;
  req.target = "/a%20b/c?x=1&y=%2Fz&flag&name=a+b&x=2&empty=";
  ASSERT_TRUE(req.ParseTarget().ok());
  EXPECT_EQ(req.path, "/a b/c");
  EXPECT_EQ(req.query.at("x"), "2");  // last wins
  EXPECT_EQ(req.query.at("y"), "/z");
  EXPECT_EQ(req.query.at("flag"), "");
  EXPECT_EQ(req.query.at("name"), "a b");
  EXPECT_EQ(req.Query("empty"), "");
  EXPECT_EQ(req.Query("missing"), "");
  EXPECT_EQ(req.query.size(), 5u);
}

TEST(RequestTarget, RejectsBadTargets) {
  for (const char* t :
       {"", "*", "http://example.com/", "/a%", "/a%4", "/a%g0", "/a?x=%zz", "/a%00b", "/a?x=%00"}) {
    Request req;
    req.target = t;
    Status s = req.ParseTarget();
    EXPECT_FALSE(s.ok()) << t;
    EXPECT_EQ(s.reason(), "invalid_target") << t;
  }
}

TEST(RequestHeaders, LookupIsCaseInsensitive) {
  Request req;
  req.headers = {{"Content-Type", "application/json"}, {"X-Twice", "1"}, {"x-twice", "2"}};
  EXPECT_EQ(req.Header("content-type"), "application/json");
  EXPECT_EQ(req.Header("X-TWICE"), "1");
  EXPECT_TRUE(req.HasHeader("x-twice"));
  EXPECT_EQ(req.Header("Authorization"), "");
  EXPECT_FALSE(req.HasHeader("Authorization"));
}

}  // namespace
}  // namespace vouch::http
