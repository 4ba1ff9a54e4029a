// vouch sim pcs (docs/sim.md).
#include "cmd_sim_parts.h"

namespace vouch::cli {

void RegisterSimPcs(CLI::App* /*sim_group*/, GlobalOptions& /*global*/) {}

}  // namespace vouch::cli
