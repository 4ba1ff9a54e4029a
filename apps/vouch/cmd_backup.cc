// vouch backup create | list: backups taken by the server into its backup folder (admin;
// docs/operations.md, "Backups taken by the server"). A backup of a data directory without a
// running server is `vouchd backup --data-dir DIR --out FILE`.
#include "cmd_common.h"

namespace vouch::cli {
namespace {

std::string VerifiedCell(const json& item) {
  const json& v = item.value("verified", json());
  if (v.is_boolean() && v.get<bool>()) return "yes";
  return "NO (" + item.value("reason", std::string("unknown")) + ")";
}

const std::vector<client::Column> kBackupColumns = {
    {"NAME", "/name"}, {"SIZE", "/size"}, {"CREATED", "/created_at"}, {"SCHEMA", "/schema_version"},
    {"VERIFIED", "", VerifiedCell},
};

void Register(CLI::App& root, GlobalOptions& global) {
  CLI::App* backup = AddGroup(root, "backup", "Backups taken by the server into its backup folder (admin)");

  CLI::App* create = backup->add_subcommand(
      "create", "Take a backup now (as vouchd backup), verified; the oldest beyond the server's --backup-keep go");
  create->callback([&global] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"backups"}), json::object())));
  });

  CLI::App* list = backup->add_subcommand("list", "List the backups in the server's backup folder, newest first");
  list->callback([&global] {
    Session s = Connect(global);
    json answer = Check(s.api->Get(ApiPath({"backups"})));
    if (global.json()) {
      PrintJson(answer);
      return;
    }
    PrintList(global, answer.value("backups", json::array()), kBackupColumns);
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(backup, vouch::cli::Register);
