#include "testing/request.h"

#include <utility>

namespace vouch::test {

RequestBuilder::RequestBuilder(std::string method, std::string target) {
  req_.method = std::move(method);
  req_.target = std::move(target);
  req_.remote_address = "127.0.0.1:40000";
  req_.tls = true;
}

RequestBuilder& RequestBuilder::Body(std::string body) {
  req_.body = std::move(body);
  return *this;
}

RequestBuilder& RequestBuilder::Header(std::string name, std::string value) {
  req_.headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

RequestBuilder& RequestBuilder::Bearer(const std::string& token) {
  if (!token.empty()) req_.headers.emplace_back("Authorization", "Bearer " + token);
  return *this;
}

RequestBuilder& RequestBuilder::Remote(std::string address) {
  req_.remote_address = std::move(address);
  return *this;
}

RequestBuilder& RequestBuilder::Tls(bool tls) {
  req_.tls = tls;
  return *this;
}

RequestBuilder& RequestBuilder::ClientCert(std::vector<uint8_t> der) {
  req_.peer_cert_chain_der.push_back(std::move(der));
  return *this;
}

http::Request RequestBuilder::Build(bool* parsed) const {
  http::Request req = req_;
  bool ok = req.ParseTarget().ok();
  if (parsed != nullptr) *parsed = ok;
  return req;
}

}  // namespace vouch::test
