// libFuzzer target for the request-facing parsers of this library: request-target decoding,
// routing with path parameters, and JsonBody validation. Input: "<target>\n<json body>".
// Built only by the fuzz preset (fuzz/CMakeLists.txt); run with scripts/fuzz http_request.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/json_body.h"
#include "http/router.h"

namespace {

const vouch::http::Router& TestRouter() {
  static const vouch::http::Router* router = [] {
    auto* r = new vouch::http::Router();
    auto ok = [](vouch::http::Request& req) {
      return vouch::http::Response::Json({{"params", req.path_params}, {"query", req.query}});
    };
    r->Add("GET", "/api/v1/zones/{id}", ok);
    r->Add("GET", "/api/v1/zones/{id}/ca", ok);
    r->Add("GET", "/api/v1/audit/verify", ok);
    r->Add("DELETE", "/api/v1/apps/{id}/domains/{domain}", ok);
    r->Add("GET", "/ui/{path...}", ok);
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  vouch::http::Request req;
  req.method = "GET";
  req.target = std::string(input.substr(0, nl));
  if (req.ParseTarget().ok()) {
    vouch::http::Response res = TestRouter().Dispatch(req);
    if (res.status < 200 || res.status > 599) __builtin_trap();
  }
  if (nl == std::string_view::npos) return 0;
  auto body = vouch::http::JsonBody::Parse(input.substr(nl + 1));
  if (!body.ok()) return 0;
  (void)body->OptionalString("name", 64);
  (void)body->OptionalInt("n", 0, 1000);
  (void)body->OptionalBool("b");
  (void)body->OptionalStringArray("domains", 10, 253);
  if (auto nested = body->OptionalObject("policy"); nested.ok() && nested->has_value()) {
    (void)(*nested)->OptionalString("min_tcb");
    (void)(*nested)->Finish();
  }
  (void)body->Finish();
  return 0;
}
