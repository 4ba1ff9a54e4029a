#include "api/session_cookie.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "api/manager.h"
#include "api/routes.h"
#include "crypto/random.h"
#include "store/database.h"
#include "testing/request.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Request;
using http::Response;

TEST(SessionCookie, CookieValueFindsTheNamedCookieOnly) {
  EXPECT_EQ(CookieValue("a=1; __Host-vouch_session=vt_x; b=2", kSessionCookie), "vt_x");
  EXPECT_EQ(CookieValue("__Host-vouch_session=vt_y", kSessionCookie), "vt_y");
  EXPECT_EQ(CookieValue("  __Host-vouch_session=vt_z  ;b=2", kSessionCookie), "vt_z");
  EXPECT_EQ(CookieValue("x__Host-vouch_session=vt_x; vouch_session=vt_q", kSessionCookie), "");
  EXPECT_EQ(CookieValue("", kSessionCookie), "");
  EXPECT_EQ(CookieValue(";;;=;", kSessionCookie), "");
}

TEST(SessionCookie, SetCookieIsHostOnlySecureHttpOnlyStrict) {
  std::string c = SessionSetCookie("vt_abc", 3600);
  EXPECT_EQ(c.rfind("__Host-vouch_session=vt_abc;", 0), 0u) << c;
  for (const char* attr : {"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict", "; Max-Age=3600"}) {
    EXPECT_NE(c.find(attr), std::string::npos) << attr << " in " << c;
  }
  EXPECT_EQ(c.find("Domain"), std::string::npos);
  EXPECT_NE(ClearSessionSetCookie().find("Max-Age=0"), std::string::npos);
}

TEST(SessionCookie, CsrfTokenIsBoundToTheSession) {
  std::string t = CsrfTokenFor("vt_one");
  EXPECT_EQ(t.size(), 43u);  // base64url of 32 bytes, unpadded
  EXPECT_EQ(t, CsrfTokenFor("vt_one"));
  EXPECT_NE(t, CsrfTokenFor("vt_two"));
  EXPECT_TRUE(CsrfTokenMatches("vt_one", t));
  EXPECT_FALSE(CsrfTokenMatches("vt_two", t));
  EXPECT_FALSE(CsrfTokenMatches("vt_one", ""));
  EXPECT_FALSE(CsrfTokenMatches("vt_one", t.substr(1)));
}

TEST(SessionCookie, SameOriginComparesSchemeHostAndPort) {
  EXPECT_TRUE(SameOrigin("https://127.0.0.1:8443", "127.0.0.1:8443"));
  EXPECT_TRUE(SameOrigin("https://vouch.example", "vouch.example:443"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:8443", "127.0.0.1:8443"));
  EXPECT_FALSE(SameOrigin("https://evil.example", "127.0.0.1:8443"));
  EXPECT_FALSE(SameOrigin("https://127.0.0.1:8444", "127.0.0.1:8443"));
  EXPECT_FALSE(SameOrigin("null", "127.0.0.1:8443"));
  EXPECT_FALSE(SameOrigin("https://", ""));
}

// The cookie flow through the real router and manager.
class CookieSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::OpenDatabase("sqlite:" + dir_ + "/vouch.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    ManagerOptions options;
    options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
    options.session_ttl = std::chrono::seconds(600);
    auto m = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, options);
    ASSERT_TRUE(m.ok());
    manager_ = std::move(*m);
    router_ = std::make_unique<http::Router>(BuildRouter(*manager_, nullptr));
    ASSERT_TRUE(manager_->CreateUser(Principal::System(), "admin", "admin", "admin-password-1").ok());
    ASSERT_TRUE(manager_->CreateUser(Principal::System(), "viewer", "viewer", "viewer-password-1").ok());
  }
  void TearDown() override {
    router_.reset();
    manager_.reset();
    db_.reset();
  }
  Response Call(const std::string& method, const std::string& target, const std::string& body,
                std::vector<std::pair<std::string, std::string>> headers) {
    test::RequestBuilder builder(method, target);
    builder.Body(body);
    for (auto& [name, value] : headers) builder.Header(std::move(name), std::move(value));
    bool parsed = false;
    Request req = builder.Header("Host", "127.0.0.1:8443").Build(&parsed);
    EXPECT_TRUE(parsed);
    return router_->Dispatch(req);
  }
  // Logs in with {"cookie": true}; returns the cookie value and the CSRF token.
  std::pair<std::string, std::string> CookieLogin(const std::string& user, const std::string& password) {
    Response r = Call("POST", "/api/v1/sys/auth",
                      json{{"username", user}, {"password", password}, {"cookie", true}}.dump(), {});
    EXPECT_EQ(r.status, 200u) << r.body;
    std::string set_cookie = r.Header("Set-Cookie");
    std::string value = CookieValue(set_cookie.substr(0, set_cookie.find(';')), kSessionCookie);
    auto j = json::parse(r.body);
    EXPECT_FALSE(j.contains("token")) << "the token must not reach JavaScript: " << r.body;
    EXPECT_EQ(value.rfind("vt_", 0), 0u) << set_cookie;
    EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos);
    EXPECT_NE(set_cookie.find("Max-Age=600"), std::string::npos) << set_cookie;
    return {value, j.value("csrf_token", "")};
  }

  FixedClock clock_{FromUnixSeconds(1'800'000'000)};
  test::TempDir tmp_{"cookie"};
  std::string dir_ = tmp_.path();
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Router> router_;
};

TEST_F(CookieSessionTest, CookieAuthenticatesReadsAndWhoamiReturnsTheCsrfToken) {
  auto [cookie, csrf] = CookieLogin("admin", "admin-password-1");
  ASSERT_FALSE(csrf.empty());
  std::string jar = std::string(kSessionCookie) + "=" + cookie;
  Response who = Call("GET", "/api/v1/sys/whoami", "", {{"Cookie", jar}});
  ASSERT_EQ(who.status, 200u) << who.body;
  auto j = json::parse(who.body);
  EXPECT_EQ(j["name"], "admin");
  EXPECT_EQ(j["csrf_token"], csrf);
  EXPECT_EQ(Call("GET", "/api/v1/zones", "", {{"Cookie", jar}}).status, 200u);
  // Bearer callers get no CSRF token: they do not need one.
  Response bearer = Call("GET", "/api/v1/sys/whoami", "", {{"Authorization", "Bearer " + cookie}});
  EXPECT_FALSE(json::parse(bearer.body).contains("csrf_token"));
}

TEST_F(CookieSessionTest, MutationsWithACookieNeedTheCsrfTokenAndSameOrigin) {
  auto [cookie, csrf] = CookieLogin("admin", "admin-password-1");
  std::string jar = std::string(kSessionCookie) + "=" + cookie;
  std::string body = json{{"name", "prod"}}.dump();
  Response none = Call("POST", "/api/v1/zones", body, {{"Cookie", jar}});
  EXPECT_EQ(none.status, 403u);
  EXPECT_EQ(json::parse(none.body)["error"]["code"], "csrf_failed");
  Response wrong = Call("POST", "/api/v1/zones", body, {{"Cookie", jar}, {"X-CSRF-Token", CsrfTokenFor("vt_other")}});
  EXPECT_EQ(wrong.status, 403u);
  Response cross = Call("POST", "/api/v1/zones", body,
                        {{"Cookie", jar}, {"X-CSRF-Token", csrf}, {"Origin", "https://evil.example"}});
  EXPECT_EQ(cross.status, 403u);
  EXPECT_EQ(json::parse(cross.body)["error"]["code"], "csrf_failed");
  EXPECT_EQ(Call("GET", "/api/v1/zones/prod", "", {{"Cookie", jar}}).status, 404u) << "refused requests changed nothing";
  Response ok = Call("POST", "/api/v1/zones", body,
                     {{"Cookie", jar}, {"X-CSRF-Token", csrf}, {"Origin", "https://127.0.0.1:8443"}});
  EXPECT_EQ(ok.status, 201u) << ok.body;
}

TEST_F(CookieSessionTest, RolesStillApplyToCookieSessions) {
  auto [cookie, csrf] = CookieLogin("viewer", "viewer-password-1");
  std::string jar = std::string(kSessionCookie) + "=" + cookie;
  Response r = Call("POST", "/api/v1/zones", json{{"name", "z"}}.dump(), {{"Cookie", jar}, {"X-CSRF-Token", csrf}});
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "forbidden");
}

TEST_F(CookieSessionTest, LogoutEndsTheSessionAndClearsTheCookie) {
  auto [cookie, csrf] = CookieLogin("admin", "admin-password-1");
  std::string jar = std::string(kSessionCookie) + "=" + cookie;
  EXPECT_EQ(Call("DELETE", "/api/v1/sys/auth", "", {{"Cookie", jar}}).status, 403u) << "logout needs the CSRF token too";
  Response out = Call("DELETE", "/api/v1/sys/auth", "", {{"Cookie", jar}, {"X-CSRF-Token", csrf}});
  EXPECT_EQ(out.status, 204u) << out.body;
  EXPECT_NE(out.Header("Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", {{"Cookie", jar}}).status, 401u);
}

TEST_F(CookieSessionTest, ExpiredAndForeignCookiesAreRefused) {
  auto [cookie, csrf] = CookieLogin("admin", "admin-password-1");
  std::string jar = std::string(kSessionCookie) + "=" + cookie;
  clock_.Advance(std::chrono::seconds(601));
  EXPECT_EQ(Call("GET", "/api/v1/sys/whoami", "", {{"Cookie", jar}}).status, 401u);
  // An API key in the cookie is not a session.
  EXPECT_EQ(Call("GET", "/api/v1/zones", "", {{"Cookie", std::string(kSessionCookie) + "=vk_whatever-long-enough"}}).status,
            401u);
  EXPECT_EQ(Call("GET", "/api/v1/zones", "", {{"Cookie", "vouch_session=" + cookie}}).status, 401u);
}

TEST_F(CookieSessionTest, WrongPasswordSetsNoCookie) {
  Response r = Call("POST", "/api/v1/sys/auth",
                    json{{"username", "admin"}, {"password", "wrong-password"}, {"cookie", true}}.dump(), {});
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.Header("Set-Cookie"), "");
}

}  // namespace
}  // namespace vouch::api
