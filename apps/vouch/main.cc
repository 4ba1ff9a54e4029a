// vouch: the command-line client. Each command group lives in cmd_<group>.cc.
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "command_registry.h"

namespace vouch::cli {
namespace {
struct Group {
  RegisterFn fn;
  std::vector<std::string> commands;
};

std::map<std::string, Group>& Groups() {
  static std::map<std::string, Group> groups;
  return groups;
}

// Root options that take a value in the next argument (docs/cli.md, "Global options").
bool TakesValue(std::string_view arg) {
  return arg == "--server" || arg == "--ca-file" || arg == "-o" || arg == "--output" || arg == "--config";
}

// The first argument that is not an option or an option's value: the top-level command.
std::string_view CommandWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") return {};
    if (a.empty() || a[0] != '-') return a;
    if (TakesValue(a)) ++i;
  }
  return {};
}

// The one group that adds `word`, or nullptr (then every group is added).
const Group* GroupFor(std::string_view word) {
  if (word.empty() || word == "completion") return nullptr;  // completion walks the whole tree
  const Group* found = nullptr;
  for (auto& [name, g] : Groups())
    for (auto& c : g.commands)
      if (c == word) {
        if (found != nullptr) return nullptr;
        found = &g;
      }
  return found;
}
}  // namespace

bool RegisterCommandGroup(const char* name, RegisterFn fn, const char* commands) {
  Group g{fn, {}};
  std::istringstream words(commands != nullptr ? commands : name);
  for (std::string w; words >> w;) g.commands.push_back(w);
  Groups()[name] = std::move(g);
  return true;
}

}  // namespace vouch::cli

int main(int argc, char** argv) {
  using vouch::cli::CliError;
  using vouch::cli::CliExit;
  CLI::App app{"vouch: command-line client for the vouch confidential-computing manager"};
  app.require_subcommand(1);
  // Global options (--server, -o json, ...) are also accepted after a subcommand; subcommands
  // inherit this when they are added below.
  app.fallthrough();
  app.set_version_flag("--version", "vouch 0.1.0");
  vouch::cli::GlobalOptions global;
  app.add_option("--server", global.server,
                 "Manager URL, e.g. https://127.0.0.1:8443; repeatable or comma-separated (HA cluster, fail-over)")
      ->envname("VOUCH_SERVER")
      ->multi_option_policy(CLI::MultiOptionPolicy::Join)
      ->delimiter(',');
  app.add_option("--ca-file", global.ca_file, "CA bundle that signs the manager's TLS certificate")
      ->envname("VOUCH_CA_FILE");
  app.add_option("-o,--output", global.output, "Output format")->check(CLI::IsMember({"table", "json"}));
  app.add_option("--config", global.config, "Context file (default $VOUCH_CONFIG or ~/.config/vouch/config.json)")
      ->envname("VOUCH_CONFIG");
  if (const auto* only = vouch::cli::GroupFor(vouch::cli::CommandWord(argc, argv))) {
    only->fn(app, global);
  } else {
    for (auto& [name, group] : vouch::cli::Groups()) group.fn(app, global);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; usage errors are one line and exit 2 (docs/cli.md).
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::fprintf(stderr, "vouch: %s (see --help)\n", e.what());
    return 2;
  } catch (const CliExit& e) {
    return e.code();
  } catch (const CliError& e) {
    std::fprintf(stderr, "vouch: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vouch: %s\n", e.what());
    return 1;
  }
  return 0;
}
