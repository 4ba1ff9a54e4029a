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
#include "crypto/digest.h"
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


std::string ZoneCaKeyAadView(std::string_view id) { return ZoneCaKeyAad(std::string(id)); }

// The sealed BLOB columns of the store (docs/custody.md "Rotation"), each row's AAD naming table,
// column and row. An empty blob is a wiped key (retired or denied) and NULL an absent secret.
struct SealedColumn {
  const char* name;
  const char* table;
  const char* column;
  std::string (*aad)(std::string_view id);
};
constexpr SealedColumn kSealedColumns[] = {
    {"zones.ca_key_sealed", "zones", "ca_key_sealed", &ZoneCaKeyAadView},
    {"zones.heartbeat_key_sealed", "zones", "heartbeat_key_sealed", &ZoneHeartbeatKeyAad},
    {"zone_cas.key_sealed", "zone_cas", "key_sealed", &ZoneCaRowKeyAad},
    {"registries.secret_sealed", "registries", "secret_sealed", &RegistrySecretAad},
    {"app_signing_keys.key_sealed", "app_signing_keys", "key_sealed", &AppSigningKeyAad},
};

Result<store::Rows> SealedRows(store::Transaction& tx, const SealedColumn& c) {
  return tx.Query(std::string("SELECT id, ") + c.column + " FROM " + c.table + " WHERE " + c.column +
                  " IS NOT NULL ORDER BY id");
}
}  // namespace

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

// DATA/master.key.lock, held (flock, exclusive) by a rotation from its first file to its last
// rename and by a recovery, so that neither a second rotation nor a vouchd starting meanwhile
// can roll back or overwrite a rotation in flight. Released when the process dies.
Result<std::unique_ptr<MasterKeyLock>> MasterKeyLock::Acquire(const std::string& dir) {
  const std::string path = Join(dir, "master.key.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("opening " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Unavailable("a master-key rotation of " + dir + " is in progress (" + path + " is locked)",
                       std::string(kRotationInProgress));
  }
  return std::unique_ptr<MasterKeyLock>(new MasterKeyLock(fd));
}

MasterKeyLock::~MasterKeyLock() { ::close(fd_); }

std::string MasterKeyIdHex(std::span<const uint8_t> key) {
  auto mac = crypto::HmacSha256(key, AsBytes("vouch-master-key-id-v1"));
  return HexEncode(std::span<const uint8_t>(mac.data(), 16));
}

Result<KeyCheck> CheckStoreKey(store::Transaction& tx, const crypto::SecretBytes& key) {
  VOUCH_ASSIGN_OR_RETURN(Canary c, CheckCanary(tx, key));
  return c == Canary::kAbsent ? KeyCheck::kAbsent : c == Canary::kOpens ? KeyCheck::kOpens : KeyCheck::kDoesNotOpen;
}

Result<std::string> ReadStoreKeyCheck(store::Transaction& tx) { return ReadSetting(tx, kCheckSetting); }

bool StoreKeyCheckOpens(const std::string& check_b64, const crypto::SecretBytes& key) {
  if (check_b64.empty()) return false;
  auto sealed = Base64Decode(check_b64);
  return sealed.ok() && crypto::Aes256GcmOpen(key.span(), *sealed, AsBytes(kCheckAad)).ok();
}

Status WriteNextKeyFiles(const MasterKeyFiles& files, const crypto::SecretBytes& current,
                         const crypto::SecretBytes* fallback, const crypto::SecretBytes& next) {
  VOUCH_ASSIGN_OR_RETURN(std::string sealed, ReadWholeFile(files.tls_key, 1 << 20));
  auto pem = crypto::Aes256GcmOpen(current.span(), AsBytes(sealed), AsBytes(kTlsKeyAad));
  if (!pem.ok() && fallback != nullptr) pem = crypto::Aes256GcmOpen(fallback->span(), AsBytes(sealed), AsBytes(kTlsKeyAad));
  if (!pem.ok()) {
    return DataLoss(files.tls_key + " does not open with this process's master key: nothing rotated",
                    std::string(kSealedValueUnreadable));
  }
  VOUCH_ASSIGN_OR_RETURN(auto resealed, crypto::Aes256GcmSeal(next.span(), pem->span(), AsBytes(kTlsKeyAad)));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(files.tls_key_next, ToString(resealed), 0600));
  return WriteFileAtomic(files.key_next, next.view(), 0600);
}

Result<MasterKeyFiles> MasterKeyFilesOf(const std::string& dir) {
  VOUCH_ASSIGN_OR_RETURN(DirFiles d, ReadDirFiles(dir));
  MasterKeyFiles f;
  f.dir = dir;
  f.key = Join(dir, "master.key");
  f.key_next = Join(dir, "master.key.next");
  f.tls_key = d.tls_key_path;
  f.tls_key_next = d.tls_key_path + ".next";
  return f;
}

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
  VOUCH_ASSIGN_OR_RETURN(auto lock, MasterKeyLock::Acquire(dir));
  return RecoverMasterKeyRotationLocked(dir);
}

Result<std::string> RecoverMasterKeyRotationLocked(const std::string& dir) {
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

Result<RotationReport> RotateMasterKey(const std::string& dir, const Clock& clock, const RotateOptions& options) {
  auto hook = [&](std::string_view step) -> Status {
    return options.step_hook ? options.step_hook(step) : Status::Ok();
  };
  VOUCH_ASSIGN_OR_RETURN(auto lock, MasterKeyLock::Acquire(dir));
  VOUCH_RETURN_IF_ERROR(RecoverMasterKeyRotationLocked(dir).status());
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
  report.key_id = MasterKeyIdHex(next.span());
  Status written = db->Write([&](store::Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(report.resealed, ResealStore(tx, d.master_key, next));
    report.zone_ca_keys = static_cast<int>(report.resealed["zones.ca_key_sealed"]);
    report.node_ca_key = report.resealed["settings.node_ca_key_sealed"] > 0;
    VOUCH_RETURN_IF_ERROR(store::AppendAudit(tx, clock.Now(), options.actor, report.audit_action, "master-key", "ok",
                                             {{"zone_ca_keys", report.zone_ca_keys},
                                              {"node_ca_key", report.node_ca_key},
                                              {"tls_key", report.tls_key},
                                              {"resealed", report.resealed},
                                              {"key_id", report.key_id},
                                              {"online", false}}));
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
  report.resealed["tls/server.key.sealed"] = 1;
  return report;
}

Result<std::map<std::string, int64_t>> ResealStore(store::Transaction& tx, const crypto::SecretBytes& from,
                                                   const crypto::SecretBytes& to) {
  std::map<std::string, int64_t> counts;
  for (const SealedColumn& c : kSealedColumns) {
    counts[c.name] = 0;
    VOUCH_ASSIGN_OR_RETURN(store::Rows rows, SealedRows(tx, c));
    for (const store::Row& r : rows) {
      const std::string id = r.Str(0);
      const store::Blob old = r.Bytes(1);
      if (old.empty()) continue;
      auto value = crypto::Aes256GcmOpen(from.span(), old, AsBytes(c.aad(id)));
      if (!value.ok()) {
        return DataLoss(std::string(c.table) + " " + id + "'s " + c.column +
                            " does not open with the current master key: nothing rotated",
                        std::string(kSealedValueUnreadable));
      }
      VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(to.span(), value->span(), AsBytes(c.aad(id))));
      VOUCH_RETURN_IF_ERROR(tx.Exec(std::string("UPDATE ") + c.table + " SET " + c.column + " = ? WHERE id = ?",
                                    {store::Blob(sealed), id})
                                .status());
      ++counts[c.name];
    }
  }
  counts["settings.node_ca_key_sealed"] = 0;
  VOUCH_ASSIGN_OR_RETURN(std::string node_b64, ReadSetting(tx, kNodeCaKeySetting));
  if (!node_b64.empty()) {
    auto sealed = Base64Decode(node_b64);
    auto key = sealed.ok() ? crypto::Aes256GcmOpen(from.span(), *sealed, AsBytes(kNodeCaAad))
                           : Result<crypto::SecretBytes>(sealed.status());
    if (!key.ok()) {
      return DataLoss("the node CA key does not open with the current master key: nothing rotated",
                      std::string(kSealedValueUnreadable));
    }
    VOUCH_ASSIGN_OR_RETURN(auto resealed, crypto::Aes256GcmSeal(to.span(), key->span(), AsBytes(kNodeCaAad)));
    VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE settings SET value = ? WHERE key = ?",
                                  {Base64Encode(resealed), std::string(kNodeCaKeySetting)})
                              .status());
    counts["settings.node_ca_key_sealed"] = 1;
  }
  VOUCH_ASSIGN_OR_RETURN(auto check, crypto::Aes256GcmSeal(to.span(), AsBytes(kCheckPlaintext), AsBytes(kCheckAad)));
  VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM settings WHERE key = ?", {std::string(kCheckSetting)}).status());
  VOUCH_RETURN_IF_ERROR(
      tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)", {std::string(kCheckSetting), Base64Encode(check)})
          .status());
  return counts;
}

int64_t SealedCensus::Opened() const {
  int64_t n = 0;
  for (const auto& [k, v] : opens) n += v;
  return n;
}

int64_t SealedCensus::Failed() const {
  int64_t n = 0;
  for (const auto& [k, v] : fails) n += v;
  return n;
}

Result<SealedCensus> CensusSealedValues(store::Database& db, const crypto::SecretBytes& key) {
  SealedCensus census;
  VOUCH_RETURN_IF_ERROR(db.Read([&](store::Transaction& tx) -> Status {
    census = SealedCensus{};
    auto count = [&](const std::string& column, bool opens) {
      census.opens[column] += opens ? 1 : 0;
      census.fails[column] += opens ? 0 : 1;
    };
    for (const SealedColumn& c : kSealedColumns) {
      census.opens[c.name] += 0;  // every column listed, also when it holds nothing
      census.fails[c.name] += 0;
      VOUCH_ASSIGN_OR_RETURN(store::Rows rows, SealedRows(tx, c));
      for (const store::Row& r : rows) {
        const store::Blob sealed = r.Bytes(1);
        if (sealed.empty()) continue;
        count(c.name, crypto::Aes256GcmOpen(key.span(), sealed, AsBytes(c.aad(r.Str(0)))).ok());
      }
    }
    for (const auto& [setting, aad] : {std::pair<const char*, const char*>{kNodeCaKeySetting, kNodeCaAad},
                                       std::pair<const char*, const char*>{kCheckSetting, kCheckAad}}) {
      VOUCH_ASSIGN_OR_RETURN(std::string b64, ReadSetting(tx, setting));
      const std::string column = std::string("settings.") + setting;
      census.opens[column] += 0;
      census.fails[column] += 0;
      if (b64.empty()) continue;
      auto sealed = Base64Decode(b64);
      count(column, sealed.ok() && crypto::Aes256GcmOpen(key.span(), *sealed, AsBytes(aad)).ok());
    }
    return Status::Ok();
  }));
  return census;
}

}  // namespace vouch::api
