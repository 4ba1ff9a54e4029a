// vouch app create | list | get | delete | add-domain | remove-domain
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kAppColumns = {
    {"NAME", "/name"},       {"ZONE", "/zone"},          {"DOMAINS", "/domains"},
    {"PENDING", "/pending_domains"}, {"ID", "/id"}, {"CREATED", "/created_at"},
};

struct AppArgs {
  std::string name;
  std::string zone;
  std::vector<std::string> domains;
  std::string domain;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<AppArgs>();
  CLI::App* app = AddGroup(root, "app", "Apps: a workload identity with its allowed DNS names");

  CLI::App* create = app->add_subcommand("create", "Create an app in a zone (member)");
  create->add_option("name", a->name, "App name")->required();
  create->add_option("--zone", a->zone, "Zone name or id")->required();
  create->add_option("--domain", a->domains, "Allowed DNS name (repeatable)")->required();
  create->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global,
                Check(s.api->Post(ApiPath({"apps"}), {{"name", a->name}, {"zone", a->zone}, {"domains", a->domains}})));
  });

  CLI::App* list = app->add_subcommand("list", "List apps");
  list->add_option("--zone", a->zone, "Only apps of this zone");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, WithQuery(ApiPath({"apps"}), {{"zone", a->zone}}), a->limit), kAppColumns);
  });

  CLI::App* get = app->add_subcommand("get", "Show an app");
  get->add_option("name", a->name, "App name or id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"apps", a->name}))));
  });

  CLI::App* del = app->add_subcommand("delete", "Delete an app; revokes its builds and certificates (admin)");
  del->add_option("name", a->name, "App name or id")->required();
  del->callback([&global, a] {
    Session s = Connect(global);
    Check(s.api->Delete(ApiPath({"apps", a->name})));
    PrintDone(global, "Deleted app " + client::Sanitize(a->name));
  });

  CLI::App* add = app->add_subcommand("add-domain", "Request an extra DNS name; raises an approval task (member)");
  add->add_option("name", a->name, "App name or id")->required();
  add->add_option("domain", a->domain, "DNS name")->required();
  add->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"apps", a->name, "domains"}), {{"domain", a->domain}})));
  });

  CLI::App* remove = app->add_subcommand("remove-domain", "Remove a DNS name from an app (member)");
  remove->add_option("name", a->name, "App name or id")->required();
  remove->add_option("domain", a->domain, "DNS name")->required();
  remove->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Delete(ApiPath({"apps", a->name, "domains", a->domain}))));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(app, vouch::cli::Register);
