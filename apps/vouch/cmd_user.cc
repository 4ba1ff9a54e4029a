// vouch user create | list | get | update | delete
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<std::string> kRoles = {"viewer", "member", "approver", "admin"};

const std::vector<client::Column> kUserColumns = {
    {"NAME", "/name"}, {"ROLE", "/role"}, {"DISABLED", "/disabled"}, {"ID", "/id"}, {"CREATED", "/created_at"},
};

struct UserArgs {
  std::string name;
  std::string role;
  std::string password_file;
  std::string disabled;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<UserArgs>();
  CLI::App* user = AddGroup(root, "user", "Users and their roles (admin)");

  CLI::App* create = user->add_subcommand("create", "Create a user");
  create->add_option("name", a->name, "User name")->required();
  create->add_option("--role", a->role, "viewer, member, approver or admin")->required()->check(CLI::IsMember(kRoles));
  create->add_option("--password-file", a->password_file, "File whose first line is the password (- for stdin)")
      ->required();
  create->callback([&global, a] {
    const std::string password = ReadSecretFile(a->password_file, "password file");
    Session s = Connect(global);
    PrintObject(global,
                Check(s.api->Post(ApiPath({"users"}), {{"name", a->name}, {"role", a->role}, {"password", password}})));
  });

  CLI::App* list = user->add_subcommand("list", "List users");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"users"}), a->limit), kUserColumns);
  });

  CLI::App* get = user->add_subcommand("get", "Show a user");
  get->add_option("name", a->name, "User name or id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"users", a->name}))));
  });

  CLI::App* update = user->add_subcommand("update", "Change a user's role, password or disabled flag");
  update->add_option("name", a->name, "User name or id")->required();
  update->add_option("--role", a->role, "New role")->check(CLI::IsMember(kRoles));
  update->add_option("--password-file", a->password_file, "File whose first line is the new password (- for stdin)");
  update->add_option("--disabled", a->disabled, "Disable or re-enable the user")->check(CLI::IsMember({"true", "false"}));
  update->callback([&global, a] {
    json body = json::object();
    if (!a->role.empty()) body["role"] = a->role;
    if (!a->password_file.empty()) body["password"] = ReadSecretFile(a->password_file, "password file");
    if (!a->disabled.empty()) body["disabled"] = a->disabled == "true";
    if (body.empty()) UsageError("user update: give --role, --password-file or --disabled");
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Patch(ApiPath({"users", a->name}), body)));
  });

  CLI::App* del = user->add_subcommand("delete", "Delete a user");
  del->add_option("name", a->name, "User name or id")->required();
  del->callback([&global, a] {
    Session s = Connect(global);
    Check(s.api->Delete(ApiPath({"users", a->name})));
    PrintDone(global, "Deleted user " + client::Sanitize(a->name));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(user, vouch::cli::Register);
