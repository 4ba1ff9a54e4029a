#pragma once

#include <CLI/CLI.hpp>

namespace vouchd {

// Adds `vouchd master-key split|combine|rotate` (docs/custody.md). Each runs from its CLI11
// callback and ends the parse with its exit code (CLI::Success or CLI::RuntimeError).
void RegisterMasterKeyCommands(CLI::App& app);

}  // namespace vouchd
