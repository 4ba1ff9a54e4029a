#include <algorithm>

#include "api/ca_adapter.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/manager_nodes_internal.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "pki/ca.h"
#include "store/reasons.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

std::string CaKeyAad(const std::string& zone_id) { return "vouch:zone-ca-key:" + zone_id; }

}  // namespace

Result<ZonePolicy> PolicyFromJson(const std::string& text) {
  ZonePolicy p;
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return DataLoss("stored zone policy is corrupt", std::string(store::kStoreCorrupt));
  p.rules.allow_sim = j.value("allow_sim", false);
  auto min_tcb = policy::ParseTcbStatus(j.value("min_tcb", std::string("UpToDate")));
  if (!min_tcb.ok())
    return DataLoss("stored zone policy has an unknown min_tcb", std::string(store::kStoreCorrupt));
  p.rules.min_tcb = *min_tcb;
  p.rules.tolerated_advisories = j.value("tolerated_advisories", std::vector<std::string>{});
  p.approvals_required = j.value("approvals_required", 1);
  p.cert_validity_hours = j.value("cert_validity_hours", 24);
  p.rules.allow_debug = j.value("allow_debug", false);
  return p;
}

namespace {

Status ApplySpec(const ZoneSpec& spec, ZonePolicy* p) {
  if (spec.allow_sim) p->rules.allow_sim = *spec.allow_sim;
  if (spec.allow_debug) p->rules.allow_debug = *spec.allow_debug;
  if (spec.min_tcb) {
    if (!IsValidTcbStatus(*spec.min_tcb)) {
      return InvalidArgument(
          "min_tcb must be one of UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
          "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded",
          std::string(kInvalidMinTcb));
    }
    VOUCH_ASSIGN_OR_RETURN(p->rules.min_tcb, policy::ParseTcbStatus(*spec.min_tcb));
  }
  if (spec.tolerated_advisories) {
    for (const auto& a : *spec.tolerated_advisories) {
      if (a.empty() || a.size() > 64 || !std::all_of(a.begin(), a.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
          })) {
        return InvalidArgument("invalid advisory id '" + a.substr(0, 64) + "'",
                               std::string(kInvalidAdvisory));
      }
    }
    p->rules.tolerated_advisories = *spec.tolerated_advisories;
  }
  if (spec.approvals_required) {
    if (*spec.approvals_required < 1 || *spec.approvals_required > 10) {
      return InvalidArgument("approvals_required must be between 1 and 10",
                             std::string(kInvalidApprovals));
    }
    p->approvals_required = *spec.approvals_required;
  }
  if (spec.cert_validity_hours) {
    if (*spec.cert_validity_hours < 1 || *spec.cert_validity_hours > 24 * 397) {
      return InvalidArgument("cert_validity_hours must be between 1 and 9528",
                             std::string(kInvalidValidity));
    }
    p->cert_validity_hours = *spec.cert_validity_hours;
  }
  return Status::Ok();
}

Result<json> ZoneJson(const Row& r) {
  VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, PolicyFromJson(r.Str("policy")));
  json ca = json::object();
  auto summary = DescribeCa(r.Str("ca_cert_pem"));
  if (summary.ok()) {
    ca = {{"subject", summary->subject},
          {"not_before", FormatRfc3339(summary->not_before)},
          {"not_after", FormatRfc3339(summary->not_after)},
          {"sha256", summary->sha256}};
  }
  return json{{"id", r.Str("id")},
              {"name", r.Str("name")},
              {"created_at", TimeJson(r.Int("created_at"))},
              {"policy", policy.ToJson()},
              {"ca", ca}};
}

// True when `now` refuses something `before` allowed: debug or sim switched off, a stricter
// minimum TCB, or a tolerated advisory taken away. (approvals_required and cert_validity_hours
// do not change what may be certified.)
bool Tightens(const ZonePolicy& before_policy, const ZonePolicy& now_policy) {
  const policy::ZonePolicy& before = before_policy.rules;
  const policy::ZonePolicy& now = now_policy.rules;
  if ((before.allow_debug && !now.allow_debug) || (before.allow_sim && !now.allow_sim)) return true;
  if (policy::TcbRank(now.min_tcb) < policy::TcbRank(before.min_tcb)) return true;
  return std::any_of(before.tolerated_advisories.begin(), before.tolerated_advisories.end(), [&](const std::string& a) {
    return std::find(now.tolerated_advisories.begin(), now.tolerated_advisories.end(), a) == now.tolerated_advisories.end();
  });
}

}  // namespace

Result<ZonePolicy> LoadZonePolicy(Transaction& tx, const std::string& zone_id) {
  VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT policy FROM zones WHERE id = ?", {zone_id}, "zone"));
  return PolicyFromJson(r.Str("policy"));
}

Result<json> Manager::CreateZone(const Principal& p, const ZoneSpec& spec) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!IsValidName(spec.name)) {
    return InvalidArgument(
        "invalid zone name '" + spec.name.substr(0, 80) + "': use a-z, 0-9 and '-'",
        std::string(kInvalidName));
  }
  ZonePolicy policy;
  VOUCH_RETURN_IF_ERROR(ApplySpec(spec, &policy));
  // Key generation happens outside the write transaction so writers are not held up.
  VOUCH_ASSIGN_OR_RETURN(ZoneCaMaterial ca, CreateZoneCa(spec.name, clock_->Now()));
  std::string id = NewId("zone");
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(auto sealed, SealSecret(tx, ca.key_der.span(), CaKeyAad(id)));
    Status st = tx.Exec("INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, ca_key_sealed) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        {id, spec.name, Now(), p.Actor(), policy.ToJson().dump(), ca.cert_pem, store::Blob(sealed)})
                    .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("zone '" + spec.name + "' already exists", std::string(kZoneExists));
    }
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, id));
    VOUCH_RETURN_IF_ERROR(SeedNodeIdentities(tx, id, policy.rules.allow_sim, Now()));  // manager_node_identities.cc
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT * FROM zones WHERE id = ?", {id}, "zone"));
    VOUCH_ASSIGN_OR_RETURN(out, ZoneJson(r));
    return Audit(tx, *this, p, "zone.create", spec.name, {{"policy", policy.ToJson()}});
  }));
  return out;
}

Result<json> Manager::UpdateZone(const Principal& p, const std::string& key, const ZoneSpec& spec) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "zones", key, "zone"));
    VOUCH_ASSIGN_OR_RETURN(const ZonePolicy before, PolicyFromJson(r.Str("policy")));
    ZonePolicy policy = before;
    VOUCH_RETURN_IF_ERROR(ApplySpec(spec, &policy));
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("UPDATE zones SET policy = ? WHERE id = ?", {policy.ToJson().dump(), r.Str("id")}).status());
    json detail = {{"policy", policy.ToJson()}};
    if (Tightens(before, policy)) {
      VOUCH_ASSIGN_OR_RETURN(detail["revoked"], RevokeWhatZoneRefuses(tx, r.Str("id"), policy));
    }
    VOUCH_ASSIGN_OR_RETURN(Row updated, tx.QueryOne("SELECT * FROM zones WHERE id = ?", {r.Str("id")}, "zone"));
    VOUCH_ASSIGN_OR_RETURN(out, ZoneJson(updated));
    if (detail.contains("revoked")) out["revoked"] = detail["revoked"];
    return Audit(tx, *this, p, "zone.update", r.Str("name"), detail);
  }));
  return out;
}

Result<json> Manager::RevokeWhatZoneRefuses(Transaction& tx, const std::string& zone_id, const ZonePolicy& zone_policy) {
  const policy::ZonePolicy& zp = zone_policy.rules;
  const int64_t now = Now();
  // Nodes: their stored evidence verdict under the new rules (policy::EvaluatePlatform, the same
  // decision enrolment and every issuance make).
  std::map<std::string, std::string> refused_nodes;  // node id -> reason code
  VOUCH_ASSIGN_OR_RETURN(Rows nodes, tx.Query("SELECT * FROM nodes WHERE zone_id = ? AND status = 'active'", {zone_id}));
  for (const Row& n : nodes) {
    policy::Decision d = policy::EvaluatePlatform(StoredNodeVerdict(n), zp);
    if (!d.accepted()) refused_nodes[n.Str("id")] = std::string(d.status.reason());
  }
  // Unexpired valid certificates: workload ones of a debug build (debug refused) or of a refused
  // node; node certificates of a refused node.
  VOUCH_ASSIGN_OR_RETURN(Rows certs, tx.Query("SELECT c.serial AS serial, c.kind AS kind, c.node_id AS node_id, "
                                              "b.debug AS debug FROM certificates c LEFT JOIN builds b ON b.id = c.build_id "
                                              "WHERE c.zone_id = ? AND c.status = 'valid' AND c.not_after > ? ORDER BY c.serial",
                                              {zone_id, now}));
  std::map<std::string, std::vector<std::string>> by_reason;  // revocation reason -> serials
  int64_t workload = 0, node = 0;
  for (const Row& c : certs) {
    std::string why;
    auto refused = c.IsNull("node_id") ? refused_nodes.end() : refused_nodes.find(c.Str("node_id"));
    if (c.Str("kind") == "workload") {
      if (!zone_policy.rules.allow_debug && !c.IsNull("debug") && c.Int("debug") != 0) {
        why = std::string(policy::kDebugNotAllowed);
      } else if (refused != refused_nodes.end()) {
        why = refused->second;
      }
      if (!why.empty()) ++workload;
    } else if (c.Str("kind") == "node" && refused != refused_nodes.end()) {
      why = refused->second;
      ++node;
    }
    if (!why.empty()) by_reason["zone policy tightened: " + why].push_back(c.Str("serial"));
  }
  json serials = json::array();
  for (const auto& [reason, list] : by_reason) {
    VOUCH_RETURN_IF_ERROR(MarkRevoked(tx, list, reason).status());
    for (const auto& s : list) serials.push_back(s);
  }
  if (workload + node > 0) VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, zone_id));
  json out = {{"workload_certificates", workload}, {"node_certificates", node}};
  if (serials.size() <= 100) out["serials"] = std::move(serials);
  return out;
}

Result<json> Manager::ListZones(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, "SELECT * FROM zones", {}, {}, q));
    json items = json::array();
    for (const Row& r : page.rows) {
      VOUCH_ASSIGN_OR_RETURN(json z, ZoneJson(r));
      items.push_back(std::move(z));
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetZone(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "zones", key, "zone"));
    VOUCH_ASSIGN_OR_RETURN(out, ZoneJson(r));
    return Status::Ok();
  }));
  return out;
}

Result<std::string> Manager::ZoneCaPem(const std::string& key) {
  std::string pem;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "zones", key, "zone"));
    pem = r.Str("ca_cert_pem");
    return Status::Ok();
  }));
  return pem;
}

Result<std::shared_ptr<pki::CaSigner>> Manager::ZoneSigner(Transaction& tx, const std::string& zone_id) {
  // The cached signer only while it is still the zone's CA: another member may have activated a
  // rotated root (manager_ca_rotation.cc) since it was loaded.
  VOUCH_ASSIGN_OR_RETURN(Row current, tx.QueryOne("SELECT ca_cert_pem FROM zones WHERE id = ?", {zone_id}, "zone"));
  {
    std::lock_guard<std::mutex> lock(signers_mu_);
    auto it = signers_.find(zone_id);
    if (it != signers_.end() && it->second->cert_pem() == current.Str(0)) return it->second;
  }
  VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT ca_cert_pem, ca_key_sealed FROM zones WHERE id = ?", {zone_id}, "zone"));
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes master, StoreKey(tx));
  auto key = crypto::Aes256GcmOpen(master.span(), r.Bytes("ca_key_sealed"), AsBytes(CaKeyAad(zone_id)));
  if (!key.ok()) {
    return DataLoss("the zone CA key cannot be unsealed with this master key",
                    std::string(kCaKeyUnsealFailed));
  }
  VOUCH_ASSIGN_OR_RETURN(auto signer, LoadZoneSigner(r.Str("ca_cert_pem"), *key));
  std::lock_guard<std::mutex> lock(signers_mu_);
  signers_[zone_id] = signer;
  return signer;
}

Status Manager::RegenerateCrl(Transaction& tx, const std::string& zone_id) {
  VOUCH_ASSIGN_OR_RETURN(auto signer, ZoneSigner(tx, zone_id));
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT serial, revoked_at FROM certificates WHERE zone_id = ? AND "
                                             "status = 'revoked' AND kind <> 'node' ORDER BY revoked_at",
                                             {zone_id}));
  std::vector<RevokedEntry> revoked;
  revoked.reserve(rows.size());
  for (const Row& r : rows) revoked.push_back({r.Str("serial"), FromUnixSeconds(r.Int("revoked_at"))});
  VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT crl_number FROM zones WHERE id = ?", {zone_id}, "zone"));
  int64_t number = z.Int("crl_number") + 1;
  TimePoint now = clock_->Now();
  VOUCH_ASSIGN_OR_RETURN(auto der, BuildZoneCrl(*signer, revoked, number, now, now + options_.crl_validity));
  return tx.Exec("UPDATE zones SET crl_number = ?, crl_der = ?, crl_updated_at = ? WHERE id = ?",
                 {number, store::Blob(der), ToUnixSeconds(now), zone_id})
      .status();
}

Result<std::vector<uint8_t>> Manager::ZoneCrl(const std::string& key) {
  std::vector<uint8_t> der;
  std::string zone_id;
  bool stale = false;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "zones", key, "zone"));
    zone_id = r.Str("id");
    der = r.Bytes("crl_der");
    // Re-sign once half of the CRL's validity has passed, so relying parties never see it expire.
    stale = der.empty() || r.IsNull("crl_updated_at") ||
            Now() - r.Int("crl_updated_at") > options_.crl_validity.count() / 2;
    return Status::Ok();
  }));
  if (!stale) return der;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT crl_der FROM zones WHERE id = ?", {zone_id}, "zone"));
    der = r.Bytes("crl_der");
    return Status::Ok();
  }));
  return der;
}

// ---------------------------------------------------------------- join tokens

Result<json> Manager::CreateJoinToken(const Principal& p, const std::string& zone, int64_t ttl, int64_t uses) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (ttl < 60 || ttl > 30 * 86400)
    return InvalidArgument("ttl_seconds must be between 60 and 2592000", std::string(kInvalidTtl));
  if (uses < 1 || uses > 10000)
    return InvalidArgument("uses must be between 1 and 10000", std::string(kInvalidUses));
  std::string token = "vj_" + crypto::RandomToken(32);
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", zone, "zone"));
    std::string id = NewId("jt");
    int64_t now = Now();
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO join_tokens (id, zone_id, token_hash, created_by, created_at, expires_at, "
                                  "uses_left) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  {id, z.Str("id"), HashToken(token), p.Actor(), now, now + ttl, uses})
                              .status());
    out = {{"id", id},
           {"token", token},
           {"zone", z.Str("name")},
           {"expires_at", TimeJson(now + ttl)},
           {"uses_left", uses}};
    return Audit(tx, *this, p, "zone.join_token.create", z.Str("name"), {{"id", id}, {"ttl_seconds", ttl}, {"uses", uses}});
  }));
  return out;
}

Result<json> Manager::ListJoinTokens(const Principal& p, const std::string& zone, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", zone, "zone"));
    VOUCH_ASSIGN_OR_RETURN(PageResult page,
                           QueryPage(tx, "SELECT * FROM join_tokens", {"zone_id = ?"}, {z.Str("id")}, q));
    json items = json::array();
    for (const Row& r : page.rows) {
      items.push_back({{"id", r.Str("id")},
                       {"zone", z.Str("name")},
                       {"created_at", TimeJson(r.Int("created_at"))},
                       {"created_by", r.Str("created_by")},
                       {"expires_at", TimeJson(r.Int("expires_at"))},
                       {"uses_left", r.Int("uses_left")},
                       {"expired", r.Int("expires_at") <= Now()}});
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

}  // namespace vouch::api
