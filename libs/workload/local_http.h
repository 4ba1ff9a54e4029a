#pragma once

// Plain HTTP/1.1 to a local agent over its Unix socket (libcurl, CURLOPT_UNIX_SOCKET_PATH).
// Error responses {"error":{"code","message"}} become a Status with that reason; a socket that
// cannot be reached is kUnavailable "agent_unavailable". Thread-compatible (one thread at a
// time); the connection is kept alive between calls. Never throws.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace vouch::workload {

class LocalHttp {
 public:
  static Result<std::unique_ptr<LocalHttp>> Create(std::string socket_path,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~LocalHttp();
  LocalHttp(const LocalHttp&) = delete;
  LocalHttp& operator=(const LocalHttp&) = delete;

  Result<nlohmann::json> Get(std::string_view path);
  Result<nlohmann::json> Post(std::string_view path, const nlohmann::json& body);

 private:
  LocalHttp(std::string socket_path, std::chrono::milliseconds timeout);
  Result<nlohmann::json> Call(std::string_view method, std::string_view path, const std::string* body);
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  void* curl_ = nullptr;
};

}  // namespace vouch::workload
