#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "http/metrics.h"
#include "http/router.h"

namespace vouch::http {

struct ServerOptions {
  // HTTPS listener. Disable it (tcp_enabled = false) to serve only the Unix socket.
  bool tcp_enabled = true;
  std::string listen_address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 8443;                      // 0 = ephemeral; see Server::port()
  std::string cert_chain_pem;                // server certificate, then intermediates (PEM)
  std::string private_key_pem;               // its private key (PEM)
  // If non-empty: PEM CA certificate(s). The server then requests (does not require) a client
  // certificate. A presented certificate that does not verify against these CAs fails the TLS
  // handshake (the connection is rejected); a verified chain reaches handlers as
  // Request::peer_cert_chain_der. Clients without a certificate proceed normally.
  std::string client_ca_pem;
  // Serve plain HTTP (no TLS) on the TCP listener. Only for loopback addresses (127.0.0.0/8,
  // ::1); Create refuses anything else. For local APIs such as the node agent's --listen-tcp.
  bool tcp_plaintext = false;

  size_t threads = 0;  // I/O threads that also run the handlers; 0 = hardware_concurrency
  size_t max_body_bytes = 1 << 20;         // larger bodies: 413 "body_too_large", then close
  size_t max_header_bytes = 16 << 10;      // larger request line + headers: 431, then close
  std::chrono::seconds read_timeout{30};   // a whole request (headers + body), and the TLS
                                           // handshake, must arrive within this
  std::chrono::seconds idle_timeout{60};   // keep-alive wait for the next request's first byte
  std::chrono::seconds write_timeout{30};  // sending one response
  size_t max_connections = 10000;          // further connections are accepted and closed at once
  // Open TCP connections one source IP address may hold (0 = no cap); further ones from it are
  // accepted and closed at once. The Unix socket is not capped.
  size_t max_connections_per_source = 0;
  size_t max_requests_per_connection = 0;  // 0 = unlimited; else Connection: close after N

  // Optional plain-HTTP listener on a Unix socket (the node agent's local API). A stale socket
  // file is replaced; the file gets `unix_socket_mode` and is removed when the server stops.
  // Handlers see the peer process (Request::peer_pid, peer_uid, peer_gid, peer_pidfd).
  std::string unix_socket_path;
  uint32_t unix_socket_mode = 0660;
};

// An HTTP/1.1 server: HTTPS (TLS 1.2 minimum, TLS 1.3 preferred, AEAD ciphers only, no
// compression, no renegotiation) on TCP and optionally plain HTTP on a Unix socket, with
// keep-alive, bounded request sizes and timeouts. Handlers run on the I/O threads, one request
// per connection at a time; a handler that throws gets a 500 "internal" JSON response and a log
// line. Malformed requests get a 400 JSON error and the connection is closed. Every response
// carries X-Content-Type-Options: nosniff and (unless the handler set one) Cache-Control:
// no-store. Bodies and Authorization headers are never logged.
//
// Thread safety: Start, Stop and Wait may be called from any thread. Stop called from a handler
// (an I/O thread) only begins the stop and returns; Wait (from another thread) and the
// destructor wait for its end. Wait must not be called from a handler. Metrics must outlive the
// Server.
class Server {
 public:
  // Validates the options and builds the TLS context (bad PEM, key not matching the
  // certificate, tcp without a certificate, nothing to listen on: InvalidArgument). Does not
  // bind. `metrics` may be null.
  static Result<std::unique_ptr<Server>> Create(ServerOptions options, Router router,
                                                Metrics* metrics = nullptr);
  ~Server();  // Stop(0) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens (Unavailable "address_in_use" / "bind_failed" on failure), then starts
  // the I/O threads. Returns once the listeners accept connections. Only once per Server.
  Status Start();
  // The bound TCP port (the real one when options.port was 0); 0 before Start.
  uint16_t port() const;
  // Graceful stop: stops accepting, closes idle keep-alive connections, lets requests being
  // read or handled finish (their responses carry Connection: close), then after at most
  // `grace` closes whatever is left and joins the I/O threads. Idempotent.
  void Stop(std::chrono::milliseconds grace);
  // Blocks until the server has stopped (returns at once if it never started).
  void Wait();

  size_t active_connections() const;

  struct Impl;  // implementation detail (server.cc)

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  static void FinishStop(Impl& impl, std::chrono::steady_clock::time_point deadline);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vouch::http
