#include "cmd_common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "base/file.h"

namespace vouch::cli {
namespace {

bool IsTransportFailure(const Status& s) {
  const std::string reason = s.reason();
  return reason == "connection_failed" || reason == "tls_error" || reason == "timeout";
}

}  // namespace

std::vector<std::string> SplitUrls(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(start, comma - start);
    while (!part.empty() && part.back() == '/') part.pop_back();
    if (!part.empty()) out.push_back(part);
    start = comma + 1;
  }
  return out;
}

void Check(const Status& status, std::string_view context) {
  if (status.ok()) return;
  // Server text may carry names chosen by other users: no control characters on the terminal.
  std::string message = client::Sanitize(context.empty() ? status.message()
                                                         : std::string(context) + ": " + status.message());
  int code = kExitError;
  if (IsTransportFailure(status)) {
    code = kExitUnreachable;
    message = "cannot reach the manager: " + message;
  } else if (status.code() == StatusCode::kUnauthenticated) {
    message += " (" + client::Sanitize(status.reason()) + "; run `vouch login`)";
  } else {
    message += " (" + client::Sanitize(status.reason()) + ")";
  }
  throw CliError(message, code);
}

void UsageError(const std::string& message) { throw CliError(message, kExitUsage); }

Session Connect(const GlobalOptions& global, bool need_token) {
  Session session;
  session.context_path = Check(client::ResolveContextPath(global.config));
  auto loaded = client::LoadContext(session.context_path);
  if (loaded.ok()) {
    session.context = std::move(loaded).value();
    session.has_context = true;
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    Check(loaded.status());
  }
  std::string servers = global.server.empty() ? session.context.server : global.server;
  if (servers.empty()) UsageError("no manager configured: pass --server URL or run `vouch login` first");
  const std::string ca_file = global.ca_file.empty() ? session.context.ca_file : global.ca_file;

  client::ClientOptions options;
  options.base_urls = SplitUrls(servers);
  options.ca_file = ca_file;
  if (const char* env = std::getenv("VOUCH_TOKEN"); env != nullptr && env[0] != '\0') {
    options.token = env;
  } else if (SplitUrls(servers) == SplitUrls(session.context.server)) {
    // The saved token is only ever sent to the server that issued it.
    options.token = session.context.token;
  }
  if (need_token && options.token.empty()) {
    UsageError("not logged in to " + servers + ": run `vouch login` (or set $VOUCH_TOKEN to an API key)");
  }
  auto api = client::ApiClient::Create(std::move(options));
  if (!api.ok()) UsageError(api.status().message());
  session.api = std::move(api).value();
  return session;
}

std::string ApiPath(std::initializer_list<std::string_view> segments) {
  std::string path = "/api/v1";
  for (auto s : segments) {
    path += '/';
    path += client::PercentEncode(s);
  }
  return path;
}

std::string WithQuery(std::string path, std::initializer_list<std::pair<std::string_view, std::string>> query) {
  char sep = path.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : query) {
    if (v.empty()) continue;
    path += sep;
    path += k;
    path += '=';
    path += client::PercentEncode(v);
    sep = '&';
  }
  return path;
}

void PrintJson(const json& value) {
  std::cout << value.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace) << '\n';
}

void PrintList(const GlobalOptions& global, const json& items, const std::vector<client::Column>& columns) {
  if (global.json()) {
    PrintJson(json{{"items", items}, {"next_cursor", nullptr}});
  } else {
    std::cout << client::RenderTable(items, columns);
  }
}

void PrintObject(const GlobalOptions& global, const json& object, std::initializer_list<std::string_view> hide) {
  if (global.json()) {
    PrintJson(object);
    return;
  }
  json shown = object;
  if (shown.is_object()) {
    for (auto key : hide) shown.erase(std::string(key));
  }
  std::cout << client::RenderObject(shown);
}

void PrintDone(const GlobalOptions& global, const std::string& message) {
  if (!global.json()) std::cout << message << '\n';
}

json FetchList(Session& session, const std::string& path, size_t limit) {
  return Check(session.api->ListAll(path, limit, limit > 0 && limit < 500 ? limit : 500));
}

std::string ReadFileOrDie(const std::string& path, std::string_view what) {
  std::string data;
  if (path == "-") {
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return data;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CliError("cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
  data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return data;
}

std::string ReadSecretFile(const std::string& path, std::string_view what) {
  std::string data = ReadFileOrDie(path, what);
  const size_t eol = data.find_first_of("\r\n");
  if (eol != std::string::npos) data.resize(eol);
  if (data.empty()) throw CliError(std::string(what) + " " + path + " is empty", kExitUsage);
  return data;
}

void WriteFileOrDie(const std::string& path, std::string_view data, unsigned mode) {
  const Status st = WriteFileAtomic(path, data, mode);
  if (!st.ok()) throw CliError(st.message());
}

CLI::App* AddGroup(CLI::App& root, const std::string& name, const std::string& description) {
  CLI::App* group = root.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

void AddLimitOption(CLI::App* cmd, size_t& limit) {
  cmd->add_option("--limit", limit, "Show at most N items (default: all, following next_cursor)");
}

std::string ShortHex(const json& v) {
  if (!v.is_string()) return client::CellText(v);
  const std::string s = v.get<std::string>();
  return s.size() > 16 ? s.substr(0, 16) + "…" : s;
}

std::string ApprovalsCell(const json& item) {
  const size_t given = item.contains("approvals") && item["approvals"].is_array() ? item["approvals"].size() : 0;
  const json required = item.value("approvals_required", json(nullptr));
  return std::to_string(given) + "/" + client::CellText(required);
}

}  // namespace vouch::cli
