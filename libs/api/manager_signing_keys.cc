// Each app's image signing key, made and sealed in vouchd (issue 15; docs/api.md "App signing
// keys"). The active key gives the app's mrsigner (manifest::Mrsigner, as `vouch convert` computes
// it); a rotation makes a pending key and an approval task of kind signing_key under the zone's
// quorum, and only its approval makes the new key active (a new mrsigner changes what builds
// mean). Keys are EC P-256, the converter's default (manifest::CheckSigningKey). A key leaving use
// (retired or denied) has its sealed bytes wiped: nothing signs with it again.

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "base/encoding.h"
#include "crypto/keys.h"
#include "manifest/manifest.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

struct NewKey {
  std::string id;
  std::string mrsigner;
  crypto::EvpPkeyPtr key;
  store::Blob sealed;
};

Result<NewKey> MakeKey(Transaction& tx, const Manager& m) {
  NewKey k;
  k.id = NewId("sk");
  VOUCH_ASSIGN_OR_RETURN(k.key, crypto::GenerateP256());
  VOUCH_RETURN_IF_ERROR(manifest::CheckSigningKey(k.key.get()));
  VOUCH_ASSIGN_OR_RETURN(crypto::Sha256Digest mrsigner, manifest::Mrsigner(k.key.get()));
  k.mrsigner = HexEncode(mrsigner);
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes der, crypto::PrivateKeyToDer(k.key.get()));
  VOUCH_ASSIGN_OR_RETURN(k.sealed, m.SealSecret(tx, der.span(), AppSigningKeyAad(k.id)));
  return k;
}

// Serialises key creation and rotation per app: on PostgreSQL (read committed) the row lock makes
// a second writer wait and then see the first one's key; SQLite writers are serial anyway.
Status LockApp(Transaction& tx, std::string_view app_id) {
  VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE apps SET deleted = deleted WHERE id = ? AND deleted = 0",
                                            {std::string(app_id)}));
  if (n == 0) {
    return NotFound("app '" + std::string(app_id.substr(0, 80)) + "' not found", std::string(kAppNotFound));
  }
  return Status::Ok();
}

Result<Rows> ActiveRows(Transaction& tx, std::string_view app_id) {
  return tx.Query("SELECT id, key_sealed, mrsigner FROM app_signing_keys WHERE app_id = ? AND status = 'active' "
                  "ORDER BY activated_at DESC, id LIMIT 1",
                  {std::string(app_id)});
}

}  // namespace

Result<std::optional<std::string>> ActiveAppMrsigner(Transaction& tx, std::string_view app_id) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT mrsigner FROM app_signing_keys WHERE app_id = ? AND status = "
                                             "'active' ORDER BY activated_at DESC, id LIMIT 1",
                                             {std::string(app_id)}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows[0].Str("mrsigner"));
}

Result<AppSigningKey> ActiveAppSigningKey(Transaction& tx, const Manager& m, std::string_view app_id) {
  VOUCH_ASSIGN_OR_RETURN(Rows rows, ActiveRows(tx, app_id));
  if (rows.empty()) {
    VOUCH_RETURN_IF_ERROR(LockApp(tx, app_id));
    VOUCH_ASSIGN_OR_RETURN(rows, ActiveRows(tx, app_id));  // made meanwhile by another member
  }
  if (rows.empty()) {
    VOUCH_ASSIGN_OR_RETURN(NewKey k, MakeKey(tx, m));
    const int64_t now = ToUnixSeconds(m.clock().Now());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO app_signing_keys (id, app_id, key_sealed, mrsigner, status, created_at, "
                                  "created_by, activated_at) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                                  {k.id, std::string(app_id), k.sealed, k.mrsigner, now, std::string("system"), now})
                              .status());
    VOUCH_ASSIGN_OR_RETURN(Row a, tx.QueryOne("SELECT name FROM apps WHERE id = ?", {std::string(app_id)}, "app"));
    VOUCH_RETURN_IF_ERROR(Audit(tx, m, Principal::System(), "app.signing_key.create", a.Str("name"),
                                {{"key_id", k.id}, {"mrsigner", k.mrsigner}}));
    return AppSigningKey{std::move(k.id), std::move(k.mrsigner), std::move(k.key)};
  }
  const Row& r = rows[0];
  auto der = m.OpenSecret(tx, r.Bytes("key_sealed"), AppSigningKeyAad(r.Str("id")));
  if (IsMasterKeyRotated(der.status())) return der.status();
  if (!der.ok()) {
    return DataLoss("the signing key " + r.Str("id") + " does not open with the master key",
                    std::string(kSigningKeyUnsealFailed));
  }
  auto key = crypto::PrivateKeyFromDer(der->span());
  if (!key.ok()) {
    return DataLoss("the signing key " + r.Str("id") + " is not a private key", std::string(kSigningKeyUnsealFailed));
  }
  return AppSigningKey{r.Str("id"), r.Str("mrsigner"), std::move(*key)};
}

Status DecideSigningKeyTask(Transaction& tx, const Manager& m, const Row& task, bool approve) {
  const std::string key_id = task.Str("subject_id");
  const std::string app_id = task.Str("app_id");
  const int64_t now = ToUnixSeconds(m.clock().Now());
  if (!approve) {
    return tx.Exec("UPDATE app_signing_keys SET status = 'denied', key_sealed = substr(key_sealed, 1, 0) WHERE id = ? AND status = 'pending'",
                   {key_id})
        .status();
  }
  VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE app_signing_keys SET status = 'active', activated_at = ? WHERE id = ? "
                                            "AND app_id = ? AND status = 'pending'",
                                            {now, key_id, app_id}));
  if (n != 1) {
    return FailedPrecondition("signing key " + key_id + " is no longer pending", std::string(kTaskNotPending));
  }
  return tx.Exec("UPDATE app_signing_keys SET status = 'retired', key_sealed = substr(key_sealed, 1, 0) WHERE app_id = ? AND "
                 "status = 'active' AND id <> ?",
                 {app_id, key_id})
      .status();
}

Result<json> Manager::RotateAppSigningKey(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows apps, tx.Query("SELECT id, name, zone_id FROM apps WHERE (id = ? OR name = ?) AND deleted = 0",
                                               {key, key}));
    if (apps.empty()) return NotFound("app '" + key.substr(0, 80) + "' not found", std::string(kAppNotFound));
    const Row& a = apps[0];
    const std::string app_id = a.Str("id");
    VOUCH_RETURN_IF_ERROR(LockApp(tx, app_id));
    VOUCH_ASSIGN_OR_RETURN(Rows pending, tx.Query("SELECT id, task_id FROM app_signing_keys WHERE app_id = ? AND "
                                                  "status = 'pending'",
                                                  {app_id}));
    if (!pending.empty()) {
      return FailedPrecondition("app '" + a.Str("name") + "' already has a signing key rotation waiting for approval (task " +
                                    pending[0].Str("task_id") + ")",
                                std::string(kSigningKeyPending));
    }
    VOUCH_ASSIGN_OR_RETURN(AppSigningKey current, ActiveAppSigningKey(tx, *this, app_id));
    VOUCH_ASSIGN_OR_RETURN(NewKey k, MakeKey(tx, *this));
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, a.Str("zone_id")));
    const std::string task_id = NewId("task");
    const int64_t now = Now();
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO app_signing_keys (id, app_id, key_sealed, mrsigner, status, task_id, "
                                  "created_at, created_by) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                                  {k.id, app_id, k.sealed, k.mrsigner, task_id, now, p.Actor()})
                              .status());
    const std::string summary = "rotate the signing key of app " + a.Str("name") + ": mrsigner " + current.mrsigner +
                                " -> " + k.mrsigner + " (builds signed with the old key keep their mrsigner)";
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO tasks (id, kind, status, zone_id, app_id, summary, approvals_required, "
                                  "created_at, created_by, subject_id) VALUES (?, 'signing_key', 'pending', ?, ?, ?, ?, ?, ?, ?)",
                                  {task_id, a.Str("zone_id"), app_id, summary, int64_t{policy.approvals_required}, now,
                                   p.Actor(), k.id})
                              .status());
    out = {{"app", a.Str("name")},
           {"key_id", k.id},
           {"status", "pending"},
           {"mrsigner", k.mrsigner},
           {"previous_mrsigner", current.mrsigner},
           {"task_id", task_id},
           {"approvals_required", policy.approvals_required}};
    return Audit(tx, *this, p, "app.signing_key.rotate", a.Str("name"),
                 {{"key_id", k.id}, {"task", task_id}, {"mrsigner", k.mrsigner}, {"previous_mrsigner", current.mrsigner}});
  }));
  return out;
}

}  // namespace vouch::api
