#pragma once

// Helpers shared by the API command groups (cmd_<group>.cc): connecting with the saved context,
// turning a Status into a CliError with the documented exit code, building /api/v1 paths, and
// printing server JSON as a table or as JSON. Everything here throws CliError on failure; it runs
// only inside command callbacks, which main() wraps.

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/status.h"
#include "client/api_client.h"
#include "client/context.h"
#include "client/table.h"
#include "command_registry.h"

namespace vouch::cli {

using json = nlohmann::json;

// Exit codes (docs/cli.md).
inline constexpr int kExitError = 1;        // the server refused the request, or a local file failed
inline constexpr int kExitUsage = 2;        // bad flags or arguments, no server or context configured
inline constexpr int kExitUnreachable = 3;  // no server answered (connection, TLS, timeout)
inline constexpr int kExitCheckFailed = 4;  // a check ran and failed (audit verify: chain broken)

// Throws CliError for a non-ok status; `context` prefixes the message.
void Check(const Status& status, std::string_view context = {});
template <typename T>
T Check(Result<T> result, std::string_view context = {}) {
  if (!result.ok()) Check(result.status(), context);
  return std::move(result).value();
}
[[noreturn]] void UsageError(const std::string& message);

// "https://a:8443,https://b:8443/" -> {"https://a:8443", "https://b:8443"}.
std::vector<std::string> SplitUrls(const std::string& servers);

// A connection to the manager for one command.
struct Session {
  std::unique_ptr<client::ApiClient> api;
  client::Context context;     // as loaded (empty when there is none)
  std::string context_path;
  bool has_context = false;
};

// Server URLs from --server (comma-separated for several managers), else the context; CA file
// likewise; token from $VOUCH_TOKEN, else the context (only when talking to the context's server).
// With `need_token`, a missing token is a usage error telling the user to log in.
Session Connect(const GlobalOptions& global, bool need_token = true);

// "/api/v1/zones/<percent-encoded id>/ca" from {"zones", id, "ca"}.
std::string ApiPath(std::initializer_list<std::string_view> segments);
// Appends "?k=v&..." for the non-empty values, percent-encoded.
std::string WithQuery(std::string path, std::initializer_list<std::pair<std::string_view, std::string>> query);

// Output. JSON is printed with sorted keys and two-space indentation.
void PrintJson(const json& value);
// A list: `-o json` prints {"items": [...], "next_cursor": null}; else a table.
void PrintList(const GlobalOptions& global, const json& items, const std::vector<client::Column>& columns);
// One object: `-o json` prints it as the server sent it; else aligned "key  value" lines.
// Keys listed in `hide` are left out of the table view (e.g. a certificate's PEM).
void PrintObject(const GlobalOptions& global, const json& object, std::initializer_list<std::string_view> hide = {});
// Prints `message` on stdout in table mode (a confirmation of a mutation without a body).
void PrintDone(const GlobalOptions& global, const std::string& message);

// Fetches every page of a list (`limit` > 0 caps the number of items).
json FetchList(Session& session, const std::string& path, size_t limit);

// Files. ReadSecretFile returns the first line without its line ending ("-" reads stdin) and
// refuses an empty secret. WriteFileOrDie replaces `path` atomically with `mode`.
std::string ReadSecretFile(const std::string& path, std::string_view what);
std::string ReadFileOrDie(const std::string& path, std::string_view what);
void WriteFileOrDie(const std::string& path, std::string_view data, unsigned mode);

// Adds a subcommand group that needs one of its subcommands.
CLI::App* AddGroup(CLI::App& root, const std::string& name, const std::string& description);
// Adds `--limit N` (0 = all) to a list command.
void AddLimitOption(CLI::App* cmd, size_t& limit);

// Common cell formatters.
std::string ShortHex(const json& v);   // first 16 hex digits and "…"
std::string ApprovalsCell(const json& item);  // "given/required"

}  // namespace vouch::cli
