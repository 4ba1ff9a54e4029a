// The only translation unit that includes Boost.Beast/Asio: keep it that way (compile time).
#include "http/server.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "http/limits.h"

namespace vouch::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;
using error_code = boost::system::error_code;

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5 (asm-generic/socket.h); glibc 2.36 does not name it
#endif

// The process at the other end of a Unix-socket connection (Request::peer_pid ...).
struct PeerCred {
  int64_t pid = -1, uid = -1, gid = -1;
  int pidfd = -1;  // owned by the Session that receives it
};

PeerCred ReadPeerCred(int fd) {
  PeerCred p;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred) {
    p.pid = cred.pid;
    p.uid = cred.uid;
    p.gid = cred.gid;
  }
  int pidfd = -1;
  len = sizeof pidfd;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && len == sizeof pidfd && pidfd >= 0) {
    p.pidfd = pidfd;
  }
  return p;
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using UnixStream = beast::basic_stream<unix_socket>;
using PlainTcpStream = beast::tcp_stream;

// TLS 1.2 suites: ECDHE with AEAD only. TLS 1.3 suites are all AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kGroups[] = "X25519:P-256:P-384";
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
// How long a closing connection waits for the peer's TLS close_notify (or, for plain HTTP, EOF
// while draining unread input): long enough to avoid resetting a response the peer has not read
// yet, short enough not to hold up a stopping server.
constexpr std::chrono::milliseconds kCloseTimeout{1000};
constexpr std::chrono::milliseconds kCloseTimeoutWhenStopping{100};

std::string MethodLabel(std::string_view m) {
  static constexpr std::string_view kKnown[] = {"GET",   "HEAD",   "POST",   "PUT",
                                                "PATCH", "DELETE", "OPTIONS"};
  for (std::string_view k : kKnown) {
    if (m == k) return std::string(m);
  }
  return "OTHER";
}

bool SafeHeaderText(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerOptions& o) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
    return crypto::OpensslError("setting TLS 1.2 as the minimum version");
  }
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(c, kTls13Suites) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    return crypto::OpensslError("configuring TLS cipher suites");
  }

  Result<std::vector<crypto::X509Ptr>> chain = crypto::CertsFromPem(o.cert_chain_pem);
  if (!chain.ok()) {
    return InvalidArgument("server certificate chain: " + chain.status().message(),
                           "invalid_certificate");
  }
  if (SSL_CTX_use_certificate(c, (*chain)[0].get()) != 1) {
    return crypto::OpensslError("using the server certificate", StatusCode::kInvalidArgument,
                                "invalid_certificate");
  }
  for (size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, (*chain)[i].get()) != 1) {
      return crypto::OpensslError("adding an intermediate certificate",
                                  StatusCode::kInvalidArgument, "invalid_certificate");
    }
  }
  Result<crypto::EvpPkeyPtr> key = crypto::PrivateKeyFromPem(o.private_key_pem);
  if (!key.ok()) {
    return InvalidArgument("server private key: " + key.status().message(), "invalid_key");
  }
  if (SSL_CTX_use_PrivateKey(c, key->get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return crypto::OpensslError("the server private key does not match its certificate",
                                StatusCode::kInvalidArgument, "invalid_key");
  }

  static const unsigned char kSessionContext[] = "vouch-http";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof(kSessionContext) - 1);
  if (!o.client_ca_pem.empty()) {
    Result<std::vector<crypto::X509Ptr>> cas = crypto::CertsFromPem(o.client_ca_pem);
    if (!cas.ok()) {
      return InvalidArgument("client CA: " + cas.status().message(), "invalid_certificate");
    }
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    for (const crypto::X509Ptr& ca : *cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1 || SSL_CTX_add_client_CA(c, ca.get()) != 1) {
        return crypto::OpensslError("adding a client CA", StatusCode::kInvalidArgument,
                                    "invalid_certificate");
      }
    }
    // Request, do not require: no SSL_VERIFY_FAIL_IF_NO_PEER_CERT. The default verify callback
    // fails the handshake when a presented certificate does not verify.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(c, 5);
    // A resumed session carries no verified chain, so handlers would lose it: always do a full
    // handshake when client certificates are in play.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(c, 0);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

}  // namespace

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called from Stop (any thread): posts the stop handling to the session's strand.
  virtual void OnServerStop() = 0;
  // Closes the socket at once. Only when no I/O thread runs any more (after the grace period).
  virtual void ForceClose() = 0;
};

struct Server::Impl {
  ServerOptions options;
  Router router;
  Metrics* metrics = nullptr;
  std::unique_ptr<asio::ssl::context> tls;

  std::atomic<bool> stopping{false};
  std::atomic<size_t> connections{0};

  std::mutex sessions_mu;
  std::unordered_map<uint64_t, std::weak_ptr<SessionBase>> sessions;
  uint64_t next_session_id = 1;

  std::mutex state_mu;
  std::condition_variable state_cv;
  enum class State { kCreated, kRunning, kStopping, kStopped } state = State::kCreated;

  // Declared after everything sessions touch, so pending handlers (holding sessions) that are
  // destroyed with the io_context still find those members alive.
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<tcp::acceptor> tcp_acceptor;
  std::unique_ptr<unix_socket::acceptor> unix_acceptor;
  std::vector<std::thread> threads;
  std::atomic<uint16_t> bound_port{0};

  explicit Impl(int concurrency) : ioc(concurrency) {}

  uint64_t Register(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard lock(sessions_mu);
    uint64_t id = next_session_id++;
    sessions.emplace(id, s);
    return id;
  }
  void Unregister(uint64_t id) {
    std::lock_guard lock(sessions_mu);
    sessions.erase(id);
  }
  void ConnectionOpened() {
    connections.fetch_add(1);
    if (metrics != nullptr) metrics->AddToGauge("http_connections_active", {}, 1);
  }
  // Per-source connection count (options.max_connections_per_source); "" is never capped.
  std::mutex per_source_mu;
  std::unordered_map<std::string, size_t> per_source;
  bool AdmitSource(const std::string& source) {
    if (source.empty() || options.max_connections_per_source == 0) return true;
    std::lock_guard lock(per_source_mu);
    size_t& n = per_source[source];
    if (n >= options.max_connections_per_source) {
      if (n == 0) per_source.erase(source);
      return false;
    }
    ++n;
    return true;
  }
  void ReleaseSource(const std::string& source) {
    if (source.empty() || options.max_connections_per_source == 0) return;
    std::lock_guard lock(per_source_mu);
    auto it = per_source.find(source);
    if (it != per_source.end() && --it->second == 0) per_source.erase(it);
  }
  void ConnectionClosed() {
    connections.fetch_sub(1);
    if (metrics != nullptr) metrics->AddToGauge("http_connections_active", {}, -1);
  }

  void Record(const std::string& route, std::string_view method, unsigned status,
              std::chrono::steady_clock::duration elapsed) {
    if (metrics == nullptr) return;
    const std::string& r = route.empty() ? kUnmatched : route;
    metrics->Increment(
        "http_requests_total",
        {{"route", r}, {"method", MethodLabel(method)}, {"status", std::to_string(status)}});
    metrics->Observe("http_request_duration_seconds", {{"route", r}},
                     std::chrono::duration<double>(elapsed).count());
  }

  template <class Acceptor, class Session>
  void Accept(Acceptor* acceptor);
  static inline const std::string kUnmatched = "unmatched";
};

namespace {

// One connection. Stream is TlsStream (HTTPS on TCP) or UnixStream (plain HTTP). Every member
// is used only from the connection's strand (the executor of the stream).
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <class Socket>
  Session(Server::Impl* server, Socket&& socket, std::string remote)
      : server_(server),
        stream_(MakeStream(server, std::forward<Socket>(socket))),
        remote_(std::move(remote)) {}

  // The per-source slot this connection holds (Impl::AdmitSource), released with it.
  void set_source(std::string source) { source_ = std::move(source); }
  // The peer process of a Unix-socket connection; the Session owns (and closes) its pidfd.
  void set_peer(const PeerCred& peer) { peer_ = peer; }

  ~Session() override {
    if (peer_.pidfd >= 0) ::close(peer_.pidfd);
    error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
    server_->Unregister(id_);
    server_->ReleaseSource(source_);
    server_->ConnectionClosed();
  }

  void Run() {
    id_ = server_->Register(this->shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void ForceClose() override {
    error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

  void OnServerStop() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      // Idle or still handshaking: close now. Reading, handling or writing: the response gets
      // Connection: close (stopping is set) and the connection closes after it.
      if (self->state_ == State::kIdle || self->state_ == State::kHandshake) {
        beast::get_lowest_layer(self->stream_).cancel();
      }
    });
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kWriting, kClosing };

  template <class Socket>
  static Stream MakeStream(Server::Impl* server, Socket&& socket) {
    if constexpr (kTls) {
      return Stream(std::forward<Socket>(socket), *server->tls);
    } else {
      (void)server;
      return Stream(std::forward<Socket>(socket));
    }
  }

  auto& Lowest() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    if constexpr (kTls) {
      state_ = State::kHandshake;
      Lowest().expires_after(server_->options.read_timeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = this->shared_from_this()](const error_code& ec) { self->OnHandshake(ec); });
    } else {
      WaitForRequest();
    }
  }

  void OnHandshake(const error_code& ec) {
    if (ec) {
      spdlog::debug("http: TLS handshake with {} failed: {}", remote_, ec.message());
      return Close();
    }
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      X509* peer = SSL_get0_peer_certificate(ssl);
      if (peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK) {
        STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
        if (chain != nullptr) {
          for (int i = 0; i < sk_X509_num(chain); ++i) {
            Result<std::vector<uint8_t>> der = crypto::CertToDer(sk_X509_value(chain, i));
            if (!der.ok()) {
              spdlog::warn("http: encoding the client chain of {}: {}", remote_,
                           der.status().ToString());
              peer_chain_.clear();
              return Close();
            }
            peer_chain_.push_back(std::move(der).value());
          }
        }
      }
    }
    WaitForRequest();
  }

  // Keep-alive wait: the idle timeout runs until the first byte of the next request.
  void WaitForRequest() {
    state_ = State::kIdle;
    if (server_->stopping.load()) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(server_->options.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_->options.max_body_bytes);
    if (buffer_.size() > 0) return ReadHeader();  // pipelined bytes already here
    Lowest().expires_after(server_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](const error_code& ec, size_t n) {
                              self->OnFirstBytes(ec, n);
                            });
  }

  void OnFirstBytes(const error_code& ec, size_t n) {
    if (ec) return Close();  // idle timeout, peer closed, or server stopping
    buffer_.commit(n);
    ReadHeader();
  }

  // From the first byte on, the whole request (headers and body) must arrive within
  // read_timeout: a slow sender cannot hold the connection longer than that.
  void ReadHeader() {
    state_ = State::kReading;
    request_start_ = std::chrono::steady_clock::now();
    Lowest().expires_after(server_->options.read_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](const error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const error_code& ec) {
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    auto expect = req[bhttp::field::expect];
    if (!parser_->is_done() && beast::iequals(expect, "100-continue")) {
      asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = this->shared_from_this()](const error_code& wec, size_t) {
                          if (wec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](const error_code& ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnReadError(const error_code& ec) {
    if (ec == bhttp::error::body_limit) {
      return SendError(
          413, std::string(kBodyTooLarge),
          fmt::format("request body exceeds {} bytes", server_->options.max_body_bytes));
    }
    if (ec == bhttp::error::header_limit) {
      return SendError(431, "header_too_large",
                       fmt::format("request line and headers exceed {} bytes",
                                   server_->options.max_header_bytes));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return SendError(400, "bad_request", fmt::format("malformed HTTP request: {}", ec.message()));
    }
    // Timeout, reset, EOF mid-request, TLS failure: nothing sensible to answer.
    spdlog::debug("http: read from {} failed: {}", remote_, ec.message());
    Close();
  }

  void SendError(unsigned status, std::string_view code, std::string message) {
    spdlog::debug("http: {} from {}: {}", status, remote_, message);
    close_after_ = true;
    server_->Record({},
                    parser_ ? std::string(parser_->get().method_string()) : std::string("OTHER"),
                    status, std::chrono::steady_clock::duration::zero());
    Send(Response::Error(status, code, message), /*head_only=*/false, 11);
  }

  void OnRequest() {
    state_ = State::kHandling;
    Lowest().expires_never();
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    ++requests_;

    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.headers.reserve(16);
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote_address = remote_;
    req.peer_cert_chain_der = peer_chain_;
    req.tls = kTls;
    req.peer_pid = peer_.pid;
    req.peer_uid = peer_.uid;
    req.peer_gid = peer_.gid;
    req.peer_pidfd = peer_.pidfd;

    const size_t max_requests = server_->options.max_requests_per_connection;
    close_after_ = !msg.keep_alive() || server_->stopping.load() ||
                   (max_requests != 0 && requests_ >= max_requests);
    const bool head_only = msg.method() == bhttp::verb::head;
    const unsigned version = msg.version() == 10 ? 10 : 11;

    Response res;
    if (msg.version() != 10 && msg.version() != 11) {
      close_after_ = true;
      res = Response::Error(505, "http_version_not_supported",
                            "only HTTP/1.0 and HTTP/1.1 are served");
    } else if (Status s = req.ParseTarget(); !s.ok()) {
      close_after_ = true;
      res = Response::Error(s);
    } else {
      try {
        res = server_->router.Dispatch(req);
      } catch (const std::exception& e) {
        spdlog::error("http: handler for {} {} threw: {}", req.method, req.route, e.what());
        res = Response::Error(Internal("internal server error"));
      } catch (...) {
        spdlog::error("http: handler for {} {} threw a non-exception", req.method, req.route);
        res = Response::Error(Internal("internal server error"));
      }
    }
    if (res.status < 200 || res.status > 599) {
      spdlog::error("http: handler for {} {} returned invalid status {}", req.method, req.route,
                    res.status);
      res = Response::Error(Internal("internal server error"));
    }
    auto elapsed = std::chrono::steady_clock::now() - request_start_;
    server_->Record(req.route, req.method, res.status, elapsed);
    spdlog::debug("http: {} {} {} -> {} ({:.1f} ms)", remote_, req.method, req.path, res.status,
                  std::chrono::duration<double, std::milli>(elapsed).count());
    Send(std::move(res), head_only, version);
  }

  void Send(Response res, bool head_only, unsigned version) {
    state_ = State::kWriting;
    if (server_->stopping.load()) close_after_ = true;
    res_ = {};
    res_.version(version);
    res_.result(res.status);
    bool has_cache_control = false, has_nosniff = false;
    for (const auto& [name, value] : res.headers) {
      if (name.empty() || !SafeHeaderText(name) || !SafeHeaderText(value) ||
          beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
          beast::iequals(name, "connection")) {
        spdlog::warn("http: dropping response header '{}' set by a handler", name);
        continue;
      }
      has_cache_control |= beast::iequals(name, "cache-control");
      has_nosniff |= beast::iequals(name, "x-content-type-options");
      res_.insert(name, value);
    }
    if (!res.content_type.empty() && SafeHeaderText(res.content_type)) {
      res_.set(bhttp::field::content_type, res.content_type);
    }
    if (!has_nosniff) res_.set("X-Content-Type-Options", "nosniff");
    if (!has_cache_control) res_.set(bhttp::field::cache_control, "no-store");
    const bool no_body = res.status < 200 || res.status == 204 || res.status == 304;
    if (no_body) res.body.clear();
    const size_t body_size = res.body.size();
    res_.body() = std::move(res.body);
    res_.keep_alive(!close_after_);
    res_.prepare_payload();
    if (head_only) {
      res_.body().clear();
      if (!no_body) res_.content_length(body_size);
    }
    Lowest().expires_after(server_->options.write_timeout);
    bhttp::async_write(
        stream_, res_,
        [self = this->shared_from_this()](const error_code& ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(const error_code& ec) {
    if (ec) {
      spdlog::debug("http: write to {} failed: {}", remote_, ec.message());
      return Close();
    }
    res_ = {};
    if (close_after_ || server_->stopping.load()) return GracefulClose();
    WaitForRequest();
  }

  // Ends the connection politely, in the manner of a lingering close: TLS close_notify, then a
  // TCP half-close, then reading and discarding whatever the peer still sends (e.g. the rest of
  // a body we refused with 413) until it closes or kCloseTimeout passes. Closing with unread
  // input would make the kernel send a reset that can destroy the response before it is read.
  void GracefulClose() {
    state_ = State::kClosing;
    Lowest().expires_after(server_->stopping.load() ? kCloseTimeoutWhenStopping : kCloseTimeout);
    if constexpr (kTls) {
      stream_.async_shutdown([self = this->shared_from_this()](const error_code& ec) {
        // Success means the peer's close_notify arrived: it sends nothing more.
        if (!ec) return self->Close();
        self->HalfCloseAndDrain();
      });
    } else {
      HalfCloseAndDrain();
    }
  }

  void HalfCloseAndDrain() {
    error_code ec;
    Lowest().socket().shutdown(asio::socket_base::shutdown_send, ec);
    if (ec) return Close();
    Drain();
  }

  // Reads raw bytes (below TLS) and drops them until EOF, an error or the close timeout.
  void Drain() {
    buffer_.clear();
    Lowest().async_read_some(buffer_.prepare(16384),
                             [self = this->shared_from_this()](const error_code& ec, size_t) {
                               if (ec) return self->Close();
                               self->Drain();
                             });
  }

  void Close() {
    state_ = State::kClosing;
    error_code ec;
    Lowest().socket().shutdown(asio::socket_base::shutdown_both, ec);
    Lowest().close();
  }

  Server::Impl* server_;
  Stream stream_;
  std::string remote_;
  std::string source_;
  uint64_t id_ = 0;
  State state_ = State::kIdle;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::vector<std::vector<uint8_t>> peer_chain_;
  PeerCred peer_;
  bool close_after_ = false;
  size_t requests_ = 0;
  std::chrono::steady_clock::time_point request_start_;
};

std::string FormatEndpoint(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

template <class Acceptor, class SessionT>
void Server::Impl::Accept(Acceptor* acceptor) {
  acceptor->async_accept(
      asio::make_strand(ioc), [this, acceptor](const error_code& ec, auto socket) {
        if (stopping.load() || ec == asio::error::operation_aborted) return;
        if (ec) {
          // E.g. EMFILE: back off briefly instead of spinning.
          spdlog::warn("http: accept failed: {}", ec.message());
          auto timer = std::make_shared<asio::steady_timer>(acceptor->get_executor());
          timer->expires_after(std::chrono::milliseconds(100));
          timer->async_wait([this, acceptor, timer](const error_code& tec) {
            if (!tec && !stopping.load()) Accept<Acceptor, SessionT>(acceptor);
          });
          return;
        }
        if (connections.load() >= options.max_connections) {
          spdlog::warn("http: connection limit {} reached, refusing a connection",
                       options.max_connections);
          error_code cec;
          socket.close(cec);
        } else {
          std::string remote = "unix";
          std::string source;  // the Unix socket is local: never capped per source
          PeerCred peer;
          if constexpr (std::is_same_v<SessionT, Session<UnixStream>>) peer = ReadPeerCred(socket.native_handle());
          if constexpr (std::is_same_v<SessionT, Session<TlsStream>> ||
                        std::is_same_v<SessionT, Session<PlainTcpStream>>) {
            error_code rec;
            auto ep = socket.remote_endpoint(rec);
            remote = rec ? std::string("unknown") : FormatEndpoint(ep);
            source = rec ? std::string("unknown") : ep.address().to_string();
            error_code nec;
            socket.set_option(tcp::no_delay(true), nec);
          }
          if (!AdmitSource(source)) {
            if (peer.pidfd >= 0) ::close(peer.pidfd);
            // Closed at once (no TLS handshake): one source cannot hold every connection slot.
            if (metrics != nullptr) metrics->Increment("http_connections_refused_total", {{"reason", "per_source"}});
            spdlog::debug("http: {} holds {} connections, refusing another", source,
                          options.max_connections_per_source);
            error_code cec;
            socket.close(cec);
          } else {
            ConnectionOpened();
            auto session = std::make_shared<SessionT>(this, std::move(socket), std::move(remote));
            session->set_source(std::move(source));
            session->set_peer(peer);
            session->Run();
          }
        }
        Accept<Acceptor, SessionT>(acceptor);
      });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options, Router router,
                                               Metrics* metrics) {
  if (!options.tcp_enabled && options.unix_socket_path.empty()) {
    return InvalidArgument("server has nothing to listen on (TCP disabled, no Unix socket)");
  }
  if (options.max_body_bytes == 0 || options.max_header_bytes < 256) {
    return InvalidArgument("max_body_bytes must be > 0 and max_header_bytes >= 256");
  }
  if (options.threads == 0) options.threads = std::max(1u, std::thread::hardware_concurrency());
  auto impl = std::make_unique<Impl>(static_cast<int>(options.threads));
  if (options.tcp_enabled && options.tcp_plaintext) {
    error_code aec;
    asio::ip::address addr = asio::ip::make_address(options.listen_address, aec);
    if (aec || !addr.is_loopback()) {
      return InvalidArgument("plain HTTP on TCP is only allowed on a loopback address, not '" +
                             options.listen_address + "'");
    }
    if (!options.client_ca_pem.empty()) return InvalidArgument("client_ca_pem needs TLS");
  } else if (options.tcp_enabled) {
    if (options.cert_chain_pem.empty() || options.private_key_pem.empty()) {
      return InvalidArgument("HTTPS needs a certificate chain and a private key");
    }
    VOUCH_ASSIGN_OR_RETURN(impl->tls, MakeTlsContext(options));
  } else if (!options.client_ca_pem.empty()) {
    return InvalidArgument("client_ca_pem needs the TLS listener");
  }
  impl->options = std::move(options);
  impl->router = std::move(router);
  impl->metrics = metrics;
  if (metrics != nullptr) {
    metrics->DeclareCounter("http_requests_total",
                            "HTTP requests by route pattern, method and status code");
    metrics->DeclareHistogram("http_request_duration_seconds",
                              "Time from a request's first byte to its response, by route");
    metrics->DeclareGauge("http_connections_active", "Open HTTP connections");
    metrics->DeclareCounter("http_connections_refused_total",
                            "Connections closed at accept, by reason (per_source: over max_connections_per_source)");
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Start() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.state_mu);
    if (s.state != Impl::State::kCreated) return FailedPrecondition("server already started");
  }
  const ServerOptions& o = s.options;
  error_code ec;
  if (o.tcp_enabled) {
    asio::ip::address addr = asio::ip::make_address(o.listen_address, ec);
    if (ec) {
      return InvalidArgument(
          fmt::format("listen address '{}' is not an IP address", o.listen_address));
    }
    tcp::endpoint ep(addr, o.port);
    auto acceptor = std::make_unique<tcp::acceptor>(asio::make_strand(s.ioc));
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (ec) {
      std::string what = fmt::format("cannot listen on {}: {}", FormatEndpoint(ep), ec.message());
      if (ec == asio::error::address_in_use) return Unavailable(what, "address_in_use");
      return Unavailable(what, "bind_failed");
    }
    acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Unavailable(fmt::format("listen: {}", ec.message()), "bind_failed");
    s.bound_port = acceptor->local_endpoint(ec).port();
    s.tcp_acceptor = std::move(acceptor);
  }
  if (!o.unix_socket_path.empty()) {
    struct stat st {};
    if (::lstat(o.unix_socket_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return FailedPrecondition(fmt::format("{} exists and is not a socket", o.unix_socket_path),
                                  "bind_failed");
      }
      ::unlink(o.unix_socket_path.c_str());
    }
    auto acceptor = std::make_unique<unix_socket::acceptor>(asio::make_strand(s.ioc));
    unix_socket::endpoint ep(o.unix_socket_path);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec && ::chmod(o.unix_socket_path.c_str(), static_cast<mode_t>(o.unix_socket_mode)) != 0) {
      ec = error_code(errno, boost::system::system_category());
    }
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      s.tcp_acceptor.reset();
      return Unavailable(
          fmt::format("cannot listen on unix:{}: {}", o.unix_socket_path, ec.message()),
          ec == asio::error::address_in_use ? "address_in_use" : "bind_failed");
    }
    s.unix_acceptor = std::move(acceptor);
  }
  s.work.emplace(s.ioc.get_executor());
  if (s.tcp_acceptor && o.tcp_plaintext) {
    s.Accept<tcp::acceptor, Session<PlainTcpStream>>(s.tcp_acceptor.get());
  } else if (s.tcp_acceptor) {
    s.Accept<tcp::acceptor, Session<TlsStream>>(s.tcp_acceptor.get());
  }
  if (s.unix_acceptor) s.Accept<unix_socket::acceptor, Session<UnixStream>>(s.unix_acceptor.get());
  {
    std::lock_guard lock(s.state_mu);
    s.state = Impl::State::kRunning;
  }
  for (size_t i = 0; i < o.threads; ++i) {
    s.threads.emplace_back([&s] {
      while (true) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {  // safety net: keep the I/O thread alive
          spdlog::error("http: I/O thread caught: {}", e.what());
        }
      }
    });
  }
  if (o.tcp_enabled) {
    spdlog::info("http: listening on {}://{}:{}", o.tcp_plaintext ? "http" : "https", o.listen_address, port());
  }
  if (!o.unix_socket_path.empty()) spdlog::info("http: listening on unix:{}", o.unix_socket_path);
  return Status::Ok();
}

uint16_t Server::port() const { return impl_->bound_port.load(); }

size_t Server::active_connections() const { return impl_->connections.load(); }

void Server::Stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.state_mu);
    if (s.state == Impl::State::kCreated) {
      s.state = Impl::State::kStopped;
      s.state_cv.notify_all();
      return;
    }
    if (s.state != Impl::State::kRunning) {
      s.state_cv.wait(lock, [&] { return s.state == Impl::State::kStopped; });
      return;
    }
    s.state = Impl::State::kStopping;
  }
  s.stopping.store(true);
  if (s.tcp_acceptor) {
    asio::post(s.tcp_acceptor->get_executor(), [&s] {
      error_code ec;
      s.tcp_acceptor->close(ec);
    });
  }
  if (s.unix_acceptor) {
    asio::post(s.unix_acceptor->get_executor(), [&s] {
      error_code ec;
      s.unix_acceptor->close(ec);
    });
  }
  {
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard lock(s.sessions_mu);
      for (auto& [id, weak] : s.sessions) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (auto& session : live) session->OnServerStop();
  }
  s.work.reset();
  auto deadline = std::chrono::steady_clock::now() + grace;
  bool on_io_thread = false;
  for (const std::thread& t : s.threads) on_io_thread |= t.get_id() == std::this_thread::get_id();
  if (on_io_thread) {
    // Called from a handler: this thread cannot join itself, so finish the stop from another
    // one. The destructor and Wait() still wait for it.
    spdlog::warn("http: Stop called from an I/O thread; finishing the stop asynchronously");
    std::thread([&s, deadline] { FinishStop(s, deadline); }).detach();
    return;
  }
  FinishStop(s, deadline);
}

void Server::FinishStop(Impl& s, std::chrono::steady_clock::time_point deadline) {
  while (s.connections.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (s.connections.load() > 0) {
    spdlog::warn("http: {} connection(s) still open after the grace period; closing them",
                 s.connections.load());
  }
  s.ioc.stop();
  for (std::thread& t : s.threads) {
    if (t.joinable()) t.join();
  }
  s.threads.clear();
  {
    // Connections that outlived the grace period: their handlers will never run now, so close
    // the sockets here rather than when the io_context is destroyed with the Server.
    std::vector<std::shared_ptr<SessionBase>> left;
    {
      std::lock_guard lock(s.sessions_mu);
      for (auto& [id, weak] : s.sessions) {
        if (auto session = weak.lock()) left.push_back(std::move(session));
      }
    }
    for (auto& session : left) session->ForceClose();
  }  // `left` is released outside sessions_mu: a session destructor takes it
  if (!s.options.unix_socket_path.empty() && s.unix_acceptor)
    ::unlink(s.options.unix_socket_path.c_str());
  spdlog::info("http: server stopped");
  std::lock_guard lock(s.state_mu);
  s.state = Impl::State::kStopped;
  s.state_cv.notify_all();
}

void Server::Wait() {
  Impl& s = *impl_;
  std::unique_lock lock(s.state_mu);
  s.state_cv.wait(
      lock, [&] { return s.state == Impl::State::kStopped || s.state == Impl::State::kCreated; });
}

}  // namespace vouch::http
