// The master key held by a serving vouchd: sealing and unsealing inside transactions, online
// rotation (POST /api/v1/master-key/rotate) and adoption of a key another member rotated to
// (docs/custody.md "Online rotation").
//
// Why no value is ever sealed under a key the store is not under:
//  - the store says which key it is under: settings master_key_check, sealed under that key and
//    rewritten by a rotation in the same transaction as every sealed column;
//  - every seal and unseal (SealSecret, OpenSecret, StoreKey) reads that check inside its own
//    transaction and uses the key of this process's ring that opens it, or refuses with 503
//    master_key_rotated (Retry-After) when none does;
//  - the rotation's transaction is a serial write (SQLite's one writer; PostgreSQL's cluster writer
//    lock held exclusively, which row-keyed writers hold shared), so every write transaction runs
//    wholly before it (sees the old check, seals under the old key, and the rotation, which reads
//    the rows after it, re-seals them) or wholly after it (sees the new check). Writers grouped in
//    one commit with it run before or after its callback in the same serial order, and the ring
//    holds the new key (`next`) from before the transaction starts, so a callback after it seals
//    under the new key; if the rotation rolls back, the new check goes with it and no transaction
//    ever saw it.
//  - the swap in memory happens after the commit and before DATA/master.key.lock is released;
//    it only changes which key is tried first.
#include <nlohmann/json.hpp>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/master_key.h"
#include "api/master_key_ring.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/random.h"

namespace vouch::api {

using internal::Audit;
using internal::TimeJson;

std::shared_ptr<const Manager::MasterKeys::Key> Manager::MasterKeys::Make(crypto::SecretBytes bytes) {
  auto k = std::make_shared<Key>();
  k->id = MasterKeyIdHex(bytes.span());
  k->bytes = std::move(bytes);
  return k;
}

std::shared_ptr<Manager::MasterKeys> Manager::NewMasterKeys(crypto::SecretBytes key) {
  auto ring = std::make_shared<MasterKeys>();
  ring->current = MasterKeys::Make(std::move(key));
  return ring;
}

namespace {

Status RotatedHere() {
  return Unavailable(
      "the store's master key was rotated by another member: this member must obtain the new key (it re-joins "
      "through the attested join path, docs/custody.md); retry against another member or later",
      std::string(kMasterKeyRotated));
}

// A sealed value that does not open stops a rotation before anything changes: a conflict with the
// store's state (409), not a server error.
Status Unreadable(const Status& st) {
  if (st.reason() != kSealedValueUnreadable) return st;
  return FailedPrecondition(st.message(), std::string(kSealedValueUnreadable));
}

}  // namespace

crypto::SecretBytes Manager::HeldMasterKey() const { return crypto::SecretBytes(keys_->Current()->bytes.span()); }

std::string Manager::MasterKeyId() const { return keys_->Current()->id; }

Result<crypto::SecretBytes> Manager::StoreKey(store::Transaction& tx) const {
  VOUCH_ASSIGN_OR_RETURN(std::string check, ReadStoreKeyCheck(tx));
  const auto keys = keys_->All();
  // No check: no rotation ever ran, the store is under the one key there ever was (vouchd serve
  // checked at start that it opens the store).
  if (check.empty()) return crypto::SecretBytes(keys[0]->bytes.span());
  for (const auto& k : keys) {
    if (StoreKeyCheckOpens(check, k->bytes)) return crypto::SecretBytes(k->bytes.span());
  }
  return RotatedHere();
}

Result<std::vector<uint8_t>> Manager::SealSecret(store::Transaction& tx, std::span<const uint8_t> plaintext,
                                                 std::string_view aad) const {
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, StoreKey(tx));
  return crypto::Aes256GcmSeal(key.span(), plaintext, AsBytes(aad));
}

Result<crypto::SecretBytes> Manager::OpenSecret(store::Transaction& tx, std::span<const uint8_t> sealed,
                                                std::string_view aad) const {
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, StoreKey(tx));
  return crypto::Aes256GcmOpen(key.span(), sealed, AsBytes(aad));
}

Result<bool> Manager::MasterKeyCurrent() {
  bool current = false;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(std::string check, ReadStoreKeyCheck(tx));
    const auto keys = keys_->All();
    current = check.empty() || StoreKeyCheckOpens(check, keys[0]->bytes);
    std::shared_ptr<const MasterKeys::Key> next;
    {
      std::lock_guard<std::mutex> lock(keys_->mu);
      next = keys_->next;
    }
    // Committed by this process's rotation, not yet swapped in: still this process's key.
    if (!current && next) current = StoreKeyCheckOpens(check, next->bytes);
    return Status::Ok();
  }));
  return current;
}

Status Manager::AdoptMasterKey(const crypto::SecretBytes& key) {
  if (key.size() != 32) return InvalidArgument("a master key is 32 bytes", std::string(kMasterKeyMismatch));
  std::lock_guard<std::mutex> one(keys_->rotate_mu);
  const auto held = keys_->Current();
  if (Status st = CheckMasterKeyOpensStore(*db_, key); !st.ok()) {
    if (!IsMasterKeyRotated(st)) return st;
    return FailedPrecondition("the offered master key does not open the store's key check: not adopted",
                              std::string(kMasterKeyMismatch));
  }
  const std::string new_id = MasterKeyIdHex(key.span());
  if (new_id == held->id) return Status::Ok();  // already this key
  if (!options_.data_dir.empty()) {
    // As a rotation's file steps: both .next files durable, then the renames (the TLS key first,
    // master.key last). Interrupted, the next start finishes it: the store's check opens with
    // master.key.next (RecoverMasterKeyRotation).
    auto lock = MasterKeyLock::Acquire(options_.data_dir);
    if (!lock.ok()) return Aborted(lock.status().message(), std::string(kRotationInProgress));
    VOUCH_ASSIGN_OR_RETURN(MasterKeyFiles files, MasterKeyFilesOf(options_.data_dir));
    VOUCH_RETURN_IF_ERROR(WriteNextKeyFiles(files, held->bytes, &key, key));
    VOUCH_RETURN_IF_ERROR(RenameDurable(files.tls_key_next, files.tls_key));
    VOUCH_RETURN_IF_ERROR(RenameDurable(files.key_next, files.key));
  }
  {
    std::lock_guard<std::mutex> lock(keys_->mu);
    keys_->previous = keys_->current;
    keys_->current = MasterKeys::Make(crypto::SecretBytes(key.span()));
    keys_->next.reset();
  }
  return db_->Write([&](store::Transaction& tx) -> Status {
    return Audit(tx, *this, Principal::System(), "master_key.adopt", "master-key",
                 {{"key_id", new_id}, {"previous_key_id", held->id}});
  });
}

Result<json> Manager::RotateMasterKeyOnline(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (options_.data_dir.empty()) {
    return FailedPrecondition("this manager has no data directory to rotate the master key of",
                              std::string(kRotationUnavailable));
  }
  std::unique_lock<std::mutex> one(keys_->rotate_mu, std::try_to_lock);
  if (!one.owns_lock()) {
    return Aborted("a master-key rotation is already running: retry when it has finished",
                   std::string(kRotationInProgress));
  }
  auto lock = MasterKeyLock::Acquire(options_.data_dir);
  if (!lock.ok()) return Aborted(lock.status().message(), std::string(kRotationInProgress));
  const std::string& dir = options_.data_dir;
  VOUCH_ASSIGN_OR_RETURN(MasterKeyFiles files, MasterKeyFilesOf(dir));
  // A leftover of an interrupted adoption (vouchd start recovers any other).
  if (FileExists(files.key_next)) VOUCH_RETURN_IF_ERROR(RecoverMasterKeyRotationLocked(dir).status());
  const auto held = keys_->Current();
  // The store must be under the key this process holds: a member left behind rotates nothing.
  VOUCH_RETURN_IF_ERROR(db_->Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(std::string check, ReadStoreKeyCheck(tx));
    if (!check.empty() && !StoreKeyCheckOpens(check, held->bytes)) return RotatedHere();
    return Status::Ok();
  }));
  bool injected = false;
  auto step = [&](std::string_view name) -> Status {
    Status st = options_.master_key_step_hook ? options_.master_key_step_hook(name) : Status::Ok();
    if (!st.ok()) injected = true;
    return st;
  };

  // 1. The new key and the TLS key under it, beside the current files; the ring holds the new key
  // as `next` before the transaction can be seen by anyone.
  auto next = MasterKeys::Make(crypto::RandomSecret(32));
  if (Status st = WriteNextKeyFiles(files, held->bytes, nullptr, next->bytes); !st.ok()) {
    (void)RemoveIfExists(files.tls_key_next);
    (void)RemoveIfExists(files.key_next);
    return Unreadable(st);
  }
  {
    std::lock_guard<std::mutex> l(keys_->mu);
    keys_->next = next;
  }
  auto forget_next = [&] {
    std::lock_guard<std::mutex> l(keys_->mu);
    keys_->next.reset();
  };
  if (Status st = step("next_written"); !st.ok()) {
    forget_next();
    return st;
  }

  // 2. One serial transaction: every sealed column, the key check, the audit entry.
  std::map<std::string, int64_t> resealed;
  const int64_t rotated_at = Now();
  Status written = db_->Write(
      [&](store::Transaction& tx) -> Status {
        // Run again after a lost connection whose COMMIT went through (PostgreSQL): done already.
        VOUCH_ASSIGN_OR_RETURN(std::string check, ReadStoreKeyCheck(tx));
        if (!resealed.empty() && StoreKeyCheckOpens(check, next->bytes)) return Status::Ok();
        VOUCH_ASSIGN_OR_RETURN(resealed, ResealStore(tx, held->bytes, next->bytes));
        resealed["tls/server.key.sealed"] = 1;
        VOUCH_RETURN_IF_ERROR(Audit(tx, *this, p, "master_key.rotate", "master-key",
                                    {{"key_id", next->id},
                                     {"previous_key_id", held->id},
                                     {"resealed", resealed},
                                     {"online", true}}));
        return step("in_transaction");
      },
      store::WriteMode::kSerial);
  if (!written.ok()) {
    forget_next();
    // Rolled back: everything is under the old key. A crash leaves the .next files for the next
    // start (RecoverMasterKeyRotation rolls them back); a plain failure removes them now.
    if (!injected) {
      (void)RemoveIfExists(files.tls_key_next);
      (void)RemoveIfExists(files.key_next);
    }
    return Unreadable(written);
  }
  VOUCH_RETURN_IF_ERROR(step("committed"));
  // The swap, before DATA/master.key.lock is released.
  {
    std::lock_guard<std::mutex> l(keys_->mu);
    keys_->previous = keys_->current;
    keys_->current = next;
    keys_->next.reset();
  }
  // 3. The files: the TLS key, then the master key (its rename is the last step).
  VOUCH_RETURN_IF_ERROR(RenameDurable(files.tls_key_next, files.tls_key));
  VOUCH_RETURN_IF_ERROR(step("tls_renamed"));
  VOUCH_RETURN_IF_ERROR(RenameDurable(files.key_next, files.key));
  return json{{"key_id", next->id}, {"resealed", resealed}, {"rotated_at", TimeJson(rotated_at)}};
}

}  // namespace vouch::api
