// vouch app create | list | get | update | delete | add-domain | remove-domain | signing-key rotate
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kAppColumns = {
    {"NAME", "/name"},       {"ZONE", "/zone"},          {"DOMAINS", "/domains"},
    {"PENDING", "/pending_domains"}, {"MRSIGNER", "/mrsigner"}, {"ID", "/id"}, {"CREATED", "/created_at"},
};

struct AppArgs {
  std::string name;
  std::string zone;
  std::vector<std::string> domains;
  std::string domain;
  std::string input_registry, output_registry;
  bool no_input_registry = false, no_output_registry = false;
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

  CLI::App* update = app->add_subcommand("update", "Set an app's default registries for server-side conversion (member)");
  update->add_option("name", a->name, "App name or id")->required();
  update->add_option("--input-registry", a->input_registry, "Registry (name or id) the app's input images come from");
  update->add_option("--output-registry", a->output_registry, "Registry (name or id) the app's converted images go to");
  update->add_flag("--no-input-registry", a->no_input_registry, "Clear the default input registry");
  update->add_flag("--no-output-registry", a->no_output_registry, "Clear the default output registry");
  update->callback([&global, a] {
    json body = json::object();
    if (!a->input_registry.empty() && a->no_input_registry) UsageError("--input-registry and --no-input-registry contradict");
    if (!a->output_registry.empty() && a->no_output_registry) UsageError("--output-registry and --no-output-registry contradict");
    if (!a->input_registry.empty()) body["input_registry"] = a->input_registry;
    if (!a->output_registry.empty()) body["output_registry"] = a->output_registry;
    if (a->no_input_registry) body["input_registry"] = nullptr;
    if (a->no_output_registry) body["output_registry"] = nullptr;
    if (body.empty()) UsageError("app update: nothing to change");
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Patch(ApiPath({"apps", a->name}), body)));
  });

  CLI::App* signing_key = app->add_subcommand("signing-key", "The app's image signing key, kept sealed by vouchd");
  signing_key->require_subcommand(1);
  CLI::App* rotate = signing_key->add_subcommand(
      "rotate", "Make a new signing key; it replaces the current one (new mrsigner) once its task is approved (admin)");
  rotate->add_option("name", a->name, "App name or id")->required();
  rotate->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"apps", a->name, "signing-key", "rotate"}), json::object())));
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
