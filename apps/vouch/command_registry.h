#pragma once

// The `vouch` CLI is built from command groups, one file each (cmd_<group>.cc), that register
// themselves here at static-initialisation time, so adding a group never edits main.cc.
//
// A group's Register function adds its subcommands to the root app. A command's callback
// reports failure by throwing CliError (one line on stderr, non-zero exit); main() catches it.

#include <CLI/CLI.hpp>

#include <stdexcept>
#include <string>

namespace vouch::cli {

struct GlobalOptions {
  std::string server;      // --server URL (else the saved context)
  std::string ca_file;     // --ca-file FILE (else the saved context)
  std::string output = "table";  // -o json|table
  std::string config;      // --config FILE (else $VOUCH_CONFIG, else ~/.config/vouch/config.json)
  bool json() const { return output == "json"; }
};

// Thrown by command callbacks: message printed as "vouch: <message>", process exits `exit_code`.
class CliError : public std::runtime_error {
 public:
  explicit CliError(const std::string& message, int exit_code = 1)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// Thrown to end the process with a specific exit code after output was already printed
// (e.g. `vouch evidence verify` exits 1 or 2 with its JSON on stdout).
class CliExit : public std::exception {
 public:
  explicit CliExit(int code) : code_(code) {}
  int code() const { return code_; }
  const char* what() const noexcept override { return "exit"; }

 private:
  int code_;
};

using RegisterFn = void (*)(CLI::App& root, GlobalOptions& global);

// Records a group; returns true so it can initialise a static. `commands` lists the top-level
// commands the group adds, space-separated (default: the group's own name). main() builds only
// the group whose command the command line names (start-up time: docs/design.md, "CLI start-up"),
// and every group, in name order, when it names none (--help, completion, usage errors).
bool RegisterCommandGroup(const char* name, RegisterFn fn, const char* commands = nullptr);

}  // namespace vouch::cli

#define VOUCH_CLI_COMMAND_GROUP(name, fn) \
  static const bool vouch_cli_group_##name [[maybe_unused]] = ::vouch::cli::RegisterCommandGroup(#name, fn)
// A group whose top-level commands are not named after it, e.g. auth: "login logout whoami".
#define VOUCH_CLI_COMMAND_GROUP_WITH(name, fn, commands) \
  static const bool vouch_cli_group_##name [[maybe_unused]] =  \
      ::vouch::cli::RegisterCommandGroup(#name, fn, commands)
