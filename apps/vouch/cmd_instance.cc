// vouch instance list
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
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<InstanceArgs>();
  CLI::App* instance = AddGroup(root, "instance", "App instances: attested workloads and their heartbeats");
  CLI::App* list = instance->add_subcommand("list", "List app instances");
  list->add_option("--app", a->app, "Only instances of this app");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, WithQuery(ApiPath({"instances"}), {{"app", a->app}}), a->limit), kInstanceColumns);
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(instance, vouch::cli::Register);
