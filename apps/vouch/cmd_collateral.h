#pragma once
// Shared with cmd_evidence.cc: `vouch evidence verify --server URL` (the verdict from vouchd's
// POST /api/v1/evidence/verify; cmd_collateral.cc).
#include <string>

#include "command_registry.h"

namespace vouch::cli {

// True when `--server` itself is on the command line (not only $VOUCH_SERVER).
bool ServerFlagOnCommandLine();

// Sends the evidence file to vouchd and prints its verdict like the local verification (-o json:
// the server's JSON). Exits like `vouch evidence verify`: 0 genuine with an acceptable TCB, 1
// genuine but outdated, 2 not genuine. `local_flags` is true when a flag of the local
// verification (--collateral, --trust-root, --allow-sim) was given: a usage error with --server.
void VerifyEvidenceOnServer(const std::string& evidence_file, const std::string& at, bool local_flags,
                            const GlobalOptions& global);

}  // namespace vouch::cli
