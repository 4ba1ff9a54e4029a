#pragma once

// Helpers shared by the node-agent files of the manager (manager_nodes.cc, manager_issuance.cc,
// manager_heartbeats.cc). Not part of the public API.

#include <string>
#include <string_view>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "attest/verdict.h"
#include "policy/policy.h"

namespace vouch::api::internal {

// The policy library's view of a zone's rules.
Result<policy::ZonePolicy> ToPolicy(const ZonePolicy& z);

// The verdict a node's stored record stands for, so that a zone's current rules can be applied
// again at every certificate request.
attest::Verdict StoredNodeVerdict(const Row& n);

// A refusal: PermissionDenied with a stable reason code.
Status Refuse(std::string_view code, std::string message);

}  // namespace vouch::api::internal
