// vouch task list | get | approve | deny
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kTaskColumns = {
    {"ID", "/id"},         {"KIND", "/kind"},          {"STATUS", "/status"},         {"APP", "/app"},
    {"APPROVALS", "", ApprovalsCell}, {"SUMMARY", "/summary"}, {"CREATED", "/created_at"},
};

struct TaskArgs {
  std::string id;
  std::string status;
  std::string reason;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<TaskArgs>();
  CLI::App* task = AddGroup(root, "task", "Approval tasks raised by new builds and domains");

  CLI::App* list = task->add_subcommand("list", "List tasks");
  list->add_option("--status", a->status, "Only tasks with this status")
      ->check(CLI::IsMember({"pending", "approved", "denied"}));
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, WithQuery(ApiPath({"tasks"}), {{"status", a->status}}), a->limit), kTaskColumns);
  });

  CLI::App* get = task->add_subcommand("get", "Show a task");
  get->add_option("id", a->id, "Task id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"tasks", a->id}))));
  });

  CLI::App* approve = task->add_subcommand("approve", "Approve a task (approver); counts once per user");
  approve->add_option("id", a->id, "Task id")->required();
  approve->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"tasks", a->id, "approve"}))));
  });

  CLI::App* deny = task->add_subcommand("deny", "Deny a task (approver)");
  deny->add_option("id", a->id, "Task id")->required();
  deny->add_option("--reason", a->reason, "Why (shown to the requester)")->required();
  deny->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"tasks", a->id, "deny"}), {{"reason", a->reason}})));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(task, vouch::cli::Register);
