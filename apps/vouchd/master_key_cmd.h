#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "base/result.h"

namespace vouchd {

// Adds `vouchd master-key split|combine|rotate` (docs/custody.md). Each runs from its CLI11
// callback and ends the parse with its exit code (CLI::Success or CLI::RuntimeError).
void RegisterMasterKeyCommands(CLI::App& app);

// For `vouchd init --split-threshold M --split-shares N --shares-out DIR [--custodian-key PEM ...]`
// (main.cc). CheckSplitArgs makes the refusals `master-key split` makes before it writes anything
// (M and N: 2..255, M <= N; one readable EC P-256 custodian key per share, or none) without
// touching any file; SplitMasterKey then runs `master-key split` itself on DATA (the same share
// files, output and `master_key.split` audit entry) and returns its exit code.
vouch::Status CheckSplitArgs(int threshold, int shares, const std::vector<std::string>& custodian_key_files);
int SplitMasterKey(const std::string& data_dir, int threshold, int shares, const std::string& out_dir,
                   const std::vector<std::string>& custodian_key_files);

}  // namespace vouchd
