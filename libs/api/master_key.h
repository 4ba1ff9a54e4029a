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
#include <map>
#include <memory>
#include <span>
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
// POST /api/v1/master-key/rotate on a Manager without a data directory (ManagerOptions::data_dir).
inline constexpr std::string_view kRotationUnavailable = "rotation_unavailable";
// AdoptMasterKey: the offered key does not open the store's key check.
inline constexpr std::string_view kMasterKeyMismatch = "master_key_mismatch";

struct RotationReport {
  int zone_ca_keys = 0;
  bool node_ca_key = false;
  bool tls_key = false;
  std::string audit_action = "master_key.rotate";
  // Values re-sealed per column ("zones.ca_key_sealed", ..., "tls/server.key.sealed").
  std::map<std::string, int64_t> resealed;
  std::string key_id;  // of the new key
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

// --- pieces shared by the offline rotation above and the online one (master_key_online.cc)

// HMAC-SHA256(key, "vouch-master-key-id-v1")[0..16] in hex: names a key without revealing it
// (the same as custody::SecretKeyId).
std::string MasterKeyIdHex(std::span<const uint8_t> key);

// The store's key check (settings master_key_check) as `tx` sees it, against `key`.
enum class KeyCheck { kAbsent, kOpens, kDoesNotOpen };
Result<KeyCheck> CheckStoreKey(store::Transaction& tx, const crypto::SecretBytes& key);
// The key check itself (base64; "" when no rotation ever wrote one), and whether `key` opens it.
Result<std::string> ReadStoreKeyCheck(store::Transaction& tx);
bool StoreKeyCheckOpens(const std::string& check_b64, const crypto::SecretBytes& key);
// True for the refusal of a member whose key the store is no longer under (kMasterKeyRotated):
// callers that turn an unsealing failure into DataLoss pass this one through as it is (503).
inline bool IsMasterKeyRotated(const Status& st) { return !st.ok() && st.reason() == kMasterKeyRotated; }

// Inside `tx`: every sealed column re-sealed from `from` to `to` and the key check written under
// `to`. Counts per column. DataLoss kSealedValueUnreadable (nothing must be committed) when a
// value does not open with `from`.
Result<std::map<std::string, int64_t>> ResealStore(store::Transaction& tx, const crypto::SecretBytes& from,
                                                   const crypto::SecretBytes& to);

// Every sealed value of the store opened with `key`: per column, how many open and how many do
// not (the key check included as "settings.master_key_check"). `vouchd master-key check` and the
// tests use it to show a store wholly under one key.
struct SealedCensus {
  std::map<std::string, int64_t> opens;
  std::map<std::string, int64_t> fails;
  int64_t Opened() const;
  int64_t Failed() const;
};
Result<SealedCensus> CensusSealedValues(store::Database& db, const crypto::SecretBytes& key);

// The files of a data directory that a rotation rewrites.
struct MasterKeyFiles {
  std::string dir;
  std::string key;           // DATA/master.key
  std::string key_next;      // DATA/master.key.next
  std::string tls_key;       // DATA/tls/server.key.sealed (config.json tls_key_sealed)
  std::string tls_key_next;  // its .next
};
Result<MasterKeyFiles> MasterKeyFilesOf(const std::string& data_dir);
// DATA/tls/server.key.sealed opened with `current` (or, failing that, `fallback` when given)
// and sealed under `next` into tls_key_next, then `next` into master.key.next; both atomically
// and durably (step 1 of a rotation).
Status WriteNextKeyFiles(const MasterKeyFiles& files, const crypto::SecretBytes& current,
                         const crypto::SecretBytes* fallback, const crypto::SecretBytes& next);

// DATA/master.key.lock held (flock, exclusive, non-blocking) until destroyed; Unavailable
// kRotationInProgress when another holder has it (another process, or another open in this one).
class MasterKeyLock {
 public:
  static Result<std::unique_ptr<MasterKeyLock>> Acquire(const std::string& data_dir);
  ~MasterKeyLock();
  MasterKeyLock(const MasterKeyLock&) = delete;
  MasterKeyLock& operator=(const MasterKeyLock&) = delete;

 private:
  explicit MasterKeyLock(int fd) : fd_(fd) {}
  int fd_;
};

// Finishes or rolls back an interrupted rotation with DATA/master.key.lock already held.
Result<std::string> RecoverMasterKeyRotationLocked(const std::string& data_dir);

// Durable file steps: rename + fsync of the folder; unlink if present.
Status RenameDurable(const std::string& from, const std::string& to);
Status RemoveIfExists(const std::string& path);

}  // namespace vouch::api
