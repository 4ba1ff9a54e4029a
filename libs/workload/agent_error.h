#pragma once

// The one decoding of the agent's error answers, shared by both transports of LocalHttp
// (local_http.cc over libcurl, apps/vouch-rte/local_http_socket.cc over a plain socket). Header
// only because vouch-rte compiles its own selection of the workload sources.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/http_status.h"
#include "base/status.h"

namespace vouch::workload {

// An HTTP error answer (status outside 2xx) from the agent as a Status: the body's
// {"error":{"code","message"}} when it has that shape (string fields), else the code "http_<status>"
// and a printable excerpt of the body. The StatusCode follows base/http_status.h.
inline Status ErrorFromAgentAnswer(long http_status, std::string_view body) {
  std::string code = "http_" + std::to_string(http_status);
  std::string message = "agent answered HTTP " + std::to_string(http_status);
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json* e = j.is_object() && j.contains("error") ? &j["error"] : nullptr;
  if (e != nullptr && e->is_object()) {
    if (auto it = e->find("code"); it != e->end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      code = it->get<std::string>();
    }
    if (auto it = e->find("message"); it != e->end() && it->is_string()) message = it->get<std::string>();
  } else if (!body.empty()) {
    message += ": ";
    for (char c : body.substr(0, 300)) message.push_back(c >= 0x20 && c < 0x7f ? c : ' ');
  }
  return Status(StatusCodeForHttp(http_status, code), std::move(message), std::move(code));
}

}  // namespace vouch::workload
