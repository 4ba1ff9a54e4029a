#pragma once

// Helpers shared by the node-agent files of the manager (manager_nodes.cc, manager_issuance.cc,
// manager_heartbeats.cc). Not part of the public API.

#include <string>
#include <string_view>
#include <vector>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "attest/verdict.h"
#include "policy/policy.h"

namespace vouch::api::internal {

// The verdict a node's stored record stands for, so that a zone's current rules can be applied
// again at every certificate request.
attest::Verdict StoredNodeVerdict(const Row& n);

// A refusal: PermissionDenied with a stable reason code.
Status Refuse(std::string_view code, std::string message);

// --- node identities (manager_node_identities.cc)
// The shipped sim agent's identity as a rule (JSON, policy::IdentityRuleJson).
json ShippedSimAgentRule();
// The shipped sim agent's TDX (MRTD) and SEV-SNP (MEASUREMENT) identity rules, seeded with it.
std::vector<json> ShippedSimAgentCvmRules();
// The identities of the real vouch-agent this vouchd ships with (CMake VOUCH_AGENT_IDENTITIES;
// empty by default: docs/policy.md).
Result<std::vector<json>> ShippedAgentRules();
// A new zone's identities: the shipped agent's, and the sim agent's when the zone allows sim.
Status SeedNodeIdentities(Transaction& tx, const std::string& zone_id, bool allow_sim, int64_t now);
// The zone's active identities.
Result<std::vector<policy::MeasurementRule>> ActiveNodeIdentities(Transaction& tx, const std::string& zone_id);
// The decision of a node_identity approval task: activates (or denies) its pending identity.
Status DecideNodeIdentityTask(Transaction& tx, const Row& task, bool approved);

}  // namespace vouch::api::internal
