#include "ui/ui.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace vouch::ui {
namespace {

http::Response Get(const http::Router& router, const std::string& target,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request req;
  req.method = "GET";
  req.target = target;
  EXPECT_TRUE(req.ParseTarget().ok()) << target;
  req.headers = std::move(headers);
  return router.Dispatch(req);
}

http::Router MakeRouter() {
  http::Router r;
  AddRoutes(r);
  return r;
}

std::string ReadSource(const std::string& name) {
  std::ifstream in(std::string(VOUCH_UI_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(WebUi, IndexIsServedWithAStrictPolicyAndValidator) {
  http::Router router = MakeRouter();
  http::Response r = Get(router, "/");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"/ui/app.js\"></script>"), std::string::npos);
  std::string csp = r.Header("Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_EQ(r.Header("X-Frame-Options"), "DENY");
  EXPECT_EQ(r.Header("Cache-Control"), "no-cache");
  EXPECT_EQ(r.Header("ETag").size(), 34u) << r.Header("ETag");
  EXPECT_EQ(r.body, ReadSource("index.html")) << "the embedded copy is the source file";
}

TEST(WebUi, MatchingIfNoneMatchGets304WithoutBody) {
  http::Router router = MakeRouter();
  http::Response first = Get(router, "/ui/app.js");
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(first.content_type, "text/javascript; charset=utf-8");
  std::string etag = first.Header("ETag");
  http::Response again = Get(router, "/ui/app.js", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.Header("ETag"), etag);
  EXPECT_EQ(Get(router, "/ui/app.js", {{"If-None-Match", "\"other\", W/" + etag}}).status, 304u);
  EXPECT_EQ(Get(router, "/ui/app.js", {{"If-None-Match", "\"0000\""}}).status, 200u);
  EXPECT_NE(Get(router, "/ui/style.css").Header("ETag"), etag) << "each file has its own validator";
}

TEST(WebUi, UnknownAndTraversingPathsAre404) {
  http::Router router = MakeRouter();
  for (const char* t : {"/ui/nope.js", "/ui/", "/ui/../libs/ui/ui.cc", "/ui/%2e%2e/CMakeLists.txt", "/ui/tests/ui_test.mjs",
                        "/ui/package.json", "/ui/index.html/x"}) {
    http::Response r = Get(router, t);
    EXPECT_EQ(r.status, 404u) << t;
  }
}

// Every script, stylesheet and icon index.html names, and every module a script imports, is
// embedded; nothing is inline; no external origin is referenced.
TEST(WebUi, EveryReferencedFileIsEmbeddedAndNothingIsInline) {
  std::set<std::string> embedded;
  for (const Asset& a : Assets()) embedded.insert(std::string(a.path));
  for (const char* need : {"index.html", "app.js", "api.js", "dom.js", "views.js", "style.css", "favicon.svg"}) {
    EXPECT_TRUE(embedded.count(need)) << need;
  }
  std::string index(FindAsset("index.html")->body);
  std::regex ref(R"re((?:src|href)="/ui/([^"]+)")re");
  int refs = 0;
  for (auto it = std::sregex_iterator(index.begin(), index.end(), ref); it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(embedded.count((*it)[1].str())) << (*it)[1].str();
    ++refs;
  }
  EXPECT_GE(refs, 3);
  std::regex script_tag(R"re(<script([^>]*)>([^<]*)</script>)re");
  for (auto it = std::sregex_iterator(index.begin(), index.end(), script_tag); it != std::sregex_iterator(); ++it) {
    EXPECT_NE((*it)[1].str().find("src="), std::string::npos) << "inline script in index.html";
    EXPECT_TRUE((*it)[2].str().empty());
  }
  EXPECT_FALSE(std::regex_search(index, std::regex(R"re(\son[a-z]+=)re"))) << "inline event handler";
  EXPECT_FALSE(std::regex_search(index, std::regex(R"re(\sstyle=)re"))) << "inline style";
  std::regex import_re(R"re(from '\./([a-z_]+\.js)')re");
  for (const Asset& a : Assets()) {
    std::string body(a.body);
    if (a.path.ends_with(".svg")) continue;  // its xmlns is a name, not a fetch
    EXPECT_EQ(body.find("http://"), std::string::npos) << a.path << " names an external origin";
    EXPECT_EQ(body.find("https://"), std::string::npos) << a.path << " names an external origin";
    if (a.path.ends_with(".js")) {
      for (auto it = std::sregex_iterator(body.begin(), body.end(), import_re); it != std::sregex_iterator(); ++it) {
        EXPECT_TRUE(embedded.count((*it)[1].str())) << a.path << " imports " << (*it)[1].str();
      }
      for (const char* sink : {".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"}) {
        EXPECT_EQ(body.find(sink), std::string::npos) << a.path << " uses " << sink;
      }
      EXPECT_EQ(body.find("localStorage"), std::string::npos) << a.path << ": nothing secret is stored in the browser";
    }
  }
}

}  // namespace
}  // namespace vouch::ui
