#include "http/json_body.h"

#include <gtest/gtest.h>

#include <chrono>

namespace vouch::http {
namespace {

JsonBody MustParse(std::string_view text) {
  Result<JsonBody> b = JsonBody::Parse(text);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

TEST(JsonBody, RejectsNonJsonAndNonObjects) {
  for (const char* text : {"", "   ", "{", "{\"a\":}", "nul", "{'a':1}", "{\"a\":1} x"}) {
    Result<JsonBody> b = JsonBody::Parse(text);
    ASSERT_FALSE(b.ok()) << text;
    EXPECT_EQ(b.status().reason(), "invalid_json") << text;
    EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  }
  for (const char* text : {"[]", "1", "\"s\"", "null", "true"}) {
    Result<JsonBody> b = JsonBody::Parse(text);
    ASSERT_FALSE(b.ok()) << text;
    EXPECT_EQ(b.status().reason(), "invalid_json") << text;
  }
}

TEST(JsonBody, RejectsInvalidUtf8) {
  EXPECT_EQ(JsonBody::Parse("{\"a\":\"\xff\"}").status().reason(), "invalid_json");
}

TEST(JsonBody, RejectsDeepNesting) {
  std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(JsonBody::Parse(deep).status().reason(), "invalid_json");
  // A megabyte of nesting, unclosed or closed, objects or arrays: refused, quickly, without a crash.
  for (const std::string& hostile : {std::string(1 << 20, '['), std::string(1 << 19, '[') + std::string(1 << 19, ']'),
                                     "{\"a\":" + [] {
                                       std::string s;
                                       for (int i = 0; i < 100000; ++i) s += "{\"a\":";
                                       return s;
                                     }()}) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(JsonBody::Parse(hostile).status().reason(), "invalid_json");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  }
  // Exactly 64 levels are fine; 65 are not.
  std::string ok64 = std::string(1, '{') + "\"a\":" + std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_TRUE(JsonBody::Parse(ok64).ok()) << JsonBody::Parse(ok64).status().ToString();
  std::string deep65 = std::string(1, '{') + "\"a\":" + std::string(64, '[') + std::string(64, ']') + "}";
  EXPECT_EQ(JsonBody::Parse(deep65).status().reason(), "invalid_json");
  // Brackets inside strings do not count.
  EXPECT_TRUE(JsonBody::Parse("{\"a\":\"" + std::string(1000, '[') + "\"}").ok());
  // Over 1 MiB: refused before any parsing, whatever the server's limit.
  std::string big = "{\"a\":\"" + std::string(1 << 20, 'x') + "\"}";
  EXPECT_EQ(JsonBody::Parse(big).status().reason(), "body_too_large");
  EXPECT_EQ(JsonBody::Parse(big).status().code(), StatusCode::kPayloadTooLarge);
  // Brackets inside strings do not count.
  std::string shallow = "{\"a\":\"" + std::string(100, '[') + "\"}";
  EXPECT_TRUE(JsonBody::Parse(shallow).ok());
}

TEST(JsonBody, ReadsRequiredAndOptionalFields) {
  JsonBody b = MustParse(
      R"({"name":"z1","allow_sim":true,"approvals":2,"tags":["a","b"],"note":null,"policy":{"x":1}})");
  EXPECT_EQ(b.RequiredString("name").value(), "z1");
  EXPECT_EQ(b.OptionalBool("allow_sim").value(), std::optional<bool>(true));
  EXPECT_EQ(b.RequiredInt("approvals", 1, 10).value(), 2);
  EXPECT_EQ(b.OptionalStringArray("tags", 5, 10).value(),
            (std::optional<std::vector<std::string>>({"a", "b"})));
  EXPECT_EQ(b.OptionalString("note").value(), std::nullopt);  // null counts as absent
  EXPECT_EQ(b.OptionalInt("missing").value(), std::nullopt);
  auto policy = b.OptionalObject("policy");
  ASSERT_TRUE(policy.ok());
  ASSERT_TRUE(policy->has_value());
  EXPECT_EQ((*policy)->RequiredInt("x").value(), 1);
  EXPECT_TRUE((*policy)->Finish().ok());
  EXPECT_TRUE(b.Finish().ok());
}

TEST(JsonBody, MissingRequiredField) {
  JsonBody b = MustParse(R"({"other":1,"nul":null})");
  Result<std::string> s = b.RequiredString("name");
  EXPECT_EQ(s.status().reason(), "missing_field");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("name"), std::string::npos);
  EXPECT_EQ(b.RequiredInt("nul").status().reason(), "missing_field");
  EXPECT_EQ(b.RequiredBool("x").status().reason(), "missing_field");
  EXPECT_EQ(b.RequiredStringArray("x").status().reason(), "missing_field");
}

TEST(JsonBody, WrongTypes) {
  JsonBody b = MustParse(
      R"({"s":1,"i":"1","f":1.5,"b":"true","arr":"x","arr2":["a",2],"obj":[],"big":1e3})");
  EXPECT_EQ(b.RequiredString("s").status().reason(), "invalid_type");
  EXPECT_EQ(b.RequiredInt("i").status().reason(), "invalid_type");
  EXPECT_EQ(b.OptionalInt("f").status().reason(), "invalid_type");
  EXPECT_EQ(b.OptionalInt("big").status().reason(), "invalid_type");  // floats are not integers
  EXPECT_EQ(b.OptionalBool("b").status().reason(), "invalid_type");
  EXPECT_EQ(b.OptionalStringArray("arr").status().reason(), "invalid_type");
  Result<std::optional<std::vector<std::string>>> arr2 = b.OptionalStringArray("arr2");
  EXPECT_EQ(arr2.status().reason(), "invalid_type");
  EXPECT_NE(arr2.status().message().find("arr2[1]"), std::string::npos);
  EXPECT_EQ(b.OptionalObject("obj").status().reason(), "invalid_type");
}

TEST(JsonBody, RangesAndLengths) {
  JsonBody b = MustParse(
      R"({"n":0,"m":1001,"neg":-5,"huge":18446744073709551615,"s":"abcdef","arr":["a","b","c"],"arr2":["toolong"]})");
  Result<int64_t> n = b.RequiredInt("n", 1, 1000);
  EXPECT_EQ(n.status().reason(), "out_of_range");
  EXPECT_EQ(n.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(b.OptionalInt("m", 1, 1000).status().reason(), "out_of_range");
  EXPECT_EQ(b.OptionalInt("neg", -5, 5).value(), std::optional<int64_t>(-5));
  EXPECT_EQ(b.OptionalInt("huge").status().reason(), "out_of_range");
  EXPECT_EQ(b.RequiredString("s", 5).status().reason(), "out_of_range");
  EXPECT_EQ(b.OptionalStringArray("arr", 2).status().reason(), "out_of_range");
  EXPECT_EQ(b.OptionalStringArray("arr2", 10, 3).status().reason(), "out_of_range");
  EXPECT_EQ(b.RequiredString("s", 6).value(), "abcdef");
}

TEST(JsonBody, FinishReportsUnknownFields) {
  JsonBody b = MustParse(R"({"name":"a","zzz":1,"extra":true})");
  EXPECT_EQ(b.RequiredString("name").value(), "a");
  Status s = b.Finish();
  EXPECT_EQ(s.reason(), "unknown_field");
  EXPECT_NE(s.message().find("extra"), std::string::npos);  // first in sorted order
  // Reading a field, even one that failed validation or was null, marks it as known.
  JsonBody c = MustParse(R"({"name":"a","n":null,"t":"x"})");
  EXPECT_TRUE(c.RequiredString("name").ok());
  EXPECT_TRUE(c.OptionalInt("n").ok());
  EXPECT_FALSE(c.OptionalInt("t").ok());
  EXPECT_TRUE(c.Finish().ok());
}

TEST(JsonBody, NestedObjectErrorsNameThePath) {
  JsonBody b = MustParse(R"({"policy":{"min_tcb":3,"bogus":1}})");
  auto policy = b.OptionalObject("policy");
  ASSERT_TRUE(policy.ok() && policy->has_value());
  Result<std::optional<std::string>> tcb = (*policy)->OptionalString("min_tcb");
  EXPECT_EQ(tcb.status().reason(), "invalid_type");
  EXPECT_NE(tcb.status().message().find("policy.min_tcb"), std::string::npos);
  Status fin = (*policy)->Finish();
  EXPECT_EQ(fin.reason(), "unknown_field");
  EXPECT_NE(fin.message().find("policy.bogus"), std::string::npos);
}

TEST(JsonBody, HasAndRaw) {
  JsonBody b = MustParse(R"({"a":{"k":[1,2]},"n":null})");
  EXPECT_TRUE(b.Has("a"));
  EXPECT_FALSE(b.Has("n"));
  EXPECT_FALSE(b.Has("zz"));
  const nlohmann::json* a = b.Raw("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ((*a)["k"].size(), 2u);
  EXPECT_EQ(b.Raw("n"), nullptr);
  EXPECT_TRUE(b.Finish().ok());
  EXPECT_FALSE(JsonBody::FromJson(nlohmann::json::array()).ok());
  EXPECT_TRUE(JsonBody::FromJson(nlohmann::json::object()).ok());
}

}  // namespace
}  // namespace vouch::http
