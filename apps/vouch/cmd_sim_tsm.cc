// vouch sim tsm (docs/sim.md).
#include "cmd_sim_parts.h"

namespace vouch::cli {

void RegisterSimTsm(CLI::App* /*sim_group*/, GlobalOptions& /*global*/) {}

}  // namespace vouch::cli
