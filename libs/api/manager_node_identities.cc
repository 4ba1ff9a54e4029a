// Node identity policy (docs/policy.md, "Node identity"): per zone, the vouch-agent identities
// whose evidence may make a node. New zones get the identity of the agent that ships with this
// vouchd; widening is an approval task under the zone's quorum; narrowing is immediate.
#include <algorithm>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/manager_nodes_internal.h"
#include "api/reasons.h"
#include "api/shipped_agent_identities.h"
#include "attest/sim_agent.h"
#include "base/encoding.h"
#include "policy/policy.h"
#include "store/reasons.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr size_t kMaxIdentitiesPerZone = 100;

json IdentityJson(const Row& r, const std::string& zone_name) {
  json j{{"id", r.Str("id")},
         {"zone", zone_name},
         {"platform", r.Str("platform")},
         {"rule", ParseJsonColumn(r.Str("rule"), json::object())},
         {"status", r.Str("status")},
         {"task_id", r.IsNull("task_id") ? json(nullptr) : json(r.Str("task_id"))},
         {"note", r.IsNull("note") ? json(nullptr) : json(r.Str("note"))},
         {"created_at", TimeJson(r.Int("created_at"))},
         {"created_by", r.Str("created_by")}};
  return j;
}

Result<Row> FindZone(Transaction& tx, const std::string& key) { return FindByIdOrName(tx, "zones", key, "zone"); }

std::string Describe(const json& rule) {
  std::string out = rule.value("platform", std::string("?"));
  for (const auto& [k, v] : rule.items()) {
    if (k == "platform") continue;
    std::string val = v.is_string() ? v.get<std::string>() : v.dump();
    if (val.size() > 16) val = val.substr(0, 16) + "...";
    out += " " + k + "=" + val;
  }
  return out;
}

}  // namespace

namespace internal {

json ShippedSimAgentRule() {
  const attest::SimAgentIdentity& id = attest::ShippedSimAgent();
  policy::SgxMeasurementRule r;
  r.mrenclave = HexEncode(id.mrenclave);
  r.mrsigner = HexEncode(id.mrsigner);
  r.isvprodid = id.isvprodid;
  r.min_isvsvn = id.isvsvn;
  return policy::IdentityRuleJson(policy::MeasurementRule{r});
}

std::vector<json> ShippedSimAgentCvmRules() {
  const attest::SimAgentIdentity& id = attest::ShippedSimAgent();
  policy::TdxMeasurementRule tdx;
  tdx.mrtd = HexEncode(id.tdx_mrtd);
  policy::SnpMeasurementRule snp;
  snp.measurement = HexEncode(id.snp_measurement);
  return {policy::IdentityRuleJson(policy::MeasurementRule{tdx}), policy::IdentityRuleJson(policy::MeasurementRule{snp})};
}

Result<std::vector<json>> ShippedAgentRules() {
  std::vector<json> out;
  const std::string text = kShippedAgentIdentities;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return out;
  json list = json::parse(text, nullptr, false);
  if (!list.is_array())
    return FailedPrecondition("VOUCH_AGENT_IDENTITIES is not a JSON array",
                              std::string(policy::kInvalidRule));
  for (const json& j : list) {
    VOUCH_ASSIGN_OR_RETURN(policy::MeasurementRule rule, policy::ParseIdentityRule(j));
    out.push_back(policy::IdentityRuleJson(rule));
  }
  return out;
}

Status SeedNodeIdentities(Transaction& tx, const std::string& zone_id, bool allow_sim, int64_t now) {
  VOUCH_ASSIGN_OR_RETURN(std::vector<json> rules, ShippedAgentRules());
  std::vector<std::pair<json, std::string>> seeds;
  for (json& r : rules) seeds.emplace_back(std::move(r), "the vouch-agent shipped with this vouchd (build configuration)");
  if (allow_sim) {
    seeds.emplace_back(ShippedSimAgentRule(), "the shipped sim agent (INSECURE sim TEE)");
    // The same agent in a sim confidential VM: its TD's MRTD and its SEV-SNP launch MEASUREMENT.
    for (json& r : ShippedSimAgentCvmRules()) seeds.emplace_back(std::move(r), "the shipped sim agent in a sim CVM (INSECURE)");
  }
  for (const auto& [rule, note] : seeds) {
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO node_identities (id, zone_id, platform, rule, status, task_id, note, "
                                  "created_at, created_by) VALUES (?, ?, ?, ?, 'active', NULL, ?, ?, 'system')",
                                  {NewId("nid"), zone_id, rule.value("platform", std::string()), rule.dump(), note, now})
                              .status());
  }
  return Status::Ok();
}

Result<std::vector<policy::MeasurementRule>> ActiveNodeIdentities(Transaction& tx, const std::string& zone_id) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT rule FROM node_identities WHERE zone_id = ? AND status = 'active' "
                                             "ORDER BY created_at, id",
                                             {zone_id}));
  std::vector<policy::MeasurementRule> out;
  for (const Row& r : rows) {
    auto rule = policy::ParseIdentityRule(ParseJsonColumn(r.Str("rule"), json::object()));
    if (!rule.ok())
      return DataLoss("a stored node identity rule is corrupt: " + rule.status().message(),
                      std::string(store::kStoreCorrupt));
    out.push_back(std::move(*rule));
  }
  return out;
}

Status DecideNodeIdentityTask(Transaction& tx, const Row& task, bool approved) {
  if (task.IsNull("node_identity_id")) return Status::Ok();
  return tx
      .Exec("UPDATE node_identities SET status = ? WHERE id = ? AND status = 'pending'",
            {std::string(approved ? "active" : "denied"), task.Str("node_identity_id")})
      .status();
}

}  // namespace internal

Result<json> Manager::ListNodeIdentities(const Principal& p, const std::string& zone) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindZone(tx, zone));
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT * FROM node_identities WHERE zone_id = ? ORDER BY created_at, id",
                                               {z.Str("id")}));
    json items = json::array();
    for (const Row& r : rows) items.push_back(IdentityJson(r, z.Str("name")));
    out = PageJson(std::move(items), "");
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::AddNodeIdentity(const Principal& p, const std::string& zone, const json& rule_in,
                                      const std::string& note) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  VOUCH_ASSIGN_OR_RETURN(policy::MeasurementRule rule, policy::ParseIdentityRule(rule_in));
  if (note.size() > 200)
    return InvalidArgument("note must be at most 200 characters", std::string(kInvalidNote));
  const json normal = policy::IdentityRuleJson(rule);
  const std::string platform = normal.value("platform", std::string());
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindZone(tx, zone));
    const std::string zone_id = z.Str("id");
    VOUCH_ASSIGN_OR_RETURN(Rows existing, tx.Query("SELECT id, rule, status FROM node_identities WHERE zone_id = ? AND "
                                                   "status IN ('active', 'pending')",
                                                   {zone_id}));
    for (const Row& r : existing) {
      if (ParseJsonColumn(r.Str("rule"), json::object()) == normal) {
        return AlreadyExists("zone '" + z.Str("name") + "' already has this identity (" +
                                 r.Str("id") + ", " + r.Str("status") + ")",
                             std::string(kNodeIdentityExists));
      }
    }
    if (existing.size() >= kMaxIdentitiesPerZone) {
      return FailedPrecondition(
          "a zone has at most " + std::to_string(kMaxIdentitiesPerZone) + " node identities",
          std::string(kTooManyNodeIdentities));
    }
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, zone_id));
    const int64_t now = Now();
    const std::string id = NewId("nid");
    const std::string task_id = NewId("task");
    const std::string summary = "accept node agent identity " + Describe(normal) + " in zone " + z.Str("name");
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, summary, approvals_required, "
                                  "created_at, created_by, node_identity_id) VALUES (?, 'node_identity', 'pending', ?, "
                                  "NULL, ?, ?, ?, ?, ?)",
                                  {task_id, zone_id, summary, int64_t{policy.approvals_required}, now, p.Actor(), id})
                              .status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO node_identities (id, zone_id, platform, rule, status, task_id, note, "
                                  "created_at, created_by) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                                  {id, zone_id, platform, normal.dump(), task_id,
                                   note.empty() ? Value(nullptr) : Value(note), now, p.Actor()})
                              .status());
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT * FROM node_identities WHERE id = ?", {id}, "node identity"));
    out = IdentityJson(r, z.Str("name"));
    return Audit(tx, *this, p, "zone.node_identity.request", z.Str("name"),
                 {{"identity", id}, {"rule", normal}, {"task", task_id}});
  }));
  return out;
}

Result<json> Manager::RemoveNodeIdentity(const Principal& p, const std::string& zone, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindZone(tx, zone));
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT * FROM node_identities WHERE id = ? AND zone_id = ?",
                                               {id, z.Str("id")}));
    if (rows.empty()) {
      return NotFound(
          "node identity '" + id.substr(0, 80) + "' not found in zone '" + z.Str("name") + "'",
          std::string(kNodeIdentityNotFound));
    }
    const Row& r = rows[0];
    out = IdentityJson(r, z.Str("name"));
    out["status"] = "removed";
    if (!r.IsNull("task_id")) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE tasks SET status = 'cancelled', decided_at = ? WHERE id = ? AND "
                                    "status = 'pending'",
                                    {Now(), r.Str("task_id")})
                                .status());
    }
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM node_identities WHERE id = ?", {id}).status());
    return Audit(tx, *this, p, "zone.node_identity.remove", z.Str("name"),
                 {{"identity", id}, {"rule", out["rule"]}, {"was", r.Str("status")}});
  }));
  return out;
}

}  // namespace vouch::api
