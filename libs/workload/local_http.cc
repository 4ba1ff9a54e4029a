#include "workload/local_http.h"

#include "workload/agent_error.h"

#include <curl/curl.h>

#include <mutex>

namespace vouch::workload {
namespace {

size_t Sink(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > (8u << 20)) return 0;  // a local answer is never this large
  out->append(data, size * n);
  return size * n;
}

}  // namespace

LocalHttp::LocalHttp(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

LocalHttp::~LocalHttp() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<LocalHttp>> LocalHttp::Create(std::string socket_path, std::chrono::milliseconds timeout) {
  if (socket_path.empty()) return InvalidArgument("the agent socket path is empty", "invalid_socket");
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto c = std::unique_ptr<LocalHttp>(new LocalHttp(std::move(socket_path), timeout));
  c->curl_ = curl_easy_init();
  if (c->curl_ == nullptr) return Internal("curl_easy_init failed");
  return c;
}

Result<nlohmann::json> LocalHttp::Get(std::string_view path) { return Call("GET", path, nullptr); }

Result<nlohmann::json> LocalHttp::Post(std::string_view path, const nlohmann::json& body) {
  std::string text = body.dump();
  return Call("POST", path, &text);
}

Result<nlohmann::json> LocalHttp::Call(std::string_view method, std::string_view path, const std::string* body) {
  CURL* h = static_cast<CURL*>(curl_);
  curl_easy_reset(h);
  std::string url = "http://localhost" + std::string(path);
  std::string out;
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    std::string msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Status(StatusCode::kDeadlineExceeded, "agent: " + msg, "timeout");
    return Unavailable("cannot reach the agent at " + socket_path_ + ": " + msg, "agent_unavailable");
  }
  if (status < 200 || status >= 300) return ErrorFromAgentAnswer(status, out);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (out.empty()) return nlohmann::json(nullptr);
  if (j.is_discarded()) return Internal("the agent answered with invalid JSON", "invalid_response");
  return j;
}

}  // namespace vouch::workload
