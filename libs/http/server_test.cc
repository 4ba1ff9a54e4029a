// End-to-end tests of the HTTPS server on an ephemeral loopback port, driven by the real curl and
// openssl command-line tools and by small raw OpenSSL/socket clients. Certificates are generated
// here with OpenSSL directly.
#include "http/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "crypto/keys.h"
#include "crypto/x509.h"
#include "testing/temp_dir.h"

namespace vouch::http {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Throwaway PKI.

struct KeyCert {
  crypto::EvpPkeyPtr key;
  crypto::X509Ptr cert;
  std::string key_pem;
  std::string cert_pem;
};

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  crypto::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  ASSERT_NE(ext, nullptr) << value;
  ASSERT_EQ(X509_add_ext(cert, ext.get(), -1), 1);
}

enum class Kind { kCa, kServer, kClient };

KeyCert MakeCert(const std::string& cn, const KeyCert* issuer, Kind kind) {
  static std::atomic<long> serial{1};
  KeyCert out;
  out.key = crypto::GenerateP256().value();
  crypto::X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), out.key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(issuer_cert));
  AddExt(x.get(), issuer_cert, NID_subject_key_identifier, "hash");
  AddExt(x.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (kind == Kind::kCa) {
    AddExt(x.get(), issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(x.get(), issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(x.get(), issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(x.get(), issuer_cert, NID_key_usage, "critical,digitalSignature");
    AddExt(x.get(), issuer_cert, NID_ext_key_usage,
           kind == Kind::kServer ? "serverAuth" : "clientAuth");
    if (kind == Kind::kServer) {
      AddExt(x.get(), issuer_cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    }
  }
  EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
  EXPECT_GT(X509_sign(x.get(), signer, EVP_sha256()), 0);
  out.cert = std::move(x);
  out.cert_pem = crypto::CertToPem(out.cert.get()).value();
  out.key_pem = std::string(crypto::PrivateKeyToPem(out.key.get()).value().view());
  return out;
}

void WriteFile(const fs::path& p, std::string_view data) {
  std::ofstream f(p, std::ios::binary);
  f << data;
}

// ---------------------------------------------------------------------------------------------
// Process and socket helpers.

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult Shell(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

int ConnectTcp(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// A minimal blocking TLS client for byte-level tests (malformed requests, slow senders).
class RawTlsClient {
 public:
  RawTlsClient(uint16_t port, const std::string& ca_file) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    fd_ = ConnectTcp(port);
    if (fd_ < 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "127.0.0.1");
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~RawTlsClient() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  bool connected() const { return connected_; }
  bool Send(std::string_view data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }
  // Reads until the peer closes (or errors/times out). Returns what was read.
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    while (true) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads until `needle` has been seen (or close/timeout).
  std::string ReadUntil(std::string_view needle) {
    std::string out;
    char buf[4096];
    while (out.find(needle) == std::string::npos) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

std::string UnixExchange(const std::string& path, std::string_view request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixture: one PKI for the whole suite, one server per test.

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);  // the raw clients write to sockets the server may have closed
    dir_ = new test::TempDir("http");
    server_ca_ = new KeyCert(MakeCert("vouch test service CA", nullptr, Kind::kCa));
    server_ = new KeyCert(MakeCert("127.0.0.1", server_ca_, Kind::kServer));
    client_ca_ = new KeyCert(MakeCert("vouch test node CA", nullptr, Kind::kCa));
    client_ = new KeyCert(MakeCert("node-1", client_ca_, Kind::kClient));
    rogue_ca_ = new KeyCert(MakeCert("rogue CA", nullptr, Kind::kCa));
    rogue_ = new KeyCert(MakeCert("node-1", rogue_ca_, Kind::kClient));
    WriteFile(Path("ca.pem"), server_ca_->cert_pem);
    WriteFile(Path("client.pem"), client_->cert_pem);
    WriteFile(Path("client.key"), client_->key_pem);
    WriteFile(Path("rogue.pem"), rogue_->cert_pem);
    WriteFile(Path("rogue.key"), rogue_->key_pem);
    WriteFile(Path("big.json"), "{\"x\":\"" + std::string(2 << 20, 'a') + "\"}");
  }
  static void TearDownTestSuite() {
    delete server_ca_;
    delete server_;
    delete client_ca_;
    delete client_;
    delete rogue_ca_;
    delete rogue_;
    delete dir_;
  }
  static std::string Path(const std::string& name) { return dir_->File(name); }

  ServerOptions Options() {
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.cert_chain_pem = server_->cert_pem;
    o.private_key_pem = server_->key_pem;
    o.client_ca_pem = client_ca_->cert_pem;
    o.read_timeout = 2s;
    o.idle_timeout = 5s;
    return o;
  }

  static Router TestRouter(std::atomic<int>* slow_started = nullptr) {
    Router r;
    r.Add("GET", "/healthz", [](Request&) { return Response::Text("ok"); });
    r.Add("POST", "/echo", [](Request& req) {
      return Response::Json(
          {{"len", req.body.size()}, {"content_type", req.Header("content-type")}});
    });
    r.Add("GET", "/items/{id}", [](Request& req) {
      return Response::Json({{"id", req.path_params["id"]},
                             {"q", req.Query("q")},
                             {"remote", req.remote_address},
                             {"tls", req.tls}});
    });
    r.Add("GET", "/peer", [](Request& req) {
      std::string leaf_cn;
      if (!req.peer_cert_chain_der.empty()) {
        leaf_cn = crypto::SubjectCommonName(crypto::CertFromDer(req.peer_cert_chain_der[0])->get());
      }
      return Response::Json({{"chain", req.peer_cert_chain_der.size()}, {"leaf_cn", leaf_cn}});
    });
    r.Add("GET", "/slow", [slow_started](Request&) {
      if (slow_started) ++*slow_started;
      std::this_thread::sleep_for(1s);
      return Response::Text("done");
    });
    r.Add("GET", "/throw", [](Request&) -> Response { throw std::runtime_error("boom"); });
    r.Add("GET", "/badstatus", [](Request&) { return Response::Text("x", "text/plain", 1234); });
    r.Add("GET", "/cached", [](Request&) {
      Response res = Response::Text("x");
      res.AddHeader("Cache-Control", "max-age=60");
      return res;
    });
    r.Add("GET", "/error",
          [](Request&) { return Response::Error(NotFound("no zone", "zone_not_found")); });
    return r;
  }

  void StartServer(ServerOptions o, Router r = TestRouter()) {
    const bool tcp = o.tcp_enabled;
    auto s = Server::Create(std::move(o), std::move(r), &metrics_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_obj_ = std::move(s).value();
    Status st = server_obj_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(server_obj_->port() != 0, tcp);
    base_ = fmt::format("https://127.0.0.1:{}", server_obj_->port());
  }
  void TearDown() override {
    if (server_obj_) server_obj_->Stop(1s);
  }

  std::string Curl(const std::string& args) {
    return fmt::format("curl --http1.1 -sS --max-time 10 --cacert {} {}", Path("ca.pem"), args);
  }

  static test::TempDir* dir_;  // removed with everything in it by TearDownTestSuite
  static KeyCert *server_ca_, *server_, *client_ca_, *client_, *rogue_ca_, *rogue_;
  Metrics metrics_;
  std::unique_ptr<Server> server_obj_;
  std::string base_;
};

test::TempDir* ServerTest::dir_ = nullptr;
KeyCert *ServerTest::server_ca_, *ServerTest::server_, *ServerTest::client_ca_,
    *ServerTest::client_, *ServerTest::rogue_ca_, *ServerTest::rogue_;

TEST_F(ServerTest, CurlKeepAliveServesTwoRequestsOnOneConnection) {
  StartServer(Options());
  CommandResult r =
      Shell(Curl(fmt::format("-o /dev/null -w '%{{http_code}} %{{num_connects}}\\n' "
                             "{0}/healthz -o /dev/null {0}/items/a%20b?q=x+y",
                             base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "200 1\n200 0\n");  // the second request reused the connection
}

TEST_F(ServerTest, ResponsesCarrySecurityHeadersAndDecodedParams) {
  StartServer(Options());
  CommandResult r = Shell(Curl(fmt::format("-i '{}/items/a%20b?q=x+y'", base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("HTTP/1.1 200 OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("X-Content-Type-Options: nosniff"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Cache-Control: no-store"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Content-Type: application/json"), std::string::npos) << r.output;
  std::string body = r.output.substr(r.output.find("\r\n\r\n") + 4);
  nlohmann::json j = nlohmann::json::parse(body);
  EXPECT_EQ(j["id"], "a b");
  EXPECT_EQ(j["q"], "x y");
  EXPECT_EQ(j["tls"], true);
  EXPECT_EQ(j["remote"].get<std::string>().rfind("127.0.0.1:", 0), 0u);

  // A handler's own Cache-Control is kept.
  r = Shell(Curl(fmt::format("-i {}/cached", base_)));
  EXPECT_NE(r.output.find("Cache-Control: max-age=60"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("no-store"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("X-Content-Type-Options: nosniff"), std::string::npos) << r.output;
}

TEST_F(ServerTest, ErrorsAreJsonWithMappedStatus) {
  StartServer(Options());
  CommandResult r = Shell(Curl(fmt::format("-w '\\n%{{http_code}}' {}/error", base_)));
  EXPECT_EQ(r.output, R"({"error":{"code":"zone_not_found","message":"no zone"}})"
                      "\n404");
  r = Shell(Curl(fmt::format("-w '\\n%{{http_code}}' {}/nope", base_)));
  EXPECT_NE(r.output.find("\"code\":\"not_found\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n404"), std::string::npos);
  r = Shell(Curl(fmt::format("-i -X DELETE {}/healthz", base_)));
  EXPECT_NE(r.output.find("HTTP/1.1 405"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Allow: GET, HEAD"), std::string::npos) << r.output;
}

TEST_F(ServerTest, HandlerExceptionBecomes500AndConnectionSurvives) {
  StartServer(Options());
  CommandResult r = Shell(Curl(
      fmt::format("-w '\\n%{{http_code}} %{{num_connects}}\\n' {0}/throw {0}/healthz", base_)));
  EXPECT_NE(r.output.find(R"({"error":{"code":"internal","message":"internal server error"}})"
                          "\n500 1\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ok\n200 0\n"), std::string::npos) << r.output;
  r = Shell(Curl(fmt::format("-w '\\n%{{http_code}}\\n' {0}/badstatus {0}/healthz", base_)));
  EXPECT_NE(r.output.find("\n500\nok\n200\n"), std::string::npos) << r.output;
}

TEST_F(ServerTest, HeadSendsHeadersWithoutBody) {
  StartServer(Options());
  CommandResult r = Shell(Curl(fmt::format("-I {}/healthz", base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("HTTP/1.1 200 OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Content-Length: 2"), std::string::npos) << r.output;
}

TEST_F(ServerTest, ConnectionCloseIsHonoured) {
  StartServer(Options());
  CommandResult r = Shell(Curl(fmt::format(
      "-H 'Connection: close' -D - -o /dev/null -w '%{{num_connects}}\\n' {0}/healthz {0}/healthz",
      base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Connection: close"), std::string::npos) << r.output;
  // Each request needed its own connection.
  EXPECT_NE(r.output.find("\r\n1\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("\r\n0\n"), std::string::npos) << r.output;
}

TEST_F(ServerTest, OpensslNegotiatesTls13AndRefusesTls11) {
  StartServer(Options());
  std::string connect =
      fmt::format("openssl s_client -connect 127.0.0.1:{} -CAfile {} -verify_return_error",
                  server_obj_->port(), Path("ca.pem"));
  CommandResult r = Shell("echo | " + connect + " -brief");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Protocol version: TLSv1.3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Verification: OK"), std::string::npos) << r.output;

  // The client is allowed TLS 1.1 (security level 0), so the refusal is the server's.
  r = Shell("echo | " + connect + " -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alert protocol version"), std::string::npos) << r.output;

  // TLS 1.2 works, but only with AEAD suites.
  r = Shell("echo | " + connect + " -tls1_2 -brief");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Protocol version: TLSv1.2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GCM"), std::string::npos) << r.output;
  r = Shell("echo | " + connect +
            " -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA'");
  EXPECT_NE(r.exit_code, 0) << r.output;
}

TEST_F(ServerTest, OversizedBodyGets413Json) {
  ServerOptions o = Options();
  StartServer(o);
  CommandResult r = Shell(Curl(fmt::format(
      "-H 'Content-Type: application/json' --data-binary @{} -w '\\n%{{http_code}}' {}/echo",
      Path("big.json"), base_)));
  EXPECT_NE(r.output.find(R"("code":"body_too_large")"), std::string::npos)
      << r.output.substr(0, 500);
  EXPECT_NE(r.output.find("\n413"), std::string::npos) << r.output.substr(0, 500);
  // Without Expect: 100-continue the client streams the body anyway; still a clean 413.
  r =
      Shell(Curl(fmt::format("-H 'Expect:' -H 'Content-Type: application/json' --data-binary @{} "
                             "-w '\\n%{{http_code}}' {}/echo",
                             Path("big.json"), base_)));
  EXPECT_NE(r.output.find("\n413"), std::string::npos) << r.output.substr(0, 500);
  // A body within the limit is accepted.
  r = Shell(
      Curl(fmt::format("-H 'Content-Type: application/json' -d '{{\"a\":1}}' {}/echo", base_)));
  EXPECT_EQ(r.output, R"({"content_type":"application/json","len":7})") << r.output;
}

TEST_F(ServerTest, MalformedRequestLineGets400AndClose) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GARBAGE\r\n\r\n"));
  std::string reply = c.ReadAll();  // returns only because the server closes
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_NE(reply.find(R"("code":"bad_request")"), std::string::npos) << reply;

  for (std::string_view bad :
       {"GET /x HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n", "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    RawTlsClient c2(server_obj_->port(), Path("ca.pem"));
    ASSERT_TRUE(c2.connected());
    ASSERT_TRUE(c2.Send(bad));
    std::string reply2 = c2.ReadAll();
    EXPECT_EQ(reply2.rfind("HTTP/1.1 4", 0), 0u) << bad << " -> " << reply2;
  }
  // The server is still fine.
  EXPECT_EQ(Shell(Curl(base_ + "/healthz")).output, "ok");
}

TEST_F(ServerTest, OversizedHeaderGets431) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"));
  std::string reply = c.ReadAll();
  EXPECT_EQ(reply.rfind("HTTP/1.1 431 ", 0), 0u) << reply.substr(0, 200);
  EXPECT_NE(reply.find(R"("code":"header_too_large")"), std::string::npos);
}

TEST_F(ServerTest, SlowSenderIsCutOffAfterReadTimeout) {
  ServerOptions o = Options();
  o.read_timeout = 1s;
  StartServer(o);
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // never finishes the headers
  std::string reply = c.ReadAll();
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(reply, "");
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 4s);  // closed by the server, not by the client's 5 s receive timeout
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: x\r\n"
             "Connection: close\r\n\r\n"));
  std::string reply = c.ReadAll();
  size_t first = reply.find(R"("id":"1")");
  size_t second = reply.find(R"("id":"2")");
  ASSERT_NE(first, std::string::npos) << reply;
  ASSERT_NE(second, std::string::npos) << reply;
  EXPECT_LT(first, second);
}

TEST_F(ServerTest, VerifiedClientCertificateReachesHandler) {
  StartServer(Options());
  CommandResult r = Shell(Curl(
      fmt::format("--cert {} --key {} {}/peer", Path("client.pem"), Path("client.key"), base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["chain"], 2);  // leaf and the trusted root
  EXPECT_EQ(j["leaf_cn"], "node-1");

  // No certificate: allowed, the handler sees no chain.
  r = Shell(Curl(base_ + "/peer"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["chain"], 0);
}

TEST_F(ServerTest, UntrustedClientCertificateIsRejectedInHandshake) {
  StartServer(Options());
  CommandResult r = Shell(
      Curl(fmt::format("--cert {} --key {} {}/peer", Path("rogue.pem"), Path("rogue.key"), base_)));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("\"chain\""), std::string::npos) << r.output;
}

TEST_F(ServerTest, WithoutClientCaNoCertificateIsRequested) {
  ServerOptions o = Options();
  o.client_ca_pem.clear();
  StartServer(o);
  CommandResult r = Shell(Curl(
      fmt::format("--cert {} --key {} {}/peer", Path("client.pem"), Path("client.key"), base_)));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["chain"], 0);
}

TEST_F(ServerTest, GracefulStopFinishesInFlightRequest) {
  std::atomic<int> slow_started{0};
  StartServer(Options(), TestRouter(&slow_started));
  auto slow =
      std::async(std::launch::async, [&] { return Shell(Curl(fmt::format("-i {}/slow", base_))); });
  while (slow_started.load() == 0) std::this_thread::sleep_for(5ms);
  auto start = std::chrono::steady_clock::now();
  server_obj_->Stop(5s);
  auto took = std::chrono::steady_clock::now() - start;
  CommandResult r = slow.get();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("HTTP/1.1 200 OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Connection: close"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\r\n\r\ndone"), std::string::npos) << r.output;
  EXPECT_LT(took, 4s);  // did not need the whole grace period
  // Stopped: no longer accepting.
  EXPECT_LT(ConnectTcp(server_obj_->port()), 0);
  server_obj_->Wait();  // returns at once
}

TEST_F(ServerTest, StopFromAHandlerFinishesAsynchronously) {
  std::atomic<Server*> self{nullptr};
  Router r = TestRouter();
  r.Add("POST", "/shutdown", [&self](Request&) {
    self.load()->Stop(2s);
    return Response::Text("stopping");
  });
  StartServer(Options(), std::move(r));
  self = server_obj_.get();
  CommandResult res = Shell(Curl(fmt::format("-i -X POST {}/shutdown", base_)));
  EXPECT_NE(res.output.find("Connection: close"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("\r\n\r\nstopping"), std::string::npos) << res.output;
  server_obj_->Wait();
  EXPECT_LT(ConnectTcp(server_obj_->port()), 0);
}

TEST_F(ServerTest, StopClosesIdleKeepAliveConnections) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string first = c.ReadUntil("\r\n\r\nok");
  EXPECT_NE(first.find("\r\n\r\nok"), std::string::npos);
  auto start = std::chrono::steady_clock::now();
  server_obj_->Stop(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(server_obj_->active_connections(), 0u);
}

TEST_F(ServerTest, StopAfterGraceClosesStragglers) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // a request that never completes
  std::this_thread::sleep_for(100ms);
  auto start = std::chrono::steady_clock::now();
  server_obj_->Stop(300ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(c.ReadAll(), "");  // closed without a response
}

TEST_F(ServerTest, ExpectContinueGets100BeforeTheBody) {
  StartServer(Options());
  RawTlsClient c(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 7\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"));
  std::string interim = c.ReadUntil("\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send("{\"a\":1}"));
  std::string reply = c.ReadAll();
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find(R"("len":7)"), std::string::npos) << reply;
}

TEST_F(ServerTest, ChunkedBodiesAreLimitedToo) {
  ServerOptions o = Options();
  o.max_body_bytes = 10;
  StartServer(o);
  RawTlsClient ok(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(ok.connected());
  ASSERT_TRUE(
      ok.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
  EXPECT_NE(ok.ReadAll().find(R"("len":5)"), std::string::npos);
  RawTlsClient big(server_obj_->port(), Path("ca.pem"));
  ASSERT_TRUE(big.connected());
  ASSERT_TRUE(
      big.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"));
  std::string reply = big.ReadAll();
  EXPECT_EQ(reply.rfind("HTTP/1.1 413 ", 0), 0u) << reply;
  EXPECT_NE(reply.find(R"("code":"body_too_large")"), std::string::npos) << reply;
}

TEST_F(ServerTest, UnixSocketServesPlainHttp) {
  ServerOptions o = Options();
  o.unix_socket_path = Path("agent.sock");
  StartServer(o);
  struct stat st {};
  ASSERT_EQ(::stat(o.unix_socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  CommandResult r = Shell(fmt::format(
      "curl -sS --max-time 10 -w ' %{{http_code}} %{{num_connects}}\\n' --unix-socket {} "
      "http://localhost/items/7 http://localhost/healthz",
      o.unix_socket_path));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(R"("id":"7")"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(R"("remote":"unix")"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(R"("tls":false)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ok 200 0\n"), std::string::npos) << r.output;
  // Malformed HTTP on the plain listener too.
  std::string reply = UnixExchange(o.unix_socket_path, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 400 ", 0), 0u) << reply;
  server_obj_->Stop(1s);
  EXPECT_FALSE(fs::exists(o.unix_socket_path));
}

TEST_F(ServerTest, UnixSocketOnly) {
  ServerOptions o;
  o.tcp_enabled = false;
  o.threads = 1;
  o.unix_socket_path = Path("only.sock");
  o.unix_socket_mode = 0600;
  StartServer(o);
  EXPECT_EQ(server_obj_->port(), 0);
  std::string reply = UnixExchange(o.unix_socket_path,
                                   "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_EQ(reply.substr(reply.size() - 2), "ok");
  struct stat st {};
  ASSERT_EQ(::stat(o.unix_socket_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ServerTest, RecordsMetricsByRoutePattern) {
  StartServer(Options());
  Shell(Curl(fmt::format("-o /dev/null {0}/items/a {0}/items/b {0}/nope", base_)));
  EXPECT_EQ(metrics_.Value("http_requests_total",
                           {{"route", "/items/{id}"}, {"method", "GET"}, {"status", "200"}}),
            2);
  EXPECT_EQ(metrics_.Value("http_requests_total",
                           {{"route", "unmatched"}, {"method", "GET"}, {"status", "404"}}),
            1);
  EXPECT_EQ(metrics_.HistogramCount("http_request_duration_seconds", {{"route", "/items/{id}"}}),
            2u);
  std::string text = metrics_.Render();
  EXPECT_NE(text.find(R"(http_requests_total{route="/items/{id}",method="GET",status="200"} 2)"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("/items/a"), std::string::npos);
}

TEST_F(ServerTest, LoadSmokeTwentyKeepAliveConnections) {
  ServerOptions o = Options();
  StartServer(o);
  constexpr int kConnections = 20, kPerConnection = 100;
  std::string urls;
  for (int i = 0; i < kPerConnection; ++i)
    urls += fmt::format(" -o /dev/null {}/items/{}", base_, i);
  std::vector<std::future<CommandResult>> clients;
  for (int c = 0; c < kConnections; ++c) {
    clients.push_back(std::async(std::launch::async, [&] {
      return Shell(Curl("-w '%{http_code} %{num_connects}\\n'" + urls));
    }));
  }
  int ok = 0, connects = 0;
  for (auto& f : clients) {
    CommandResult r = f.get();
    EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 300);
    size_t pos = 0;
    while ((pos = r.output.find("200 ", pos)) != std::string::npos) {
      ++ok;
      connects += r.output[pos + 4] - '0';
      pos += 4;
    }
  }
  EXPECT_EQ(ok, kConnections * kPerConnection);
  EXPECT_EQ(connects, kConnections);  // every client used a single keep-alive connection
  EXPECT_EQ(metrics_.Value("http_requests_total",
                           {{"route", "/items/{id}"}, {"method", "GET"}, {"status", "200"}}),
            kConnections * kPerConnection);
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string ReadUntilFd(int fd, std::string_view needle) {
  std::string out;
  char buf[1024];
  while (out.find(needle) == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

TEST_F(ServerTest, HoldsAThousandKeepAliveConnections) {
  ServerOptions o = Options();
  o.tcp_enabled = false;
  o.client_ca_pem.clear();
  o.unix_socket_path = Path("many.sock");
  StartServer(o);
  constexpr int kConnections = 1000;
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    int fd = ConnectUnix(o.unix_socket_path);
    ASSERT_GE(fd, 0) << i;
    fds.push_back(fd);
  }
  constexpr std::string_view kRequest = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int round = 0; round < 2; ++round) {
    for (int fd : fds)
      ASSERT_EQ(::write(fd, kRequest.data(), kRequest.size()),
                static_cast<ssize_t>(kRequest.size()));
    int answered = 0;
    for (int fd : fds)
      answered += ReadUntilFd(fd, "\r\n\r\nok").find("200 OK") != std::string::npos;
    EXPECT_EQ(answered, kConnections);
  }
  EXPECT_EQ(server_obj_->active_connections(), static_cast<size_t>(kConnections));
  EXPECT_EQ(metrics_.Value("http_connections_active"), kConnections);
  for (int fd : fds) ::close(fd);
  server_obj_->Stop(2s);
  EXPECT_EQ(server_obj_->active_connections(), 0u);
}

TEST_F(ServerTest, RefusesConnectionsBeyondTheLimit) {
  ServerOptions o = Options();
  o.tcp_enabled = false;
  o.client_ca_pem.clear();
  o.unix_socket_path = Path("limit.sock");
  o.max_connections = 2;
  StartServer(o);
  int a = ConnectUnix(o.unix_socket_path), b = ConnectUnix(o.unix_socket_path);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  constexpr std::string_view kRequest = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(a, kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
  EXPECT_NE(ReadUntilFd(a, "\r\n\r\nok").find("200 OK"), std::string::npos);
  ASSERT_EQ(::write(b, kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
  EXPECT_NE(ReadUntilFd(b, "\r\n\r\nok").find("200 OK"), std::string::npos);
  int c = ConnectUnix(o.unix_socket_path);
  ASSERT_GE(c, 0);
  (void)!::write(c, kRequest.data(), kRequest.size());
  EXPECT_EQ(ReadUntilFd(c, "ok"), "");  // closed without an answer
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST_F(ServerTest, CapsConnectionsPerSource) {
  ServerOptions o = Options();
  o.tcp_plaintext = true;
  o.cert_chain_pem.clear();
  o.private_key_pem.clear();
  o.client_ca_pem.clear();
  o.max_connections_per_source = 2;
  StartServer(o);
  const uint16_t port = server_obj_->port();
  constexpr std::string_view kRequest = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  int a = ConnectTcp(port), b = ConnectTcp(port);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  for (int fd : {a, b}) {
    ASSERT_EQ(::write(fd, kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
    EXPECT_NE(ReadUntilFd(fd, "\r\n\r\nok").find("200 OK"), std::string::npos);
  }
  // A third connection from 127.0.0.1 is closed at once, without an answer.
  int c = ConnectTcp(port);
  ASSERT_GE(c, 0);
  (void)!::write(c, kRequest.data(), kRequest.size());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadUntilFd(c, "ok"), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the refused connection must be closed promptly";
  ::close(c);
  EXPECT_EQ(metrics_.Value("http_connections_refused_total", {{"reason", "per_source"}}), 1);
  // Closing one frees its slot (the server notices the close asynchronously: bounded wait).
  ::close(a);
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    int d = ConnectTcp(port);
    ASSERT_GE(d, 0);
    (void)!::write(d, kRequest.data(), kRequest.size());
    served = ReadUntilFd(d, "\r\n\r\nok").find("200 OK") != std::string::npos;
    ::close(d);
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served) << "a slot freed by a closed connection must be usable again";
  ::close(b);
}

TEST_F(ServerTest, StartReportsAddressInUse) {
  StartServer(Options());
  ServerOptions o = Options();
  o.port = server_obj_->port();
  auto second = Server::Create(o, TestRouter());
  ASSERT_TRUE(second.ok());
  Status s = (*second)->Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.reason(), "address_in_use");
}

TEST(ServerCreate, ValidatesOptions) {
  ServerOptions o;
  o.cert_chain_pem = "not pem";
  o.private_key_pem = "not pem";
  EXPECT_EQ(Server::Create(o, Router()).status().code(), StatusCode::kInvalidArgument);
  ServerOptions none;
  none.tcp_enabled = false;
  EXPECT_EQ(Server::Create(none, Router()).status().code(), StatusCode::kInvalidArgument);
  ServerOptions nocert;
  EXPECT_EQ(Server::Create(nocert, Router()).status().code(), StatusCode::kInvalidArgument);
  // A key that does not belong to the certificate.
  KeyCert ca = MakeCert("ca", nullptr, Kind::kCa);
  KeyCert other = MakeCert("other", nullptr, Kind::kCa);
  ServerOptions mismatch;
  mismatch.cert_chain_pem = ca.cert_pem;
  mismatch.private_key_pem = other.key_pem;
  Result<std::unique_ptr<Server>> s = Server::Create(mismatch, Router());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().reason(), "invalid_key");
  // Never started: Stop and Wait return at once.
  ServerOptions good;
  good.cert_chain_pem = ca.cert_pem;
  good.private_key_pem = ca.key_pem;
  auto ok = Server::Create(good, Router());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  (*ok)->Wait();
  (*ok)->Stop(0ms);
}

}  // namespace
}  // namespace vouch::http
