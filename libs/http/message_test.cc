#include "http/message.h"

#include <gtest/gtest.h>

namespace vouch::http {
namespace {

TEST(HttpStatusFor, MapsEveryStatusCode) {
  EXPECT_EQ(HttpStatusFor(Status::Ok()), 200u);
  EXPECT_EQ(HttpStatusFor(InvalidArgument("x")), 400u);
  EXPECT_EQ(HttpStatusFor(OutOfRange("x")), 400u);
  EXPECT_EQ(HttpStatusFor(Unauthenticated("x")), 401u);
  EXPECT_EQ(HttpStatusFor(PermissionDenied("x")), 403u);
  EXPECT_EQ(HttpStatusFor(NotFound("x")), 404u);
  EXPECT_EQ(HttpStatusFor(AlreadyExists("x")), 409u);
  EXPECT_EQ(HttpStatusFor(Aborted("x")), 409u);
  EXPECT_EQ(HttpStatusFor(FailedPrecondition("x")), 409u);
  EXPECT_EQ(HttpStatusFor(PayloadTooLarge("x", "body_too_large")), 413u);
  EXPECT_EQ(HttpStatusFor(ResourceExhausted("x", "body_too_large")), 429u);  // the kind decides, not the text
  EXPECT_EQ(HttpStatusFor(ResourceExhausted("x")), 429u);
  EXPECT_EQ(HttpStatusFor(ResourceExhausted("x", "rate_limited")), 429u);
  EXPECT_EQ(HttpStatusFor(Unimplemented("x")), 501u);
  EXPECT_EQ(HttpStatusFor(Unavailable("x")), 503u);
  EXPECT_EQ(HttpStatusFor(Status(StatusCode::kDeadlineExceeded, "x")), 504u);
  EXPECT_EQ(HttpStatusFor(DataLoss("x")), 500u);
  EXPECT_EQ(HttpStatusFor(Internal("x")), 500u);
}

TEST(ResponseError, HasStableCodeAndMessage) {
  Response r = Response::Error(NotFound("zone 'z' does not exist", "zone_not_found"));
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.content_type, "application/json");
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j,
            (nlohmann::json{
                {"error", {{"code", "zone_not_found"}, {"message", "zone 'z' does not exist"}}}}));
  // Without an explicit reason the code's name is used.
  Status s(StatusCode::kDeadlineExceeded, "slow");
  EXPECT_EQ(nlohmann::json::parse(Response::Error(s).body)["error"]["code"], "deadline_exceeded");
  // An ok status is a bug, not a success.
  EXPECT_EQ(Response::Error(Status::Ok()).status, 500u);
}

TEST(ResponseJson, NeverThrowsOnInvalidUtf8) {
  nlohmann::json j = {{"k", std::string("a\xff"
                                        "b")}};
  Response r = Response::Json(j, 201);
  EXPECT_EQ(r.status, 201u);
  EXPECT_FALSE(r.body.empty());
  EXPECT_FALSE(nlohmann::json::parse(r.body, nullptr, false).is_discarded());
}

TEST(ResponseHelpers, TextAndNoContent) {
  Response t = Response::Text("ok");
  EXPECT_EQ(t.status, 200u);
  EXPECT_EQ(t.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(t.body, "ok");
  Response pem = Response::Text("-----BEGIN", "application/x-pem-file");
  EXPECT_EQ(pem.content_type, "application/x-pem-file");
  Response n = Response::NoContent();
  EXPECT_EQ(n.status, 204u);
  EXPECT_TRUE(n.body.empty());
  EXPECT_TRUE(n.content_type.empty());
  n.AddHeader("Location", "/x");
  EXPECT_EQ(n.Header("location"), "/x");
}

TEST(PercentDecode, DecodesAndRejects) {
  EXPECT_EQ(PercentDecode("a%41%7e+").value(), "aA~+");
  EXPECT_EQ(PercentDecode("a+b", true).value(), "a b");
  EXPECT_FALSE(PercentDecode("%").ok());
  EXPECT_FALSE(PercentDecode("%1").ok());
  EXPECT_FALSE(PercentDecode("%x1").ok());
}

}  // namespace
}  // namespace vouch::http
