#pragma once

// The http::Request an API test dispatches to a Router, as the server would hand it over.
#include <cstdint>
#include <string>
#include <vector>

#include "http/message.h"

namespace vouch::test {

class RequestBuilder {
 public:
  RequestBuilder(std::string method, std::string target);
  RequestBuilder& Body(std::string body);
  RequestBuilder& Header(std::string name, std::string value);
  // "Authorization: Bearer <token>"; nothing for an empty token.
  RequestBuilder& Bearer(const std::string& token);
  RequestBuilder& Remote(std::string address);  // default "127.0.0.1:40000"
  RequestBuilder& Tls(bool tls);                // default true
  RequestBuilder& ClientCert(std::vector<uint8_t> der);  // appended to the verified peer chain
  // The request with path and query parsed from the target; `parsed` (if given) says whether the
  // target parsed (an invalid target is left for the router to refuse).
  http::Request Build(bool* parsed = nullptr) const;

 private:
  http::Request req_;
};

}  // namespace vouch::test
