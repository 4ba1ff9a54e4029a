// vouch server status | metrics | openapi: the service endpoints (/healthz, /readyz, /metrics,
// /api/v1/openapi.json), so that every route of the REST API has a CLI command.
#include <iostream>
#include <sstream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Prometheus text exposition -> [{name, labels: {k: v}, value}] (comments and blank lines skipped).
json ParseMetrics(const std::string& text) {
  json samples = json::array();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t brace = line.find('{');
    size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    json sample{{"labels", json::object()}};
    if (brace != std::string::npos && brace < space) {
      sample["name"] = line.substr(0, brace);
      size_t close = line.rfind('}', space);
      std::string labels = close == std::string::npos ? "" : line.substr(brace + 1, close - brace - 1);
      size_t pos = 0;
      while (pos < labels.size()) {
        size_t eq = labels.find('=', pos);
        if (eq == std::string::npos || eq + 1 >= labels.size() || labels[eq + 1] != '"') break;
        std::string value;
        size_t i = eq + 2;
        for (; i < labels.size() && labels[i] != '"'; ++i) {
          if (labels[i] == '\\' && i + 1 < labels.size()) ++i;
          value.push_back(labels[i]);
        }
        sample["labels"][labels.substr(pos, eq - pos)] = value;
        pos = i + 1;
        if (pos < labels.size() && labels[pos] == ',') ++pos;
      }
    } else {
      sample["name"] = line.substr(0, space);
    }
    std::string value = line.substr(space + 1);
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    sample["value"] = (end != nullptr && *end == '\0') ? json(v) : json(value);
    samples.push_back(std::move(sample));
  }
  return samples;
}

void Register(CLI::App& root, GlobalOptions& global) {
  CLI::App* server = AddGroup(root, "server", "The manager's service endpoints: health, metrics, API document");

  CLI::App* status = server->add_subcommand("status", "Liveness (/healthz) and readiness (/readyz); exits 4 when not ready");
  status->callback([&global] {
    Session s = Connect(global, /*need_token=*/false);
    const std::string health = Trim(Check(s.api->GetRaw("/healthz")));  // unreachable: exit 3
    auto ready = s.api->GetRaw("/readyz");
    json out{{"healthz", health},
             {"ready", ready.ok()},
             {"readyz", ready.ok() ? Trim(*ready) : ready.status().message()}};
    if (global.json()) {
      PrintJson(out);
    } else {
      std::cout << "healthz  " << client::Sanitize(health) << "\nreadyz   "
                << client::Sanitize(out["readyz"].get<std::string>()) << "\n";
    }
    if (!ready.ok()) throw CliExit(kExitCheckFailed);
  });

  CLI::App* metrics = server->add_subcommand(
      "metrics", "Prometheus metrics (/metrics; needs a login unless the server is on loopback)");
  metrics->callback([&global] {
    Session s = Connect(global, /*need_token=*/false);
    const std::string text = Check(s.api->GetRaw("/metrics"));
    if (global.json()) {
      PrintJson(json{{"samples", ParseMetrics(text)}});
    } else {
      std::cout << text;
    }
  });

  CLI::App* openapi = server->add_subcommand(
      "openapi", "The OpenAPI 3 document the server implements (table: one line per operation)");
  openapi->callback([&global] {
    Session s = Connect(global, /*need_token=*/false);
    json doc = Check(s.api->Get("/api/v1/openapi.json"));
    if (global.json()) {
      PrintJson(doc);
      return;
    }
    json ops = json::array();
    if (doc.contains("paths") && doc["paths"].is_object()) {
      for (const auto& [path, item] : doc["paths"].items()) {
        if (!item.is_object()) continue;
        for (const auto& [method, op] : item.items()) {
          if (!op.is_object() || method == "parameters") continue;
          std::string m = method;
          for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          ops.push_back({{"method", m}, {"path", path}, {"summary", op.value("summary", "")}});
        }
      }
    }
    std::cout << client::RenderTable(ops, {{"METHOD", "/method"}, {"PATH", "/path"}, {"SUMMARY", "/summary"}});
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(server, vouch::cli::Register);
