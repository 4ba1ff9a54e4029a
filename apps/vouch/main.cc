// vouch: the command-line client. Each command group lives in cmd_<group>.cc.
#include <cstdio>
#include <map>
#include <string>

#include "command_registry.h"

namespace vouch::cli {
namespace {
std::map<std::string, RegisterFn>& Groups() {
  static std::map<std::string, RegisterFn> groups;
  return groups;
}
}  // namespace

bool RegisterCommandGroup(const char* name, RegisterFn fn) {
  Groups()[name] = fn;
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
  app.add_option("--server", global.server, "Manager URL, e.g. https://127.0.0.1:8443")->envname("VOUCH_SERVER");
  app.add_option("--ca-file", global.ca_file, "CA bundle that signs the manager's TLS certificate")
      ->envname("VOUCH_CA_FILE");
  app.add_option("-o,--output", global.output, "Output format")->check(CLI::IsMember({"table", "json"}));
  app.add_option("--config", global.config, "Context file (default $VOUCH_CONFIG or ~/.config/vouch/config.json)")
      ->envname("VOUCH_CONFIG");
  for (auto& [name, fn] : vouch::cli::Groups()) fn(app, global);
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
