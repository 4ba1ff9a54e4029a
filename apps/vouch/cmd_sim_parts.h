#pragma once
// Subcommands of `vouch sim` that live in their own files (cmd_sim.cc registers the group).
#include <CLI/CLI.hpp>

#include "cmd_common.h"

namespace vouch::cli {
// `vouch sim tsm`: the emulated Linux configfs-tsm report interface (cmd_sim_tsm.cc).
void RegisterSimTsm(CLI::App* sim_group, GlobalOptions& global);
// `vouch sim pcs`: an Intel PCS- and AMD KDS-compatible collateral server (cmd_sim_pcs.cc).
void RegisterSimPcs(CLI::App* sim_group, GlobalOptions& global);
}  // namespace vouch::cli
