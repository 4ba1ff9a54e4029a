// vouch audit list | verify
#include <iostream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kAuditColumns = {
    {"SEQ", "/seq"},       {"AT", "/at"},           {"ACTOR", "/actor"},
    {"ACTION", "/action"}, {"TARGET", "/target"},   {"OUTCOME", "/outcome"},
};

struct AuditArgs {
  std::string actor;
  std::string action;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<AuditArgs>();
  CLI::App* audit = AddGroup(root, "audit", "The hash-chained audit log");

  CLI::App* list = audit->add_subcommand("list", "List audit entries, newest first");
  list->add_option("--actor", a->actor, "Only entries by this actor");
  list->add_option("--action", a->action, "Only entries of this action");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global,
              FetchList(s, WithQuery(ApiPath({"audit"}), {{"actor", a->actor}, {"action", a->action}}), a->limit),
              kAuditColumns);
  });

  CLI::App* verify = audit->add_subcommand(
      "verify", "Check the audit log's hash chain; exits 4 when it is broken");
  verify->callback([&global] {
    Session s = Connect(global);
    json result = Check(s.api->Get(ApiPath({"audit", "verify"})));
    if (!result.is_object() || !result.value("ok", json()).is_boolean()) {
      throw CliError("the server's verification answer has no \"ok\" field");
    }
    const bool ok = result["ok"].get<bool>();
    if (global.json()) {
      PrintJson(result);
    } else if (ok) {
      std::cout << "audit chain ok: " << client::CellText(result.value("entries", json())) << " entries\n";
    }
    if (!ok) {
      std::string message = "audit chain broken";
      if (result.contains("first_bad_seq")) message += " at entry " + client::CellText(result["first_bad_seq"]);
      if (result.value("message", json()).is_string()) message += ": " + client::Sanitize(result["message"].get<std::string>());
      throw CliError(message, kExitCheckFailed);
    }
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(audit, vouch::cli::Register);
