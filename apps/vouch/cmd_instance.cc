// vouch instance list | counts
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kInstanceColumns = {
    {"ID", "/id"},         {"APP", "/app"},         {"BUILD", "/build_id"},
    {"NODE", "/node"},     {"STATUS", "/status"},   {"LAST_HEARTBEAT", "/last_heartbeat"},
    {"SERIAL", "/serial"},
};

struct InstanceArgs {
  std::string app;
  std::string node;
  std::string status;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<InstanceArgs>();
  CLI::App* instance = AddGroup(root, "instance", "App instances: attested workloads and their heartbeats");
  CLI::App* list = instance->add_subcommand("list", "List app instances");
  list->add_option("--app", a->app, "Only instances of this app");
  list->add_option("--node", a->node, "Only instances on this node");
  list->add_option("--status", a->status, "Only instances with this status")
      ->check(CLI::IsMember({"running", "stopped", "unresponsive"}));
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    const std::string path =
        WithQuery(ApiPath({"instances"}), {{"app", a->app}, {"node", a->node}, {"status", a->status}});
    PrintList(global, FetchList(s, path, a->limit), kInstanceColumns);
  });

  CLI::App* counts = instance->add_subcommand("counts", "Count instances by status (the dashboard's figures)");
  counts->callback([&global] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"instances", "counts"}))));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(instance, vouch::cli::Register);
