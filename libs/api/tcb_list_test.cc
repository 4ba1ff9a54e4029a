// The zone minimum TCB statuses are listed once, in libs/policy (kZoneMinimumTcbStatuses). The
// OpenAPI document and the web console carry copies for their readers; this test keeps them equal.

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/manager.h"
#include "base/file.h"
#include "policy/tcb_status.h"

namespace vouch::api {
namespace {

std::vector<std::string> PolicyNames() {
  std::vector<std::string> out;
  for (policy::TcbStatus s : policy::kZoneMinimumTcbStatuses) out.emplace_back(policy::TcbStatusName(s));
  return out;
}

void CollectMinTcbEnums(const nlohmann::json& j, std::vector<std::vector<std::string>>* out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "min_tcb" && it->is_object() && it->contains("enum")) {
        out->push_back((*it)["enum"].get<std::vector<std::string>>());
      }
      CollectMinTcbEnums(*it, out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) CollectMinTcbEnums(e, out);
  }
}

TEST(TcbList, TheApiAcceptsExactlyThePolicyList) {
  for (const std::string& name : PolicyNames()) EXPECT_TRUE(IsValidTcbStatus(name)) << name;
  for (const char* other : {"Revoked", "TcbLevelNotSupported", "TDRelaunchAdvised", "uptodate", ""}) {
    EXPECT_FALSE(IsValidTcbStatus(other)) << other;
  }
}

TEST(TcbList, TheOpenApiEnumsAreThePolicyList) {
  auto text = ReadWholeFile(std::string(VOUCH_SOURCE_DIR) + "/docs/api/openapi.json");
  ASSERT_TRUE(text.ok()) << text.status().message();
  std::vector<std::vector<std::string>> enums;
  CollectMinTcbEnums(nlohmann::json::parse(*text), &enums);
  ASSERT_FALSE(enums.empty());
  for (const auto& e : enums) EXPECT_EQ(e, PolicyNames());
}

TEST(TcbList, TheConsoleListIsThePolicyList) {
  auto text = ReadWholeFile(std::string(VOUCH_SOURCE_DIR) + "/ui/views.js");
  ASSERT_TRUE(text.ok()) << text.status().message();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*text, m, std::regex(R"(const kTcb = \[([^\]]*)\])")));
  std::vector<std::string> names;
  const std::string list = m[1].str();
  const std::regex item("'([A-Za-z]+)'");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), item); it != std::sregex_iterator(); ++it) {
    names.push_back((*it)[1].str());
  }
  EXPECT_EQ(names, PolicyNames());
}

}  // namespace
}  // namespace vouch::api
