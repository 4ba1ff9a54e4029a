// vouch sim tsm (docs/tsm.md): the emulated Linux configfs-tsm report interface over FUSE
// (libs/tsm/fuse_tsm.h), answering with a tdx or sev-snp sim folder's evidence
// (attest/sim_tsm.h). libfuse3 is loaded only when this command mounts (libs/tsm/README.md).
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "attest/sim_tsm.h"
#include "attest/sim_vendor.h"
#include "cmd_sim_parts.h"
#include "tsm/fuse_tsm.h"

namespace vouch::cli {
namespace {

struct TsmArgs {
  std::string sim_dir;
  std::string mount;
  uint32_t privlevel_floor = 0;
  bool no_provider = false;
  int interfere = 0;
};

void RunTsm(const TsmArgs& a, GlobalOptions& global) {
  auto loaded = attest::SimVendor::Load(a.sim_dir);
  if (!loaded.ok()) throw CliError("sim tsm: " + loaded.status().message(), kExitUsage);
  std::shared_ptr<attest::SimVendor> vendor(std::move(*loaded));
  const std::string provider(attest::SimTsmProvider(*vendor));
  if (provider.empty()) {
    throw CliError("sim tsm: " + a.sim_dir +
                       " is an sgx sim folder; configfs-tsm needs a tdx or sev-snp one "
                       "(vouch sim init --platform tdx|sev-snp DIR)",
                   kExitUsage);
  }
  if (a.privlevel_floor > tsm::kPrivlevelMax)
    throw CliError("sim tsm: --privlevel-floor must be 0..3", kExitUsage);
  std::error_code ec;
  const std::string mount = std::filesystem::weakly_canonical(a.mount, ec).string();
  tsm::FuseTsmOptions o;
  o.mountpoint = ec ? a.mount : mount;
  o.privlevel_floor = provider == tsm::kProviderSev ? a.privlevel_floor : 0;
  o.provider = a.no_provider ? std::string() : provider;
  o.interfere = a.interfere;
  o.evidence = [vendor](std::string_view, std::span<const uint8_t, tsm::kInblobSize> inblob,
                        uint32_t privlevel) -> Result<tsm::Blobs> {
    VOUCH_ASSIGN_OR_RETURN(attest::TsmBlobs b, attest::SimTsmReport(*vendor, inblob, privlevel));
    return tsm::Blobs{std::move(b.outblob), std::move(b.auxblob)};
  };

  // The file system thread inherits this mask; the main thread takes the signal with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto fs = tsm::FuseTsm::Mount(std::move(o));
  if (!fs.ok()) throw CliError("sim tsm: " + fs.status().message(), kExitError);
  const std::string& mounted = (*fs)->mountpoint();
  const std::string tsm_dir = mounted + "/report";
  if (global.json()) {
    std::cout << nlohmann::json{{"mount", mounted},
                                {"tsm_dir", tsm_dir},
                                {"provider", a.no_provider ? "" : provider}}
                     .dump()
              << std::endl;
  } else {
    std::cout << "vouch sim tsm: INSECURE emulated configfs-tsm ("
              << (a.no_provider ? "no provider" : provider) << ") mounted on " << mounted
              << "; vouch-agent --tsm-dir " << tsm_dir << std::endl;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  (*fs)->Unmount();
}

}  // namespace

void RegisterSimTsm(CLI::App* sim_group, GlobalOptions& global) {
  auto args = std::make_shared<TsmArgs>();
  auto* c = sim_group->add_subcommand("tsm",
                                      "Mount an emulated Linux configfs-tsm (FUSE) answering with "
                                      "a tdx or sev-snp sim folder's evidence "
                                      "(runs until SIGINT/SIGTERM, then unmounts)");
  c->add_option("--sim", args->sim_dir,
                "A tdx or sev-snp sim folder (vouch sim init --platform tdx|sev-snp DIR)")
      ->required()
      ->check(CLI::ExistingDirectory);
  c->add_option("--mount", args->mount,
                "An existing empty directory to mount on; reports are made under MOUNT/report")
      ->required()
      ->check(CLI::ExistingDirectory);
  c->add_option("--privlevel-floor", args->privlevel_floor,
                "sev_guest: the privlevel_floor shown (the VMPCK id)")
      ->capture_default_str();
  c->add_flag("--no-provider", args->no_provider,
              "Register no provider (mkdir fails with ENXIO), for tests");
  c->add_option("--interfere", args->interfere,
                "For tests: the first N inblob writes are each followed at once by another "
                "writer's (generation +2)")
      ->check(CLI::Range(0, 1000000));
  c->callback([args, &global] { RunTsm(*args, global); });
}

}  // namespace vouch::cli
