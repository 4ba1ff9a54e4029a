#include "api/master_key.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/bootstrap.h"
#include "api/heartbeat_keys.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "api/zone_ca_rotation.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "store/audit.h"

namespace vouch::api {
namespace {

// The AADs of the sealed values. They are those of manager_zones.cc, manager_nodes.cc and
// bootstrap.cc; MasterKeyRotation.EverySealedValueOpensWithTheNewKeyOnly opens each value
// through those files after a rotation, so a drift fails there.
std::string ZoneCaKeyAad(const std::string& zone_id) { return "vouch:zone-ca-key:" + zone_id; }
constexpr char kNodeCaAad[] = "vouch:node-ca-key";
constexpr char kTlsKeyAad[] = "vouch:service-tls-key";
constexpr char kCheckAad[] = "vouch:master-key-check";
constexpr char kNodeCaKeySetting[] = "node_ca_key_sealed";
constexpr char kCheckSetting[] = "master_key_check";
constexpr char kCheckPlaintext[] = "vouch master key check v1";

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

struct DirFiles {
  std::string store_url;
  std::string tls_key_path;
};

Result<DirFiles> ReadDirFiles(const std::string& dir) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(Join(dir, "config.json"), 1 << 20));
  auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object()) return DataLoss(Join(dir, "config.json") + " is not valid JSON", std::string(kInvalidConfig));
  DirFiles f;
  f.store_url = config.value("store", "sqlite:" + Join(dir, "vouch.db"));
  f.tls_key_path = Join(dir, config.value("tls_key_sealed", std::string("tls/server.key.sealed")));
  return f;
}

Status SyncDir(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Internal("opening " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Internal("fsync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

Status RenameDurable(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Internal("renaming " + from + " to " + to + ": " + std::strerror(errno));
  }
  return SyncDir(to);
}

Status RemoveIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Internal("removing " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::string> ReadSetting(store::Transaction& tx, const std::string& key) {
  VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query("SELECT value FROM settings WHERE key = ?", {key}));
  if (rows.empty()) return std::string();
  return rows[0].Str(0);
}

// The canary's state under `key`: absent, opens, or does not open.
enum class Canary { kAbsent, kOpens, kDoesNotOpen };

Result<Canary> CheckCanary(store::Transaction& tx, const crypto::SecretBytes& key) {
  VOUCH_ASSIGN_OR_RETURN(std::string b64, ReadSetting(tx, kCheckSetting));
  if (b64.empty()) return Canary::kAbsent;
  auto sealed = Base64Decode(b64);
  if (!sealed.ok()) return Canary::kDoesNotOpen;
  return crypto::Aes256GcmOpen(key.span(), *sealed, AsBytes(kCheckAad)).ok() ? Canary::kOpens : Canary::kDoesNotOpen;
}

Status Rotated(const std::string& what) {
  return FailedPrecondition(what +
                                " does not open with this master key: the cluster's master key was rotated "
                                "(vouchd master-key rotate). A member that only holds the old key must re-join "
                                "(docs/custody.md)",
                            std::string(kMasterKeyRotated));
}

// DATA/master.key.lock, held (flock, exclusive) by a rotation from its first file to its last
// rename and by a recovery, so that neither a second rotation nor a vouchd starting meanwhile
// can roll back or overwrite a rotation in flight. Released when the process dies.
class RotationLock {
 public:
  static Result<std::unique_ptr<RotationLock>> Acquire(const std::string& dir) {
    const std::string path = Join(dir, "master.key.lock");
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Internal("opening " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return Unavailable("a master-key rotation of " + dir + " is in progress (" + path + " is locked)",
                         std::string(kRotationInProgress));
    }
    return std::unique_ptr<RotationLock>(new RotationLock(fd));
  }
  ~RotationLock() { ::close(fd_); }
  RotationLock(const RotationLock&) = delete;
  RotationLock& operator=(const RotationLock&) = delete;

 private:
  explicit RotationLock(int fd) : fd_(fd) {}
  int fd_;
};

Result<std::string> RecoverLocked(const std::string& dir);

}  // namespace

Status CheckMasterKeyOpensStore(store::Database& db, const crypto::SecretBytes& master_key) {
  return db.Read([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Canary canary, CheckCanary(tx, master_key));
    if (canary == Canary::kOpens) return Status::Ok();
    if (canary == Canary::kDoesNotOpen) return Rotated("the store's master key check");
    VOUCH_ASSIGN_OR_RETURN(store::Rows zones, tx.Query("SELECT id, ca_key_sealed FROM zones"));
    for (const store::Row& z : zones) {
      if (!crypto::Aes256GcmOpen(master_key.span(), z.Bytes(1), AsBytes(ZoneCaKeyAad(z.Str(0)))).ok()) {
        return Rotated("zone " + z.Str(0) + "'s CA key");
      }
    }
    VOUCH_ASSIGN_OR_RETURN(store::Rows hb_zones,
                           tx.Query("SELECT id, heartbeat_key_sealed FROM zones WHERE heartbeat_key_sealed IS NOT NULL"));
    for (const store::Row& z : hb_zones) {
      if (!crypto::Aes256GcmOpen(master_key.span(), z.Bytes(1), AsBytes(ZoneHeartbeatKeyAad(z.Str(0)))).ok()) {
        return Rotated("zone " + z.Str(0) + "'s heartbeat key");
      }
    }
    VOUCH_ASSIGN_OR_RETURN(std::string node_b64, ReadSetting(tx, kNodeCaKeySetting));
    if (!node_b64.empty()) {
      auto sealed = Base64Decode(node_b64);
      if (!sealed.ok() || !crypto::Aes256GcmOpen(master_key.span(), *sealed, AsBytes(kNodeCaAad)).ok()) {
        return Rotated("the node CA key");
      }
    }
    return Status::Ok();
  });
}

Result<std::string> RecoverMasterKeyRotation(const std::string& dir) {
  if (!FileExists(Join(dir, "master.key.next"))) return std::string("none");
  VOUCH_ASSIGN_OR_RETURN(auto lock, RotationLock::Acquire(dir));
  return RecoverLocked(dir);
}

namespace {
Result<std::string> RecoverLocked(const std::string& dir) {
  const std::string next_path = Join(dir, "master.key.next");
  if (!FileExists(next_path)) return std::string("none");
  VOUCH_ASSIGN_OR_RETURN(DirFiles files, ReadDirFiles(dir));
  VOUCH_ASSIGN_OR_RETURN(std::string next_text, ReadWholeFile(next_path, 64));
  crypto::SecretBytes next(next_text);
  std::fill(next_text.begin(), next_text.end(), '\0');
  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenDatabase(files.store_url));
  bool committed = false;
  if (next.size() == 32) {
    VOUCH_RETURN_IF_ERROR(db->Read([&](store::Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Canary c, CheckCanary(tx, next));
      committed = c == Canary::kOpens;
      return Status::Ok();
    }));
  }
  if (committed) {
    // The transaction committed: finish the file swap (the TLS key first, then the key).
    if (FileExists(files.tls_key_path + ".next")) {
      VOUCH_RETURN_IF_ERROR(RenameDurable(files.tls_key_path + ".next", files.tls_key_path));
    }
    VOUCH_RETURN_IF_ERROR(RenameDurable(next_path, Join(dir, "master.key")));
    return std::string("completed");
  }
  // It did not: the store and the files are still wholly under master.key.
  VOUCH_RETURN_IF_ERROR(RemoveIfExists(files.tls_key_path + ".next"));
  VOUCH_RETURN_IF_ERROR(RemoveIfExists(next_path));
  VOUCH_RETURN_IF_ERROR(SyncDir(next_path));
  return std::string("rolled_back");
}
}  // namespace

Result<RotationReport> RotateMasterKey(const std::string& dir, const Clock& clock, const RotateOptions& options) {
  auto hook = [&](std::string_view step) -> Status {
    return options.step_hook ? options.step_hook(step) : Status::Ok();
  };
  VOUCH_ASSIGN_OR_RETURN(auto lock, RotationLock::Acquire(dir));
  VOUCH_RETURN_IF_ERROR(RecoverLocked(dir).status());
  VOUCH_ASSIGN_OR_RETURN(DataDir d, OpenDataDir(dir));  // no master.key.next now: no recovery, no lock
  VOUCH_ASSIGN_OR_RETURN(DirFiles files, ReadDirFiles(dir));
  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenDatabase(d.store_url));
  VOUCH_RETURN_IF_ERROR(db->Migrate().status());
  if (Status st = CheckMasterKeyOpensStore(*db, d.master_key); !st.ok()) {
    return FailedPrecondition("nothing rotated: " + st.message(), std::string(kSealedValueUnreadable));
  }

  // 1. The new key and the TLS key under it, beside the current files.
  crypto::SecretBytes next = crypto::RandomSecret(32);
  VOUCH_ASSIGN_OR_RETURN(auto tls_sealed, crypto::Aes256GcmSeal(next.span(), d.tls_key_pem.span(), AsBytes(kTlsKeyAad)));
  const std::string next_path = Join(dir, "master.key.next");
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(files.tls_key_path + ".next", ToString(tls_sealed), 0600));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(next_path, next.view(), 0600));
  bool injected = false;
  auto step = [&](std::string_view name) -> Status {
    Status st = hook(name);
    if (!st.ok()) injected = true;
    return st;
  };
  VOUCH_RETURN_IF_ERROR(step("next_written"));

  // 2. Every sealed value, the canary and the audit entry in one transaction.
  RotationReport report;
  report.tls_key = true;
  Status written = db->Write([&](store::Transaction& tx) -> Status {
    report.zone_ca_keys = 0;
    report.node_ca_key = false;
    VOUCH_ASSIGN_OR_RETURN(store::Rows zones, tx.Query("SELECT id, ca_key_sealed FROM zones ORDER BY id"));
    for (const store::Row& z : zones) {
      const std::string id = z.Str(0);
      auto key = crypto::Aes256GcmOpen(d.master_key.span(), z.Bytes(1), AsBytes(ZoneCaKeyAad(id)));
      if (!key.ok()) {
        return DataLoss("zone " + id + "'s CA key does not open with master.key: nothing rotated",
                        std::string(kSealedValueUnreadable));
      }
      VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(next.span(), key->span(), AsBytes(ZoneCaKeyAad(id))));
      VOUCH_RETURN_IF_ERROR(
          tx.Exec("UPDATE zones SET ca_key_sealed = ? WHERE id = ?", {store::Blob(sealed), id}).status());
      ++report.zone_ca_keys;
    }
    // The zones' heartbeat keys (api/heartbeat_keys.h; made on a zone's first MAC-capable issuance).
    VOUCH_ASSIGN_OR_RETURN(
        store::Rows hb_zones,
        tx.Query("SELECT id, heartbeat_key_sealed FROM zones WHERE heartbeat_key_sealed IS NOT NULL ORDER BY id"));
    for (const store::Row& z : hb_zones) {
      const std::string id = z.Str(0);
      auto key = crypto::Aes256GcmOpen(d.master_key.span(), z.Bytes(1), AsBytes(ZoneHeartbeatKeyAad(id)));
      if (!key.ok()) {
        return DataLoss("zone " + id + "'s heartbeat key does not open with master.key: nothing rotated",
                        std::string(kSealedValueUnreadable));
      }
      VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(next.span(), key->span(), AsBytes(ZoneHeartbeatKeyAad(id))));
      VOUCH_RETURN_IF_ERROR(
          tx.Exec("UPDATE zones SET heartbeat_key_sealed = ? WHERE id = ?", {store::Blob(sealed), id}).status());
    }
    // Registry secrets and app signing keys (api/registry_access.h). An empty blob is a wiped key
    // (retired or denied) and a NULL secret an anonymous registry: nothing to re-seal.
    struct SealedColumn {
      const char* table;
      const char* column;
      std::string (*aad)(std::string_view id);
    };
    for (const SealedColumn& c : {SealedColumn{"registries", "secret_sealed", &RegistrySecretAad},
                                  SealedColumn{"app_signing_keys", "key_sealed", &AppSigningKeyAad},
                                  SealedColumn{"zone_cas", "key_sealed", &ZoneCaRowKeyAad}}) {
      VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(std::string("SELECT id, ") + c.column + " FROM " + c.table +
                                                        " WHERE " + c.column + " IS NOT NULL ORDER BY id"));
      for (const store::Row& r : rows) {
        const std::string id = r.Str(0);
        const store::Blob old = r.Bytes(1);
        if (old.empty()) continue;
        auto value = crypto::Aes256GcmOpen(d.master_key.span(), old, AsBytes(c.aad(id)));
        if (!value.ok()) {
          return DataLoss(std::string(c.table) + " " + id + "'s " + c.column +
                              " does not open with master.key: nothing rotated",
                          std::string(kSealedValueUnreadable));
        }
        VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(next.span(), value->span(), AsBytes(c.aad(id))));
        VOUCH_RETURN_IF_ERROR(tx.Exec(std::string("UPDATE ") + c.table + " SET " + c.column + " = ? WHERE id = ?",
                                      {store::Blob(sealed), id})
                                  .status());
      }
    }
    VOUCH_ASSIGN_OR_RETURN(std::string node_b64, ReadSetting(tx, kNodeCaKeySetting));
    if (!node_b64.empty()) {
      auto sealed = Base64Decode(node_b64);
      auto key = sealed.ok() ? crypto::Aes256GcmOpen(d.master_key.span(), *sealed, AsBytes(kNodeCaAad))
                             : Result<crypto::SecretBytes>(sealed.status());
      if (!key.ok()) {
        return DataLoss("the node CA key does not open with master.key: nothing rotated",
                        std::string(kSealedValueUnreadable));
      }
      VOUCH_ASSIGN_OR_RETURN(auto resealed, crypto::Aes256GcmSeal(next.span(), key->span(), AsBytes(kNodeCaAad)));
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE settings SET value = ? WHERE key = ?",
                                    {Base64Encode(resealed), std::string(kNodeCaKeySetting)})
                                .status());
      report.node_ca_key = true;
    }
    VOUCH_ASSIGN_OR_RETURN(auto check, crypto::Aes256GcmSeal(next.span(), AsBytes(kCheckPlaintext), AsBytes(kCheckAad)));
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM settings WHERE key = ?", {std::string(kCheckSetting)}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)",
                                  {std::string(kCheckSetting), Base64Encode(check)})
                              .status());
    VOUCH_RETURN_IF_ERROR(store::AppendAudit(tx, clock.Now(), options.actor, report.audit_action, "master-key", "ok",
                                             {{"zone_ca_keys", report.zone_ca_keys},
                                              {"node_ca_key", report.node_ca_key},
                                              {"tls_key", report.tls_key}}));
    return step("in_transaction");
  });
  if (!written.ok()) {
    // Rolled back: the store is under the old key. A crash here leaves the .next files for
    // RecoverMasterKeyRotation; a plain failure removes them now.
    if (!injected) {
      (void)RemoveIfExists(files.tls_key_path + ".next");
      (void)RemoveIfExists(next_path);
    }
    return written;
  }
  VOUCH_RETURN_IF_ERROR(step("committed"));
  // 3. The files: the TLS key, then the master key (its rename is the last step).
  VOUCH_RETURN_IF_ERROR(RenameDurable(files.tls_key_path + ".next", files.tls_key_path));
  VOUCH_RETURN_IF_ERROR(step("tls_renamed"));
  VOUCH_RETURN_IF_ERROR(RenameDurable(next_path, Join(dir, "master.key")));
  return report;
}

}  // namespace vouch::api
