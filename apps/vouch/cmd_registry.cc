// vouch registry create | list | get | update | delete: registries vouchd keeps credentials for
// (server-side conversion; docs/api.md "Registries"). The password or token is read from a file
// or stdin ("-"), never from the command line, and is never shown again.
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kRegistryColumns = {
    {"NAME", "/name"},           {"URL", "/url"},          {"USER", "/username"}, {"SECRET", "/secret_kind"},
    {"CA", "/has_ca"},           {"INSECURE", "/insecure"}, {"ID", "/id"},         {"UPDATED", "/updated_at"},
};

struct RegistryArgs {
  std::string name, url, ca_file, user, password_file, token_file, rename;
  bool insecure = false, secure = false, no_ca = false, no_secret = false;
  size_t limit = 0;
};

// The fields the flags give (create: all of them; update: those given).
json Body(const RegistryArgs& a) {
  json body = json::object();
  if (!a.url.empty()) body["url"] = a.url;
  if (!a.ca_file.empty()) body["ca_pem"] = ReadFileOrDie(a.ca_file, "registry CA bundle");
  if (!a.user.empty()) body["username"] = a.user;
  if (!a.password_file.empty() && !a.token_file.empty()) UsageError("give --password-file or --token-file, not both");
  if (!a.password_file.empty()) body["password"] = ReadSecretFile(a.password_file, "registry password");
  if (!a.token_file.empty()) body["token"] = ReadSecretFile(a.token_file, "registry token");
  if (a.insecure) body["insecure"] = true;
  return body;
}

void AddCommonOptions(CLI::App* c, RegistryArgs& a) {
  c->add_option("--ca-file", a.ca_file, "PEM certificates trusted for the registry's HTTPS (not the manager's CA here)");
  c->add_option("--user", a.user, "Registry user name");
  c->add_option("--password-file", a.password_file, "File whose first line is the password (- for stdin)");
  c->add_option("--token-file", a.token_file, "File whose first line is an access token (- for stdin)");
  c->add_flag("--insecure", a.insecure, "Allow a plain http:// URL (credentials travel unencrypted)");
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<RegistryArgs>();
  CLI::App* reg = AddGroup(root, "registry", "Registries whose credentials vouchd keeps for server-side conversion");

  CLI::App* create = reg->add_subcommand("create", "Store a registry and its credentials (admin)");
  create->add_option("name", a->name, "Registry name")->required();
  create->add_option("--url", a->url, "https://host[:port][/path] (http:// only with --insecure)")->required();
  AddCommonOptions(create, *a);
  create->callback([&global, a] {
    if (!a->password_file.empty() && a->user.empty()) UsageError("--password-file needs --user");
    json body = Body(*a);
    body["name"] = a->name;
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"registries"}), body)));
  });

  CLI::App* list = reg->add_subcommand("list", "List registries (member, approver, admin)");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"registries"}), a->limit), kRegistryColumns);
  });

  CLI::App* get = reg->add_subcommand("get", "Show a registry (never its secret)");
  get->add_option("name", a->name, "Registry name or id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"registries", a->name}))));
  });

  CLI::App* update = reg->add_subcommand("update", "Change a registry (admin); unnamed fields stay");
  update->add_option("name", a->name, "Registry name or id")->required();
  update->add_option("--url", a->url, "New URL");
  update->add_option("--rename", a->rename, "New name");
  AddCommonOptions(update, *a);
  update->add_flag("--secure", a->secure, "Turn --insecure off (the URL must then be https://)");
  update->add_flag("--no-ca", a->no_ca, "Remove the stored CA bundle");
  update->add_flag("--no-secret", a->no_secret, "Remove the stored password or token (anonymous access)");
  update->callback([&global, a] {
    json body = Body(*a);
    if (!a->rename.empty()) body["name"] = a->rename;
    if (a->insecure && a->secure) UsageError("--insecure and --secure contradict each other");
    if (a->secure) body["insecure"] = false;
    if (a->no_ca) {
      if (!a->ca_file.empty()) UsageError("--no-ca and --ca-file contradict each other");
      body["ca_pem"] = nullptr;
    }
    if (a->no_secret) {
      if (body.contains("password") || body.contains("token")) UsageError("--no-secret and a secret file contradict each other");
      body["password"] = nullptr;
    }
    if (body.empty()) UsageError("registry update: nothing to change");
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Patch(ApiPath({"registries", a->name}), body)));
  });

  CLI::App* del = reg->add_subcommand("delete", "Delete a registry (admin); refused while an app uses it");
  del->add_option("name", a->name, "Registry name or id")->required();
  del->callback([&global, a] {
    Session s = Connect(global);
    Check(s.api->Delete(ApiPath({"registries", a->name})));
    PrintDone(global, "Deleted registry " + client::Sanitize(a->name));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(registry, vouch::cli::Register);
