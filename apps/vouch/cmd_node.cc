// vouch node list | get | deactivate
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kNodeColumns = {
    {"ID", "/id"},           {"ZONE", "/zone"},           {"PLATFORM", "/platform"},
    {"TCB_STATUS", "/tcb_status"}, {"STATUS", "/status"}, {"LAST_SEEN", "/last_seen"},
    {"CERT_EXPIRES", "/cert_not_after"},
};

struct NodeArgs {
  std::string id;
  std::string zone;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<NodeArgs>();
  CLI::App* node = AddGroup(root, "node", "Nodes: machines provisioned by vouch-agent");

  CLI::App* list = node->add_subcommand("list", "List nodes");
  list->add_option("--zone", a->zone, "Only nodes of this zone");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, WithQuery(ApiPath({"nodes"}), {{"zone", a->zone}}), a->limit), kNodeColumns);
  });

  CLI::App* get = node->add_subcommand("get", "Show a node");
  get->add_option("id", a->id, "Node id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"nodes", a->id}))));
  });

  CLI::App* deactivate = node->add_subcommand("deactivate", "Deactivate a node; it gets no more certificates (admin)");
  deactivate->add_option("id", a->id, "Node id")->required();
  deactivate->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"nodes", a->id, "deactivate"}))));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(node, vouch::cli::Register);
