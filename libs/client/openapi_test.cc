// docs/api/openapi.json must describe exactly the endpoints of docs/api.md's table.
#include <fstream>
#include <map>
#include <vector>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json LoadOpenApi() {
  return json::parse(ReadFile(std::string(VOUCH_SOURCE_DIR) + "/docs/api/openapi.json"), nullptr, false);
}

// (method, path) pairs of the endpoint table in docs/api.md, methods lower-case. Rows marked
// "not yet implemented" are left out: the document describes what the server serves.
std::set<std::pair<std::string, std::string>> DocumentedRoutes() {
  std::set<std::pair<std::string, std::string>> routes;
  const std::regex row(R"(^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|)");
  std::istringstream in(ReadFile(std::string(VOUCH_SOURCE_DIR) + "/docs/api.md"));
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row) && line.find("not yet implemented") == std::string::npos) {
      std::string method = m[1];
      for (auto& c : method) c = static_cast<char>(std::tolower(c));
      routes.emplace(method, m[2]);
    }
  }
  return routes;
}

std::set<std::pair<std::string, std::string>> OpenApiRoutes(const json& doc) {
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "patch", "head", "options"};
  std::set<std::pair<std::string, std::string>> routes;
  for (auto& [path, item] : doc["paths"].items()) {
    for (auto& [method, op] : item.items()) {
      if (kMethods.count(method)) routes.emplace(method, path);
    }
  }
  return routes;
}

TEST(OpenApi, IsValidOpenApi3Json) {
  json doc = LoadOpenApi();
  ASSERT_FALSE(doc.is_discarded()) << "docs/api/openapi.json is not valid JSON";
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc.value("openapi", "").rfind("3.0", 0), 0u);
  EXPECT_TRUE(doc["info"].contains("title"));
  EXPECT_TRUE(doc["info"].contains("version"));
  EXPECT_EQ(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
  EXPECT_TRUE(doc["components"]["schemas"].contains("Error"));
}

TEST(OpenApi, DescribesExactlyTheEndpointsOfApiMd) {
  json doc = LoadOpenApi();
  ASSERT_TRUE(doc.is_object());
  const auto documented = DocumentedRoutes();
  ASSERT_GT(documented.size(), 40u) << "the endpoint table in docs/api.md was not found";
  const auto described = OpenApiRoutes(doc);
  for (const auto& [method, path] : documented) {
    EXPECT_TRUE(described.count({method, path})) << "missing in openapi.json: " << method << " " << path;
  }
  for (const auto& [method, path] : described) {
    EXPECT_TRUE(documented.count({method, path})) << "not in docs/api.md: " << method << " " << path;
  }
}

// Resolves a "#/components/..." reference.
const json* Resolve(const json& doc, const json& maybe_ref) {
  if (!maybe_ref.is_object() || !maybe_ref.contains("$ref")) return &maybe_ref;
  std::string ref = maybe_ref["$ref"];
  if (ref.rfind("#", 0) != 0) return nullptr;
  const json::json_pointer ptr(ref.substr(1));
  return doc.contains(ptr) ? &doc.at(ptr) : nullptr;
}

void CollectRefs(const json& v, std::set<std::string>& out) {
  if (v.is_object()) {
    for (auto& [k, e] : v.items()) {
      if (k == "$ref" && e.is_string()) out.insert(e.get<std::string>());
      CollectRefs(e, out);
    }
  } else if (v.is_array()) {
    for (auto& e : v) CollectRefs(e, out);
  }
}

TEST(OpenApi, OperationsAreWellFormed) {
  json doc = LoadOpenApi();
  ASSERT_TRUE(doc.is_object());
  std::set<std::string> ids;
  const std::regex param(R"(\{([a-z_]+)\})");
  for (auto& [path, item] : doc["paths"].items()) {
    std::set<std::string> templated;
    for (std::sregex_iterator it(path.begin(), path.end(), param), end; it != end; ++it) templated.insert((*it)[1]);
    for (auto& [method, op] : item.items()) {
      if (method == "parameters") continue;
      SCOPED_TRACE(method + " " + path);
      ASSERT_TRUE(op.contains("operationId"));
      EXPECT_TRUE(ids.insert(op["operationId"].get<std::string>()).second) << "duplicate operationId";
      ASSERT_TRUE(op.contains("responses"));
      EXPECT_FALSE(op["responses"].empty());
      std::set<std::string> declared;
      for (const auto* params : {&item, &op}) {
        if (!params->contains("parameters")) continue;
        for (const auto& p : (*params)["parameters"]) {
          const json* resolved = Resolve(doc, p);
          ASSERT_NE(resolved, nullptr);
          if ((*resolved)["in"] == "path") declared.insert((*resolved)["name"].get<std::string>());
        }
      }
      EXPECT_EQ(declared, templated);
    }
  }
  std::set<std::string> refs;
  CollectRefs(doc, refs);
  for (const auto& ref : refs) {
    EXPECT_NE(Resolve(doc, json{{"$ref", ref}}), nullptr) << "dangling $ref " << ref;
  }
}

TEST(OpenApi, SchemasCoverTheObjectsOfApiMd) {
  json doc = LoadOpenApi();
  ASSERT_TRUE(doc.is_object());
  const json& schemas = doc["components"]["schemas"];
  const std::map<std::string, std::vector<std::string>> objects = {
      {"Zone", {"id", "name", "created_at", "policy", "ca"}},
      {"User", {"id", "name", "role", "disabled", "created_at"}},
      {"App", {"id", "name", "zone", "domains", "pending_domains", "spiffe_id", "created_at", "created_by"}},
      {"Build", {"id", "app", "zone", "status", "platform", "measurements", "image_ref", "image_digest", "task_id",
                 "approvals_required", "approvals", "created_at", "created_by", "reason"}},
      {"Task", {"id", "kind", "status", "zone", "app", "build_id", "domain", "summary", "approvals_required",
                "approvals", "denied_by", "reason", "created_at", "created_by"}},
      {"Certificate", {"serial", "zone", "app", "build_id", "subject", "sans", "not_before", "not_after", "status",
                       "revoked_at", "revocation_reason", "issued_to", "pem"}},
      {"Node", {"id", "zone", "platform", "tcb_status", "advisory_ids", "fmspc", "status", "last_seen",
                "cert_not_after", "created_at"}},
      {"Instance", {"id", "app", "build_id", "node", "serial", "status", "first_seen", "last_heartbeat"}},
      {"AuditEntry", {"seq", "at", "actor", "action", "target", "outcome", "detail", "prev_hash", "hash"}},
  };
  for (const auto& [name, fields] : objects) {
    ASSERT_TRUE(schemas.contains(name)) << name;
    for (const auto& f : fields) EXPECT_TRUE(schemas[name]["properties"].contains(f)) << name << "." << f;
  }
  EXPECT_EQ(schemas["Error"]["properties"]["error"]["required"], json::array({"code", "message"}));
}

}  // namespace
