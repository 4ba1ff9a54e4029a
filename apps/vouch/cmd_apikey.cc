// vouch apikey create | list | delete
#include <iostream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kApiKeyColumns = {
    {"ID", "/id"},       {"NAME", "/name"},           {"USER", "/user"},
    {"ROLE", "/role"},   {"CREATED", "/created_at"},  {"EXPIRES", "/expires_at"},
};

struct ApiKeyArgs {
  std::string name;
  std::string id;
  int expires_in_days = 0;
  CLI::Option* expires_opt = nullptr;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<ApiKeyArgs>();
  CLI::App* apikey = AddGroup(root, "apikey", "API keys for automation (use with $VOUCH_TOKEN)");

  CLI::App* create = apikey->add_subcommand("create", "Create an API key with your role; prints the key alone");
  create->add_option("name", a->name, "Key name")->required();
  a->expires_opt = create->add_option("--expires-in-days", a->expires_in_days, "Lifetime in days (default 90, at most 365; revoked earlier when your password changes or you are disabled)")
                       ->check(CLI::PositiveNumber);
  create->callback([&global, a] {
    json body = {{"name", a->name}};
    if (a->expires_opt->count() > 0) body["expires_in_days"] = a->expires_in_days;
    Session s = Connect(global);
    json created = Check(s.api->Post(ApiPath({"apikeys"}), body));
    if (global.json()) {
      PrintJson(created);
    } else {
      if (!created.value("key", json()).is_string()) throw CliError("the server's answer has no key");
      std::cout << created["key"].get<std::string>() << "\n";
    }
  });

  CLI::App* list = apikey->add_subcommand("list", "List your API keys (admin: everyone's)");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"apikeys"}), a->limit), kApiKeyColumns);
  });

  CLI::App* del = apikey->add_subcommand("delete", "Delete an API key");
  del->add_option("id", a->id, "Key id")->required();
  del->callback([&global, a] {
    Session s = Connect(global);
    Check(s.api->Delete(ApiPath({"apikeys", a->id})));
    PrintDone(global, "Deleted API key " + client::Sanitize(a->id));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(apikey, vouch::cli::Register);
