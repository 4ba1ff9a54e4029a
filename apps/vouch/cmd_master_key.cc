// vouch master-key rotate: online master-key rotation in the serving vouchd (admin; docs/custody.md
// "Online rotation"). With vouchd stopped, `vouchd master-key rotate --data-dir DIR` does it offline.
#include "cmd_common.h"

namespace vouch::cli {
namespace {

void Register(CLI::App& root, GlobalOptions& global) {
  CLI::App* group = AddGroup(root, "master-key", "The cluster master key of the server (admin)");

  CLI::App* rotate = group->add_subcommand(
      "rotate", "Re-seal every sealed secret under a new master key, in the serving vouchd (one transaction)");
  rotate->callback([&global] {
    Session s = Connect(global);
    json answer = Check(s.api->Post(ApiPath({"master-key", "rotate"}), json::object()));
    if (global.json()) {
      PrintJson(answer);
      return;
    }
    int64_t total = 0;
    std::string columns;
    const json resealed = answer.contains("resealed") && answer["resealed"].is_object() ? answer["resealed"] : json::object();
    for (const auto& [column, n] : resealed.items()) {
      const int64_t count = n.is_number_integer() ? n.get<int64_t>() : 0;
      total += count;
      if (count == 0) continue;
      columns += (columns.empty() ? "" : ", ") + column + " " + std::to_string(count);
    }
    std::printf("master key rotated: key id %s, %lld sealed value(s) re-sealed (%s) at %s\n",
                answer.value("key_id", std::string()).c_str(), static_cast<long long>(total), columns.c_str(),
                answer.value("rotated_at", std::string()).c_str());
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP_WITH(master_key, vouch::cli::Register, "master-key");
