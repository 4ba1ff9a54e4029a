#pragma once

// Master-key rotation (docs/custody.md, "Rotation"): every secret sealed under the cluster master
// key is re-sealed under a new key in ONE store transaction, and the key files are swapped in an
// order that leaves the data directory wholly under the old or wholly under the new key,
// whatever the point of interruption.
//
// The sealed values (all AES-256-GCM, crypto/aead.h, each with its own AAD):
//   zones.ca_key_sealed                 every zone's CA key   (aad "vouch:zone-ca-key:<zone id>")
//   settings 'node_ca_key_sealed'       the node CA key, base64 (aad "vouch:node-ca-key")
//   settings 'master_key_check'         a canary written by rotation, base64 (aad "vouch:master-key-check")
//   DATA/tls/server.key.sealed          the HTTPS key, a file  (aad "vouch:service-tls-key")
//   zones.heartbeat_key_sealed          each zone's heartbeat key (aad "vouch:zones.heartbeat_key_sealed:<zone id>")
//   zone_cas.key_sealed                 previous / next zone CA keys (aad "vouch:zone_cas.key_sealed:<ca id>")
//   registries.secret_sealed            registry passwords / tokens (aad "vouch:registries.secret_sealed:<id>")
//   app_signing_keys.key_sealed         app image signing keys (aad "vouch:app_signing_keys.key_sealed:<id>")
// Node and cluster-join nonces are MAC'd with keys derived from the master key; they live five
// minutes, so a rotation only makes outstanding ones fail (the caller asks again).
//
// Steps of RotateMasterKey (offline: no vouchd may serve the store meanwhile):
//   1. DATA/tls/server.key.sealed.next and DATA/master.key.next (the new key), durable;
//   2. one transaction: every sealed column re-sealed, the canary under the new key, an audit
//      entry "master_key.rotate"; commit;
//   3. rename tls/server.key.sealed.next, then master.key.next, over the old files.
// RecoverMasterKeyRotation (called by OpenDataDir whenever master.key.next exists) decides by
// the store: if the canary opens with master.key.next the transaction committed and step 3 is
// finished; otherwise the .next files are deleted and everything stays under the old key.
// Both hold DATA/master.key.lock (flock) throughout: a recovery (a vouchd starting) during a
// rotation, or a second rotation, is refused with kRotationInProgress instead of racing it.
#include <functional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "store/database.h"

namespace vouch::api {

// This member's master key does not open the store: the key was rotated by another member.
inline constexpr std::string_view kMasterKeyRotated = "master_key_rotated";
// A sealed value does not open with the current key: refused before anything is changed.
inline constexpr std::string_view kSealedValueUnreadable = "sealed_value_unreadable";
// Another process holds DATA/master.key.lock: a rotation (or its recovery) is running.
inline constexpr std::string_view kRotationInProgress = "rotation_in_progress";

struct RotationReport {
  int zone_ca_keys = 0;
  bool node_ca_key = false;
  bool tls_key = false;
  std::string audit_action = "master_key.rotate";
};

struct RotateOptions {
  std::string actor = "system:master-key-rotate";
  // Test hook: called after each step ("next_written", "in_transaction" [inside the transaction,
  // after every value is re-sealed], "committed", "tls_renamed"); an error stops the rotation
  // there as a crash would (nothing is cleaned up).
  std::function<Status(std::string_view step)> step_hook;
};

// Rotates the master key of the data directory `data_dir` (see above). Fails, changing nothing,
// if any sealed value does not open with the current key.
Result<RotationReport> RotateMasterKey(const std::string& data_dir, const Clock& clock,
                                       const RotateOptions& options = {});

// Finishes or rolls back an interrupted rotation (no-op without DATA/master.key.next). Returns
// "none", "completed" or "rolled_back". An unreachable store is an error and changes nothing.
Result<std::string> RecoverMasterKeyRotation(const std::string& data_dir);

// Ok when `master_key` opens the store's sealed values (the canary if present, else the zone
// CA keys and the node CA key); FailedPrecondition kMasterKeyRotated otherwise. vouchd serve
// calls it at start, so a member left with an old key is told to re-join.
Status CheckMasterKeyOpensStore(store::Database& db, const crypto::SecretBytes& master_key);

}  // namespace vouch::api
