#include "client/table.h"

#include <gtest/gtest.h>

namespace vouch::client {
namespace {

using json = nlohmann::json;

TEST(TextTable, AlignsColumnsWithTwoSpacesAndNoTrailingBlanks) {
  TextTable t({"NAME", "ROLE", "CREATED"});
  t.AddRow({"admin", "admin", "2026-11-23T12:00:00Z"});
  t.AddRow({"alice-long-name", "viewer", ""});
  EXPECT_EQ(t.Render(),
            "NAME             ROLE    CREATED\n"
            "admin            admin   2026-11-23T12:00:00Z\n"
            "alice-long-name  viewer\n");
}

TEST(TextTable, MeasuresUtf8ByCodePoint) {
  TextTable t({"A", "B"});
  t.AddRow({"zürich", "x"});
  t.AddRow({"abc", "y"});
  EXPECT_EQ(t.Render(),
            "A       B\n"
            "zürich  x\n"
            "abc     y\n");
}

TEST(TextTable, PadsShortRowsAndDropsExtraCells) {
  TextTable t({"A", "B"});
  t.AddRow({"1"});
  t.AddRow({"1", "2", "3"});
  EXPECT_EQ(t.Render(), "A  B\n1\n1  2\n");
}

TEST(TextTable, HeaderOnlyWhenEmpty) {
  TextTable t({"ID", "STATUS"});
  EXPECT_EQ(t.Render(), "ID  STATUS\n");
}

TEST(Sanitize, ReplacesControlCharactersAndEscapes) {
  EXPECT_EQ(Sanitize("a\x1b[31mb\nc\td"), "a?[31mb?c?d");
  EXPECT_EQ(Sanitize("x\xc2\x9by"), "x?y");  // C1 CSI
  EXPECT_EQ(Sanitize("zürich"), "zürich");
}

TEST(CellText, FormatsJsonValues) {
  EXPECT_EQ(CellText(nullptr), "-");
  EXPECT_EQ(CellText("blue"), "blue");
  EXPECT_EQ(CellText(true), "true");
  EXPECT_EQ(CellText(3), "3");
  EXPECT_EQ(CellText(json::array({"a.example", "b.example"})), "a.example,b.example");
  EXPECT_EQ(CellText(json::array()), "-");
}

TEST(RenderTable, ReadsColumnsThroughJsonPointers) {
  json items = json::array({
      {{"name", "blue"}, {"policy", {{"min_tcb", "UpToDate"}, {"approvals_required", 2}}}},
      {{"name", "green-zone"}, {"policy", {{"min_tcb", "SWHardeningNeeded"}}}},
  });
  std::string out = RenderTable(items, {{"NAME", "/name"},
                                        {"MIN_TCB", "/policy/min_tcb"},
                                        {"APPROVALS", "/policy/approvals_required"},
                                        {"UPPER", "/name", [](const json& v) {
                                           std::string s = v.get<std::string>();
                                           for (auto& c : s) c = static_cast<char>(std::toupper(c));
                                           return s;
                                         }}});
  EXPECT_EQ(out,
            "NAME        MIN_TCB            APPROVALS  UPPER\n"
            "blue        UpToDate           2          BLUE\n"
            "green-zone  SWHardeningNeeded  -          GREEN-ZONE\n");
}

TEST(RenderObject, FlattensNestedObjectsToAlignedDottedKeys) {
  json zone = {{"id", "zone_1"},
               {"name", "blue"},
               {"policy", {{"allow_sim", true}, {"tolerated_advisories", json::array({"INTEL-SA-1"})}}}};
  EXPECT_EQ(RenderObject(zone),
            "id                           zone_1\n"
            "name                         blue\n"
            "policy.allow_sim             true\n"
            "policy.tolerated_advisories  INTEL-SA-1\n");
  json build = {{"approvals", json::array({{{"user", "amy"}, {"at", "t1"}}})},
                {"status", "pending"},
                {"id", "build_1"},
                {"app", "web"}};
  EXPECT_EQ(RenderObject(build),
            "id                 build_1\n"
            "app                web\n"
            "status             pending\n"
            "approvals[0].at    t1\n"
            "approvals[0].user  amy\n");
}

}  // namespace
}  // namespace vouch::client
