// vouch login | logout | whoami
#include <filesystem>
#include <iostream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

struct LoginArgs {
  std::string user;
  std::string password_file;
};

void RunLogin(const GlobalOptions& global, const LoginArgs& args) {
  if (global.server.empty()) UsageError("login needs --server URL");
  const std::string context_path = Check(client::ResolveContextPath(global.config));
  std::string ca_file = global.ca_file;
  if (!ca_file.empty()) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(ca_file, ec);
    if (!ec) ca_file = abs.lexically_normal().string();
  }
  const std::string password = ReadSecretFile(args.password_file, "password file");

  client::ClientOptions options;
  options.base_urls = SplitUrls(global.server);
  options.ca_file = ca_file;
  auto api = client::ApiClient::Create(std::move(options));
  if (!api.ok()) UsageError(api.status().message());
  auto answer = (*api)->Post(ApiPath({"sys", "auth"}), {{"username", args.user}, {"password", password}});
  if (!answer.ok() && answer.status().code() == StatusCode::kUnauthenticated) {
    throw CliError("login failed: " + answer.status().message() + " (" + answer.status().reason() + ")");
  }
  json response = Check(std::move(answer), "login failed");
  if (!response.is_object() || !response.value("token", json()).is_string()) {
    throw CliError("login failed: the server's answer has no token");
  }
  client::Context context;
  for (const auto& url : SplitUrls(global.server)) {
    context.server += context.server.empty() ? url : "," + url;
  }
  context.ca_file = ca_file;
  context.token = response["token"].get<std::string>();
  const json user = response.value("user", json::object());
  context.user = user.value("name", args.user);
  context.expires_at = response.value("expires_at", "");
  Check(client::SaveContext(context_path, context), "saving the context");

  // Never print the token.
  json shown = {{"server", context.server},
                {"user", user},
                {"expires_at", context.expires_at},
                {"context", context_path}};
  if (global.json()) {
    PrintJson(shown);
  } else {
    std::cout << "Logged in to " << client::Sanitize(context.server) << " as " << client::Sanitize(context.user)
              << " (" << client::Sanitize(user.value("role", "?")) << "); session expires at "
              << client::Sanitize(context.expires_at) << "\n";
  }
}

void RunLogout(const GlobalOptions& global) {
  const std::string context_path = Check(client::ResolveContextPath(global.config));
  auto loaded = client::LoadContext(context_path);
  if (!loaded.ok()) {
    if (loaded.status().code() == StatusCode::kNotFound) {
      PrintDone(global, "Not logged in");
      return;
    }
    Check(loaded.status());
  }
  client::Context context = std::move(loaded).value();
  Status revoke = Status::Ok();
  if (!context.token.empty() && !context.server.empty()) {
    client::ClientOptions options;
    options.base_urls = SplitUrls(context.server);
    options.ca_file = context.ca_file;
    options.token = context.token;
    auto api = client::ApiClient::Create(std::move(options));
    if (api.ok()) {
      auto r = (*api)->Delete(ApiPath({"sys", "auth"}));
      // An expired or already revoked token is as logged out as it gets.
      if (!r.ok() && r.status().code() != StatusCode::kUnauthenticated) revoke = r.status();
    } else {
      revoke = api.status();
    }
  }
  // Forget the token locally in every case; keep server and CA for the next login.
  context.token.clear();
  context.expires_at.clear();
  Check(client::SaveContext(context_path, context), "saving the context");
  Check(revoke, "token removed locally, but the server could not revoke it");
  PrintDone(global, "Logged out of " + client::Sanitize(context.server));
}

void RunWhoami(const GlobalOptions& global) {
  Session s = Connect(global);
  PrintObject(global, Check(s.api->Get(ApiPath({"sys", "whoami"}))));
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto args = std::make_shared<LoginArgs>();
  CLI::App* login = root.add_subcommand(
      "login", "Log in with a password and save the context (--server URL --ca-file FILE are required here)");
  login->add_option("--user", args->user, "User name")->required();
  login->add_option("--password-file", args->password_file, "File whose first line is the password (- for stdin)")
      ->required();
  login->callback([&global, args] { RunLogin(global, *args); });

  root.add_subcommand("logout", "Revoke the session token and forget it")->callback([&global] { RunLogout(global); });
  root.add_subcommand("whoami", "Show the logged-in user and role")->callback([&global] { RunWhoami(global); });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP_WITH(auth, vouch::cli::Register, "login logout whoami");
