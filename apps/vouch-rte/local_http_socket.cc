// vouch::workload::LocalHttp without libcurl, so vouch-rte links statically and runs in any base
// image (busybox, distroless). Same interface as libs/workload/local_http.h: HTTP/1.1 over the
// agent's Unix socket, one request per connection ("Connection: close"), bounded responses
// (1 MiB), error bodies {"error":{"code","message"}} become a Status with that reason, an
// unreachable socket is kUnavailable "agent_unavailable". Never throws.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "workload/local_http.h"

#include "base/http_response.h"
#include "workload/agent_error.h"

namespace vouch::workload {
namespace {

constexpr size_t kMaxResponse = 1 << 20;

Status Unreachable(const std::string& path, const std::string& why) {
  return Unavailable("agent socket " + path + ": " + why, "agent_unavailable");
}

// The status line and headers of the agent's answer (HTTP/1.x only), bounds-checked.
Result<HttpResponseHead> ParseAgentHead(std::string_view head) {
  if (head.substr(0, 7) != "HTTP/1.") return Internal("malformed HTTP response from the agent", "invalid_response");
  auto parsed = ParseHttpResponseHead(head, kMaxResponse);
  if (!parsed.ok()) {
    return Internal("malformed HTTP response from the agent: " + parsed.status().message(), "invalid_response");
  }
  return parsed;
}

}  // namespace

LocalHttp::LocalHttp(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

LocalHttp::~LocalHttp() { (void)curl_; }  // no libcurl handle here; the member stays for the shared header

Result<std::unique_ptr<LocalHttp>> LocalHttp::Create(std::string socket_path, std::chrono::milliseconds timeout) {
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return InvalidArgument("agent socket path is empty or too long");
  }
  return std::unique_ptr<LocalHttp>(new LocalHttp(std::move(socket_path), timeout));
}

Result<nlohmann::json> LocalHttp::Get(std::string_view path) { return Call("GET", path, nullptr); }

Result<nlohmann::json> LocalHttp::Post(std::string_view path, const nlohmann::json& body) {
  std::string text = body.dump();
  return Call("POST", path, &text);
}

Result<nlohmann::json> LocalHttp::Call(std::string_view method, std::string_view path, const std::string* body) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unreachable(socket_path_, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Unreachable(socket_path_, std::strerror(errno));
  }
  std::string req = std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n" +
                    "Connection: close\r\nAccept: application/json\r\nUser-Agent: vouch-rte\r\n";
  if (body != nullptr) {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body->size()) + "\r\n\r\n" + *body;
  } else {
    req += "\r\n";
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto wait = [&](short events) -> Status {
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Status(StatusCode::kDeadlineExceeded, "agent did not answer in time", "timeout");
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r > 0) return Status::Ok();
      if (r < 0 && errno != EINTR) return Unreachable(socket_path_, std::strerror(errno));
    }
  };
  size_t off = 0;
  while (off < req.size()) {
    VOUCH_RETURN_IF_ERROR(wait(POLLOUT));
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Unreachable(socket_path_, std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[16384];
  while (true) {
    VOUCH_RETURN_IF_ERROR(wait(POLLIN));
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Unreachable(socket_path_, std::strerror(errno));
    if (n == 0) break;
    if (resp.size() + static_cast<size_t>(n) > kMaxResponse) {
      return ResourceExhausted("agent response larger than 1 MiB", "invalid_response");
    }
    resp.append(buf, static_cast<size_t>(n));
    // Stop as soon as a Content-Length body is complete (the server may keep the socket open).
    const size_t hend = resp.find("\r\n\r\n");
    if (hend != std::string::npos) {
      VOUCH_ASSIGN_OR_RETURN(HttpResponseHead head, ParseAgentHead(std::string_view(resp).substr(0, hend)));
      if (head.content_length && !head.chunked && resp.size() - (hend + 4) >= *head.content_length) break;
    }
  }
  const size_t hend = resp.find("\r\n\r\n");
  if (hend == std::string::npos) return Internal("malformed HTTP response from the agent", "invalid_response");
  VOUCH_ASSIGN_OR_RETURN(HttpResponseHead head, ParseAgentHead(std::string_view(resp).substr(0, hend)));
  const std::string_view rest = std::string_view(resp).substr(hend + 4);
  std::string body_text;
  if (head.chunked) {
    auto decoded = DecodeChunkedBody(rest, kMaxResponse);
    if (!decoded.ok()) return Internal("malformed chunked response from the agent", "invalid_response");
    body_text = std::move(*decoded);
  } else if (head.content_length) {
    if (*head.content_length > rest.size()) return Internal("truncated response from the agent", "invalid_response");
    body_text = rest.substr(0, *head.content_length);
  } else {
    body_text = rest;
  }
  if (head.status < 200 || head.status > 299) return ErrorFromAgentAnswer(head.status, body_text);
  nlohmann::json j = body_text.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(body_text, nullptr, false);
  if (j.is_discarded()) return Internal("agent answered with invalid JSON", "invalid_response");
  return j;
}

}  // namespace vouch::workload
