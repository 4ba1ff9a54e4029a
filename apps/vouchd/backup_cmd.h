#pragma once

// `vouchd backup`, `vouchd backup --verify` and `vouchd restore` (docs/operations.md).

#include <CLI/CLI.hpp>

namespace vouchd {

// Adds the subcommands to `app`; each runs from its CLI11 callback and exits the process with
// its status (0, or 1 after a one-line "vouchd: ..." on stderr).
void RegisterBackupCommands(CLI::App& app);

}  // namespace vouchd
