// Zone CA rotation (issue 18; zone_ca_rotation.h, docs/api.md "Zone CA rotation").
//
// zones.ca_cert_pem / ca_key_sealed always hold the active root, the one that issues. A rotation
// makes the next root (same profile as CreateZone's) as a zone_cas row, pending until its
// ca_rotation task is approved under the zone's quorum. Activation, in one transaction with its
// audit entry, moves the approved root into the zone row (key re-sealed under the zone's AAD) and
// keeps the previous root as a 'retired' zone_cas row (key re-sealed under the row's AAD) so it
// still signs its own CRL: certificates it issued stay valid until they expire and are revocable.
// Every CRL a zone publishes (the active root's and each retired or next root's) lists every
// revoked serial of the zone: serials are unique per zone, so a serial in a CRL of an issuer that
// never issued it changes nothing, and no member has to know which root issued what.

#include "api/ca_adapter.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "api/zone_ca_rotation.h"
#include "base/encoding.h"
#include "crypto/aead.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

// manager_zones.cc's AAD of zones.ca_key_sealed.
std::string ZoneKeyAad(const std::string& zone_id) { return "vouch:zone-ca-key:" + zone_id; }

// Serialises rotations and activations of one zone (PostgreSQL row lock; SQLite writers are serial).
Status LockZone(Transaction& tx, const std::string& zone_id) {
  return tx.Exec("UPDATE zones SET crl_number = crl_number WHERE id = ?", {zone_id}).status();
}

json CaJson(const std::string& cert_pem) {
  auto summary = DescribeCa(cert_pem);
  if (!summary.ok()) return json::object();
  return {{"subject", summary->subject},
          {"not_before", FormatRfc3339(summary->not_before)},
          {"not_after", FormatRfc3339(summary->not_after)},
          {"sha256", summary->sha256}};
}

}  // namespace

Status DecideCaRotationTask(Transaction& tx, const Row& task, bool approve) {
  const std::string ca_id = task.Str("subject_id");
  if (!approve) {
    return tx.Exec("UPDATE zone_cas SET status = 'denied', key_sealed = substr(key_sealed, 1, 0) WHERE id = ? AND "
                   "status = 'pending'",
                   {ca_id})
        .status();
  }
  VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE zone_cas SET status = 'approved' WHERE id = ? AND zone_id = ? AND "
                                            "status = 'pending'",
                                            {ca_id, task.Str("zone_id")}));
  if (n != 1) return FailedPrecondition("zone CA " + ca_id + " is no longer pending", std::string(kTaskNotPending));
  return Status::Ok();
}

Result<json> Manager::RotateZoneCa(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  std::string zone_name;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    zone_name = z.Str("name");
    return Status::Ok();
  }));
  // Key generation outside the write transaction, as CreateZone does.
  VOUCH_ASSIGN_OR_RETURN(ZoneCaMaterial ca, CreateZoneCa(zone_name, clock_->Now()));
  const std::string ca_id = NewId("zca");
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(auto sealed, SealSecret(tx, ca.key_der.span(), ZoneCaRowKeyAad(ca_id)));
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    const std::string zone_id = z.Str("id");
    VOUCH_RETURN_IF_ERROR(LockZone(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(Rows waiting, tx.Query("SELECT id, status, task_id FROM zone_cas WHERE zone_id = ? AND "
                                                  "status IN ('pending', 'approved')",
                                                  {zone_id}));
    if (!waiting.empty()) {
      return FailedPrecondition("zone '" + z.Str("name") + "' already has a next CA " + waiting[0].Str("id") + " (" +
                                    waiting[0].Str("status") + "): activate it or deny its task first",
                                std::string(kCaRotationPending));
    }
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, zone_id));
    const std::string task_id = NewId("task");
    const int64_t now = Now();
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO zone_cas (id, zone_id, cert_pem, key_sealed, status, task_id, created_at, "
                                  "created_by) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                                  {ca_id, zone_id, ca.cert_pem, store::Blob(sealed), task_id, now, p.Actor()})
                              .status());
    json next = CaJson(ca.cert_pem);
    const std::string summary = "rotate the root CA of zone " + z.Str("name") + ": next root " +
                                next.value("sha256", std::string()) + " (activated separately; the current root " +
                                "stays trusted until its certificates expire)";
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, summary, approvals_required, "
                                  "created_at, created_by, subject_id) VALUES (?, 'ca_rotation', 'pending', ?, ?, ?, ?, ?, ?)",
                                  {task_id, zone_id, summary, int64_t{policy.approvals_required}, now, p.Actor(), ca_id})
                              .status());
    out = {{"zone", z.Str("name")},
           {"ca_id", ca_id},
           {"status", "pending"},
           {"task_id", task_id},
           {"approvals_required", policy.approvals_required},
           {"ca", next},
           {"previous_ca", CaJson(z.Str("ca_cert_pem"))}};
    return Audit(tx, *this, p, "zone.ca.rotate", z.Str("name"),
                 {{"ca_id", ca_id}, {"task", task_id}, {"sha256", next.value("sha256", std::string())}});
  }));
  return out;
}

Result<json> Manager::ActivateZoneCa(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  std::string zone_id;
  Status written = db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    zone_id = z.Str("id");
    VOUCH_RETURN_IF_ERROR(LockZone(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(Rows approved, tx.Query("SELECT * FROM zone_cas WHERE zone_id = ? AND status = 'approved' "
                                                   "ORDER BY created_at, id LIMIT 1",
                                                   {zone_id}));
    if (approved.empty()) {
      return FailedPrecondition("zone '" + z.Str("name") + "' has no approved next CA: rotate and approve first",
                                std::string(kNoApprovedCa));
    }
    const Row& next = approved[0];
    const std::string next_id = next.Str("id");
    VOUCH_RETURN_IF_ERROR(StoreKey(tx).status());  // 503 master_key_rotated, not a DataLoss below
    auto next_key = OpenSecret(tx, next.Bytes("key_sealed"), ZoneCaRowKeyAad(next_id));
    auto cur_key = OpenSecret(tx, z.Bytes("ca_key_sealed"), ZoneKeyAad(zone_id));
    if (!next_key.ok() || !cur_key.ok()) {
      return DataLoss("a zone CA key cannot be unsealed with this master key", std::string(kCaKeyUnsealFailed));
    }
    const int64_t now = Now();
    // The previous root: its zone_cas row ('active' since an earlier activation) or a new one
    // (the root CreateZone made), keeping the zone's CRL as its own.
    VOUCH_ASSIGN_OR_RETURN(Rows active, tx.Query("SELECT id FROM zone_cas WHERE zone_id = ? AND status = 'active'", {zone_id}));
    const std::string prev_id = active.empty() ? NewId("zca") : active[0].Str("id");
    VOUCH_ASSIGN_OR_RETURN(auto prev_sealed, SealSecret(tx, cur_key->span(), ZoneCaRowKeyAad(prev_id)));
    if (active.empty()) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO zone_cas (id, zone_id, cert_pem, key_sealed, status, crl_number, crl_der, "
                                    "crl_updated_at, created_at, created_by, activated_at, retired_at) "
                                    "VALUES (?, ?, ?, ?, 'retired', ?, ?, ?, ?, ?, ?, ?)",
                                    {prev_id, zone_id, z.Str("ca_cert_pem"), store::Blob(prev_sealed), z.Int("crl_number"),
                                     z.IsNull("crl_der") ? store::Value() : store::Value(z.Bytes("crl_der")),
                                     z.IsNull("crl_updated_at") ? store::Value() : store::Value(z.Int("crl_updated_at")),
                                     z.Int("created_at"), z.Str("created_by"), z.Int("created_at"), now})
                                .status());
    } else {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE zone_cas SET status = 'retired', key_sealed = ?, crl_number = ?, crl_der = ?, "
                                    "crl_updated_at = ?, retired_at = ? WHERE id = ?",
                                    {store::Blob(prev_sealed), z.Int("crl_number"),
                                     z.IsNull("crl_der") ? store::Value() : store::Value(z.Bytes("crl_der")),
                                     z.IsNull("crl_updated_at") ? store::Value() : store::Value(z.Int("crl_updated_at")),
                                     now, prev_id})
                                .status());
    }
    VOUCH_ASSIGN_OR_RETURN(auto zone_sealed, SealSecret(tx, next_key->span(), ZoneKeyAad(zone_id)));
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE zones SET ca_cert_pem = ?, ca_key_sealed = ? WHERE id = ?",
                                  {next.Str("cert_pem"), store::Blob(zone_sealed), zone_id})
                              .status());
    // The active root's key lives in the zone row only.
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE zone_cas SET status = 'active', activated_at = ?, "
                                  "key_sealed = substr(key_sealed, 1, 0) WHERE id = ?",
                                  {now, next_id})
                              .status());
    {
      std::lock_guard<std::mutex> lock(signers_mu_);
      signers_.erase(zone_id);
    }
    VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, zone_id));  // the zone's CRL, now signed by the new root
    json ca = CaJson(next.Str("cert_pem"));
    json prev = CaJson(z.Str("ca_cert_pem"));
    out = {{"zone", z.Str("name")}, {"ca_id", next_id}, {"ca", ca}, {"previous_ca_id", prev_id}, {"previous_ca", prev}};
    return Audit(tx, *this, p, "zone.ca.activate", z.Str("name"),
                 {{"ca_id", next_id},
                  {"sha256", ca.value("sha256", std::string())},
                  {"previous_ca_id", prev_id},
                  {"previous_sha256", prev.value("sha256", std::string())}});
  });
  if (!zone_id.empty()) {
    // Whatever the outcome: a signer loaded inside the transaction must not outlive it.
    std::lock_guard<std::mutex> lock(signers_mu_);
    signers_.erase(zone_id);
  }
  VOUCH_RETURN_IF_ERROR(written);
  return out;
}

Result<json> Manager::ListZoneCas(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT id, cert_pem, status, task_id, created_at, created_by, activated_at, "
                                               "retired_at FROM zone_cas WHERE zone_id = ? ORDER BY created_at DESC, id",
                                               {z.Str("id")}));
    auto nullable_time = [](const Row& r, const char* col) { return r.IsNull(col) ? json(nullptr) : json(TimeJson(r.Int(col))); };
    json items = json::array();
    bool has_active = false;
    for (const Row& r : rows) has_active = has_active || r.Str("status") == "active";
    if (!has_active) {  // the root CreateZone made, never rotated: no zone_cas row yet
      items.push_back({{"id", nullptr}, {"status", "active"}, {"ca", CaJson(z.Str("ca_cert_pem"))},
                       {"task_id", nullptr}, {"created_at", TimeJson(z.Int("created_at"))},
                       {"created_by", z.Str("created_by")}, {"activated_at", TimeJson(z.Int("created_at"))},
                       {"retired_at", nullptr}});
    }
    const char* order[] = {"active", "approved", "pending", "retired", "denied"};
    for (const char* status : order) {
      for (const Row& r : rows) {
        if (r.Str("status") != status) continue;
        items.push_back({{"id", r.Str("id")}, {"status", r.Str("status")}, {"ca", CaJson(r.Str("cert_pem"))},
                         {"task_id", r.IsNull("task_id") ? json(nullptr) : json(r.Str("task_id"))},
                         {"created_at", TimeJson(r.Int("created_at"))}, {"created_by", r.Str("created_by")},
                         {"activated_at", nullable_time(r, "activated_at")}, {"retired_at", nullable_time(r, "retired_at")}});
      }
    }
    out = PageJson(std::move(items), "");
    return Status::Ok();
  }));
  return out;
}

Result<std::string> Manager::ZoneCaBundlePem(const std::string& key) {
  std::string pem;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    pem = z.Str("ca_cert_pem");
    // The approved next root, and each retired root while a certificate of the zone made before
    // it was retired (or up to 5 minutes after: one signed from a snapshot taken before the
    // activation committed, stored after) is unexpired.
    VOUCH_ASSIGN_OR_RETURN(
        Rows rows, tx.Query("SELECT c.cert_pem FROM zone_cas c WHERE c.zone_id = ? AND (c.status = 'approved' OR "
                            "(c.status = 'retired' AND EXISTS (SELECT 1 FROM certificates x WHERE x.zone_id = c.zone_id "
                            "AND x.kind <> 'node' AND x.not_after > ? AND x.created_at <= c.retired_at + 300))) "
                            "ORDER BY c.status, c.created_at, c.id",
                            {z.Str("id"), Now()}));
    for (const Row& r : rows) {
      if (!pem.empty() && pem.back() != '\n') pem += '\n';
      pem += r.Str("cert_pem");
    }
    return Status::Ok();
  }));
  return pem;
}

Result<std::vector<uint8_t>> Manager::ZoneCaCrl(const std::string& key, const std::string& ca_id) {
  std::vector<uint8_t> der;
  std::string zone_id;
  bool stale = false, active = false;
  auto not_found = [&]() {
    return NotFound("zone CA '" + ca_id.substr(0, 80) + "' not found (or not approved, active or retired)",
                    std::string(kZoneCaNotFound));
  };
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row z, FindByIdOrName(tx, "zones", key, "zone"));
    zone_id = z.Str("id");
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT status, crl_der, crl_updated_at FROM zone_cas WHERE id = ? AND "
                                               "zone_id = ? AND status IN ('approved', 'active', 'retired')",
                                               {ca_id, zone_id}));
    if (rows.empty()) return not_found();
    if (rows[0].Str("status") == "active") {
      active = true;
      return Status::Ok();
    }
    der = rows[0].Bytes("crl_der");
    // Re-signed past half its validity, and whenever the zone's CRL changed since (a revocation):
    // '<=' because both are whole seconds.
    const int64_t updated = rows[0].IsNull("crl_updated_at") ? -1 : rows[0].Int("crl_updated_at");
    stale = der.empty() || updated < 0 || Now() - updated > options_.crl_validity.count() / 2 ||
            (!z.IsNull("crl_updated_at") && updated <= z.Int("crl_updated_at"));
    return Status::Ok();
  }));
  if (active) return ZoneCrl(zone_id);
  if (!stale) return der;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT cert_pem, key_sealed, crl_number FROM zone_cas WHERE id = ? AND "
                                               "zone_id = ? AND status IN ('approved', 'retired')",
                                               {ca_id, zone_id}));
    if (rows.empty()) return not_found();  // activated meanwhile: the caller asks again
    VOUCH_RETURN_IF_ERROR(StoreKey(tx).status());  // 503 master_key_rotated, not a DataLoss below
    auto ca_key = OpenSecret(tx, rows[0].Bytes("key_sealed"), ZoneCaRowKeyAad(ca_id));
    if (!ca_key.ok()) {
      return DataLoss("the zone CA key cannot be unsealed with this master key", std::string(kCaKeyUnsealFailed));
    }
    VOUCH_ASSIGN_OR_RETURN(auto signer, LoadZoneSigner(rows[0].Str("cert_pem"), *ca_key));
    VOUCH_ASSIGN_OR_RETURN(Rows revoked_rows, tx.Query("SELECT serial, revoked_at FROM certificates WHERE zone_id = ? AND "
                                                       "status = 'revoked' AND kind <> 'node' ORDER BY revoked_at",
                                                       {zone_id}));
    std::vector<RevokedEntry> revoked;
    revoked.reserve(revoked_rows.size());
    for (const Row& r : revoked_rows) revoked.push_back({r.Str("serial"), FromUnixSeconds(r.Int("revoked_at"))});
    const int64_t number = rows[0].Int("crl_number") + 1;
    const TimePoint now = clock_->Now();
    VOUCH_ASSIGN_OR_RETURN(der, BuildZoneCrl(*signer, revoked, number, now, now + options_.crl_validity));
    return tx.Exec("UPDATE zone_cas SET crl_number = ?, crl_der = ?, crl_updated_at = ? WHERE id = ?",
                   {number, store::Blob(der), ToUnixSeconds(now), ca_id})
        .status();
  }));
  return der;
}

}  // namespace vouch::api
