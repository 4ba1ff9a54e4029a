// ApiClient against a real local HTTPS server: python3's http.server wrapped in ssl, with
// certificates made by the openssl binary for each test run.
#include "client/api_client.h"
#include "testing/temp_dir.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace vouch::client {
namespace {

namespace fs = std::filesystem;

constexpr const char* kServerPy = R"PY(
import json, ssl, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

cert, key = sys.argv[1], sys.argv[2]
client_ca = sys.argv[3] if len(sys.argv) > 3 else None

ITEMS = [{"id": "item_%d" % i} for i in range(7)]
LIMITED = {}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path == "/echo":
            peer = self.connection.getpeercert()
            cn = None
            if peer:
                for rdn in peer.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName": cn = v
            self.send(200, json.dumps({
                "method": self.command, "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(raw) if raw else None,
                "client_cn": cn, "client_port": self.client_address[1]}))
        elif u.path.startswith("/error/"):
            status = int(u.path.split("/")[2])
            self.send(status, json.dumps({"error": {"code": "zone_not_found" if status == 404 else "name_exists",
                                                   "message": "zone \"blue\" not found" if status == 404 else "exists"}}))
        elif u.path.startswith("/sick/"):
            # 503 from the server listening on the port named in the path, 200 from any other.
            if int(u.path.split("/")[2]) == self.server.server_address[1]:
                self.send(503, json.dumps({"error": {"code": "draining", "message": "shutting down"}}))
            else:
                self.send(200, json.dumps({"method": self.command, "port": self.server.server_address[1]}))
        elif u.path.startswith("/limited/"):
            # /limited/<name>/<n>/<retry_after>: 429 rate_limited with Retry-After the first n
            # times for that name, then 200.
            _, _, name, n, ra = u.path.split("/")
            seen = LIMITED.get(name, 0)
            LIMITED[name] = seen + 1
            if seen < int(n):
                data = json.dumps({"error": {"code": "rate_limited", "message": "too many"}}).encode()
                self.send_response(429)
                self.send_header("Retry-After", ra)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send(200, json.dumps({"method": self.command, "attempts": seen + 1}))
        elif u.path == "/plain503":
            self.send(503, "Service Unavailable\n", "text/plain")
        elif u.path == "/raw":
            self.send(200, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "application/x-pem-file")
        elif u.path == "/empty":
            self.send(204, b"")
        elif u.path == "/slow":
            time.sleep(3)
            self.send(200, "{}")
        elif u.path == "/big":
            self.send(200, json.dumps({"blob": "x" * (2 << 20)}))
        elif u.path == "/notjson":
            self.send(200, "hello", "text/plain")
        elif u.path == "/pages":
            limit = int(q.get("limit", ["100"])[0])
            start = int(q.get("cursor", ["c0"])[0][1:])
            page = ITEMS[start:start + limit]
            nxt = "c%d" % (start + limit) if start + limit < len(ITEMS) else None
            self.send(200, json.dumps({"items": page, "next_cursor": nxt}))
        else:
            self.send(404, json.dumps({"error": {"code": "no_route", "message": "no route"}}))
    do_GET = do_POST = do_PATCH = do_DELETE = handle_any

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if client_ca:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
)PY";

void Run(const std::string& cmd) {
  ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

// Certificates shared by every test: a CA, a server cert for 127.0.0.1/localhost, a server cert
// for another name, an unrelated CA, and a client cert.
class Pki {
 public:
  static Pki& Get() {
    static Pki pki;  // its directory is removed at exit
    return pki;
  }
  test::TempDir tmp{"client-test"};
  fs::path dir = tmp.path();

 private:
  Pki() {
    const std::string d = dir.string();
    std::ofstream(d + "/server.py") << kServerPy;
    std::ofstream(d + "/san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::ofstream(d + "/other.cnf") << "subjectAltName=DNS:other.example\n";
    std::ofstream(d + "/client.cnf") << "extendedKeyUsage=clientAuth\n";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    Run("openssl req -x509" + ec + "-keyout " + d + "/ca.key -out " + d + "/ca.pem -subj /CN=test-ca -days 2");
    Run("openssl req -x509" + ec + "-keyout " + d + "/wrong.key -out " + d + "/wrong.pem -subj /CN=test-ca -days 2");
    for (const char* name : {"server", "other", "client"}) {
      const std::string n = name;
      const std::string ext = n == "server" ? "san" : n;
      Run("openssl req" + ec + "-keyout " + d + "/" + n + ".key -out " + d + "/" + n + ".csr -subj /CN=" + n);
      Run("openssl x509 -req -in " + d + "/" + n + ".csr -CA " + d + "/ca.pem -CAkey " + d +
          "/ca.key -CAcreateserial -days 2 -out " + d + "/" + n + ".pem -extfile " + d + "/" + ext + ".cnf");
    }
  }
};

// A python3 HTTPS server on 127.0.0.1; killed when destroyed.
class TestServer {
 public:
  TestServer(const std::string& cert, const std::string& key, const std::string& client_ca = "") {
    const std::string d = Pki::Get().dir.string();
    int out[2];
    if (::pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<std::string> args = {"python3", d + "/server.py", d + "/" + cert, d + "/" + key};
    if (!client_ca.empty()) args.push_back(d + "/" + client_ca);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "python3", &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~TestServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A loopback port that refuses connections (bound, never listened on, then closed).
int RefusingPort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string CaFile(const char* name = "ca.pem") { return (Pki::Get().dir / name).string(); }

std::unique_ptr<ApiClient> MakeClient(std::vector<std::string> urls, std::string token = "",
                                      std::string ca = CaFile()) {
  ClientOptions o;
  o.base_urls = std::move(urls);
  o.ca_file = std::move(ca);
  o.token = std::move(token);
  o.connect_timeout = std::chrono::milliseconds(3000);
  o.request_timeout = std::chrono::milliseconds(10000);
  auto c = ApiClient::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

class ApiClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new TestServer("server.pem", "server.key"); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestServer* server_;
};
TestServer* ApiClientTest::server_ = nullptr;

TEST_F(ApiClientTest, SendsBearerTokenAndJsonBody) {
  ASSERT_GT(server_->port(), 0);
  auto c = MakeClient({server_->url()}, "vt_secret");
  ASSERT_NE(c, nullptr);
  auto r = c->Post("/echo", {{"name", "blue"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["method"], "POST");
  EXPECT_EQ((*r)["authorization"], "Bearer vt_secret");
  EXPECT_EQ((*r)["content_type"], "application/json");
  EXPECT_EQ((*r)["body"], nlohmann::json({{"name", "blue"}}));
}

TEST_F(ApiClientTest, SendsNoAuthorizationWithoutToken) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)["authorization"].is_null());
  EXPECT_TRUE((*r)["body"].is_null());
}

TEST_F(ApiClientTest, PatchAndDeleteUseTheirMethods) {
  auto c = MakeClient({server_->url()}, "vk_key");
  ASSERT_NE(c, nullptr);
  auto p = c->Patch("/echo", {{"role", "admin"}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)["method"], "PATCH");
  EXPECT_EQ((*p)["body"]["role"], "admin");
  auto d = c->Delete("/echo");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)["method"], "DELETE");
  EXPECT_EQ((*d)["authorization"], "Bearer vk_key");
}

TEST_F(ApiClientTest, ErrorBodyBecomesStatusReasonAndMessage) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/error/404");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().reason(), "zone_not_found");
  EXPECT_EQ(r.status().message(), "zone \"blue\" not found");
  auto conflict = c->Post("/error/409", nlohmann::json::object());
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(conflict.status().reason(), "name_exists");
}

TEST_F(ApiClientTest, NonJsonErrorKeepsHttpStatus) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/plain503");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().reason(), "http_503");
  EXPECT_NE(r.status().message().find("Service Unavailable"), std::string::npos);
}

TEST_F(ApiClientTest, RawGetReturnsBodyAndEmptyBodyIsNull) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto raw = c->GetRaw("/raw");
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ(raw->rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  auto empty = c->Delete("/empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->is_null());
  auto notjson = c->Get("/notjson");
  ASSERT_FALSE(notjson.ok());
  EXPECT_EQ(notjson.status().reason(), "invalid_response");
}

// VOUCH_RECORD_API=FILE: one JSON line per answer received, the path without its query, the body
// only when it is JSON; nothing recorded without the variable.
TEST_F(ApiClientTest, RecordsEveryAnswerWhenVouchRecordApiIsSet) {
  test::TempDir tmp{"client-record"};
  const std::string file = tmp.File("api.jsonl");
  auto c = MakeClient({server_->url()}, "vt_secret");
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Get("/echo").ok());  // not recorded: the variable is not set yet
  ASSERT_EQ(::setenv("VOUCH_RECORD_API", file.c_str(), 1), 0);
  EXPECT_TRUE(c->Get("/pages?limit=2").ok());
  EXPECT_FALSE(c->Post("/error/409", {{"a", 1}}).ok());
  EXPECT_TRUE(c->GetRaw("/raw").ok());
  EXPECT_TRUE(c->Delete("/empty").ok());
  ::unsetenv("VOUCH_RECORD_API");
  ASSERT_TRUE(c->Get("/echo").ok());  // not recorded any more
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  std::ifstream in(file);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["method"], "GET");
  EXPECT_EQ(lines[0]["path"], "/pages");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[0]["body"]["items"].size(), 2u);
  EXPECT_EQ(lines[1]["method"], "POST");
  EXPECT_EQ(lines[1]["status"], 409);
  EXPECT_EQ(lines[1]["body"]["error"]["code"], "name_exists");
  EXPECT_EQ(lines[2]["path"], "/raw");
  EXPECT_EQ(lines[2]["content_type"], "application/x-pem-file");
  EXPECT_FALSE(lines[2].contains("body"));
  EXPECT_EQ(lines[3]["method"], "DELETE");
  EXPECT_EQ(lines[3]["status"], 204);
  EXPECT_FALSE(lines[3].contains("body"));
}

TEST_F(ApiClientTest, RawJsonPostSendsTheBytesAndReturnsTheAnswerUnparsed) {
  auto c = MakeClient({server_->url()}, "vt_secret");
  ASSERT_NE(c, nullptr);
  auto r = c->PostJsonRaw("/echo", R"({"csr":"x","n":1})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto j = nlohmann::json::parse(*r);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["content_type"], "application/json");
  EXPECT_EQ(j["body"], nlohmann::json({{"csr", "x"}, {"n", 1}}));
  auto err = c->PostJsonRaw("/error/409", "{}");
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().reason(), "name_exists");
  auto notjson = c->PostJsonRaw("/notjson", "{}");
  ASSERT_FALSE(notjson.ok());
  EXPECT_EQ(notjson.status().reason(), "invalid_response");
}

TEST_F(ApiClientTest, SlowAnswerIsDeadlineExceeded) {
  ClientOptions o;
  o.base_urls = {server_->url()};
  o.ca_file = CaFile();
  o.request_timeout = std::chrono::milliseconds(500);
  auto c = ApiClient::Create(o);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Get("/slow");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().reason(), "timeout");
}

TEST_F(ApiClientTest, RefusesResponsesOverTheSizeLimit) {
  ClientOptions o;
  o.base_urls = {server_->url()};
  o.ca_file = CaFile();
  o.max_response_bytes = 1 << 20;
  auto c = ApiClient::Create(o);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Get("/big");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  // The same client still works afterwards.
  EXPECT_TRUE((*c)->Get("/echo").ok());
}

TEST_F(ApiClientTest, ReusesTheConnectionAcrossCalls) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto a = c->Get("/echo");
  auto b = c->Get("/echo");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)["client_port"], (*b)["client_port"]);
}

TEST_F(ApiClientTest, RejectsServerSignedByAnotherCa) {
  auto c = MakeClient({server_->url()}, "vt_secret", CaFile("wrong.pem"));
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().reason(), "tls_error");
}

TEST_F(ApiClientTest, RejectsCertificateForAnotherHost) {
  TestServer other("other.pem", "other.key");
  ASSERT_GT(other.port(), 0);
  auto c = MakeClient({other.url()});
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "tls_error");
}

TEST_F(ApiClientTest, FailsOverToTheNextUrlWhenConnectionRefused) {
  const std::string dead = "https://127.0.0.1:" + std::to_string(RefusingPort());
  auto c = MakeClient({dead, server_->url()}, "vt_secret");
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["authorization"], "Bearer vt_secret");
  EXPECT_EQ(c->current_base_url(), server_->url());
  // POST fails over too: a refused connection never delivered the request.
  auto p = c->Post("/echo", {{"x", 1}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
}

TEST_F(ApiClientTest, IdempotentRequestsFailOverOn5xxButPostsAreNeverResent) {
  TestServer sick("server.pem", "server.key");
  ASSERT_GT(sick.port(), 0);
  const std::string path = "/sick/" + std::to_string(sick.port());
  auto c = MakeClient({sick.url(), server_->url()});
  ASSERT_NE(c, nullptr);
  // A POST that reached a server is not re-sent elsewhere, even on 503: it may have been processed.
  auto p = c->Post(path, {{"x", 1}});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().reason(), "draining");
  // ...but the next call starts with the other server (the sick one backs off).
  auto p2 = c->Post(path, {{"x", 2}});
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  EXPECT_EQ((*p2)["port"], server_->port());

  auto c2 = MakeClient({sick.url(), server_->url()});
  ASSERT_NE(c2, nullptr);
  auto g = c2->Get(path);  // GET: a 503 answer moves on to the next server
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)["port"], server_->port());
  EXPECT_EQ(c2->current_base_url(), server_->url());

  ClientOptions o;
  o.base_urls = {sick.url(), server_->url()};
  o.ca_file = CaFile();
  o.servers = std::make_shared<ServerSet>(2);
  auto c3 = ApiClient::Create(o);
  ASSERT_TRUE(c3.ok());
  auto i = (*c3)->Post(path, {{"x", 3}}, Idempotent::kYes);  // declared idempotent: fails over too
  ASSERT_TRUE(i.ok()) << i.status().ToString();
  EXPECT_EQ((*i)["method"], "POST");
  // The shared state makes another client of the same set start with the server that works.
  auto c4 = ApiClient::Create(o);
  ASSERT_TRUE(c4.ok());
  EXPECT_EQ((*c4)->current_base_url(), server_->url());
}

TEST_F(ApiClientTest, RateLimitedRequestsWaitRetryAfterAndTryAgain) {
  ASSERT_GT(server_->port(), 0);
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  // A 429 means the request was refused unprocessed: even a POST is sent again after Retry-After.
  auto start = std::chrono::steady_clock::now();
  auto r = c->Post("/limited/a/2/1", {{"x", 1}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["attempts"], 3);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // A Retry-After beyond the client's budget is returned at once as the error.
  ClientOptions o;
  o.base_urls = {server_->url()};
  o.ca_file = CaFile();
  o.max_retry_after = std::chrono::seconds(5);
  auto c2 = ApiClient::Create(o);
  ASSERT_TRUE(c2.ok());
  start = std::chrono::steady_clock::now();
  auto r2 = (*c2)->Get("/limited/b/1/30");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().reason(), "rate_limited");
  EXPECT_EQ(r2.status().code(), StatusCode::kResourceExhausted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ServerSet, StickyWithFailedServersBackingOffToTheEnd) {
  ServerSet s(3);
  EXPECT_EQ(s.Order(), (std::vector<size_t>{0, 1, 2}));
  s.Failed(0);
  EXPECT_EQ(s.Order(), (std::vector<size_t>{1, 2, 0}));
  s.Failed(1);
  EXPECT_EQ(s.Order(), (std::vector<size_t>{2, 0, 1}));
  s.Succeeded(2);
  EXPECT_EQ(s.current(), 2u);
  s.Succeeded(0);  // a failed server that answers again is current and no longer backing off
  EXPECT_EQ(s.Order(), (std::vector<size_t>{0, 2, 1}));
}

TEST_F(ApiClientTest, ConnectionRefusedEverywhereIsUnavailable) {
  const std::string dead1 = "https://127.0.0.1:" + std::to_string(RefusingPort());
  const std::string dead2 = "https://127.0.0.1:" + std::to_string(RefusingPort());
  auto c = MakeClient({dead1, dead2});
  ASSERT_NE(c, nullptr);
  auto r = c->Get("/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().reason(), "connection_failed");
  EXPECT_NE(r.status().message().find(dead1), std::string::npos);
  EXPECT_NE(r.status().message().find(dead2), std::string::npos);
}

TEST_F(ApiClientTest, ListAllFollowsNextCursor) {
  auto c = MakeClient({server_->url()});
  ASSERT_NE(c, nullptr);
  auto all = c->ListAll("/pages", 0, 3);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 7u);
  EXPECT_EQ((*all)[0]["id"], "item_0");
  EXPECT_EQ((*all)[6]["id"], "item_6");
  auto some = c->ListAll("/pages", 4, 3);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->size(), 4u);
  auto bad = c->ListAll("/echo");
  EXPECT_FALSE(bad.ok());
}

TEST(ApiClientMtls, PresentsClientCertificate) {
  TestServer server("server.pem", "server.key", "ca.pem");
  ASSERT_GT(server.port(), 0);
  ClientOptions o;
  o.base_urls = {server.url()};
  o.ca_file = CaFile();
  o.client_cert_file = CaFile("client.pem");
  o.client_key_file = CaFile("client.key");
  auto c = ApiClient::Create(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto r = (*c)->Get("/echo");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["client_cn"], "client");

  auto anonymous = MakeClient({server.url()});
  ASSERT_NE(anonymous, nullptr);
  EXPECT_FALSE(anonymous->Get("/echo").ok());
}

TEST(ApiClientCreate, ValidatesOptions) {
  EXPECT_FALSE(ApiClient::Create(ClientOptions{}).ok());
  ClientOptions http;
  http.base_urls = {"http://127.0.0.1:1"};
  EXPECT_EQ(ApiClient::Create(http).status().reason(), "invalid_url");
  ClientOptions missing_ca;
  missing_ca.base_urls = {"https://127.0.0.1:1"};
  missing_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(ApiClient::Create(missing_ca).status().reason(), "file_not_readable");
  ClientOptions cert_only;
  cert_only.base_urls = {"https://127.0.0.1:1"};
  cert_only.client_cert_file = CaFile("client.pem");
  EXPECT_FALSE(ApiClient::Create(cert_only).ok());
}

TEST(HttpStatusToCode, MapsCommonStatuses) {
  EXPECT_EQ(HttpStatusToCode(400), StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpStatusToCode(401), StatusCode::kUnauthenticated);
  EXPECT_EQ(HttpStatusToCode(403), StatusCode::kPermissionDenied);
  EXPECT_EQ(HttpStatusToCode(404), StatusCode::kNotFound);
  EXPECT_EQ(HttpStatusToCode(409, "already_exists"), StatusCode::kAlreadyExists);
  EXPECT_EQ(HttpStatusToCode(409, "build_not_pending"), StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpStatusToCode(413), StatusCode::kPayloadTooLarge);
  EXPECT_EQ(HttpStatusToCode(500), StatusCode::kInternal);
  EXPECT_EQ(HttpStatusToCode(503), StatusCode::kUnavailable);
}

TEST(PercentEncode, KeepsUnreservedOnly) {
  EXPECT_EQ(PercentEncode("abc-1.2_~"), "abc-1.2_~");
  EXPECT_EQ(PercentEncode("a b/c?d&e"), "a%20b%2Fc%3Fd%26e");
  EXPECT_EQ(PercentEncode("*.example.com"), "%2A.example.com");
}

}  // namespace
}  // namespace vouch::client
