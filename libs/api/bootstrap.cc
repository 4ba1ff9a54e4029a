#include "api/bootstrap.h"

#include <sys/stat.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "api/ca_adapter.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/host_port.h"
#include "crypto/aead.h"
#include "crypto/random.h"

namespace vouch::api {
namespace {

constexpr char kTlsKeyAad[] = "vouch:service-tls-key";

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

}  // namespace

Status ParseListen(const std::string& listen, std::string* host, uint16_t* port) {
  auto parsed = ParseHostPort(listen);
  if (!parsed.ok()) {
    return InvalidArgument("listen address must be host:port, got '" + listen + "' (" +
                               parsed.status().message() + ")",
                           std::string(kInvalidListen));
  }
  *host = parsed->host;
  *port = parsed->port;
  return Status::Ok();
}

Result<InitResult> InitDataDir(const InitOptions& o, const Clock& clock) {
  if (o.data_dir.empty())
    return InvalidArgument("--data-dir is required", std::string(kInvalidArgument));
  if (!IsValidName(o.admin_user))
    return InvalidArgument("invalid admin user name '" + o.admin_user + "'",
                           std::string(kInvalidName));
  std::string host;
  uint16_t port;
  VOUCH_RETURN_IF_ERROR(ParseListen(o.listen, &host, &port));
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return InvalidArgument("--tls-cert and --tls-key go together", std::string(kInvalidArgument));
  }
  if (FileExists(Join(o.data_dir, "master.key")) || FileExists(Join(o.data_dir, "config.json"))) {
    return AlreadyExists("'" + o.data_dir + "' already holds a vouchd data directory",
                         std::string(kAlreadyInitialized));
  }
  VOUCH_RETURN_IF_ERROR(MakeDirs(o.data_dir, 0700));
  VOUCH_RETURN_IF_ERROR(MakeDirs(Join(o.data_dir, "tls"), 0700));

  crypto::SecretBytes master = crypto::RandomSecret(32);
  std::string store_url = o.store_url.empty() ? "sqlite:" + Join(o.data_dir, "vouch.db") : o.store_url;

  // The TLS identity first: nothing is written to the store if it fails.
  std::string chain_pem;
  crypto::SecretBytes key_pem;
  std::string service_ca_path = Join(o.data_dir, "service-ca.pem");
  if (!o.tls_cert_file.empty()) {
    VOUCH_ASSIGN_OR_RETURN(chain_pem, ReadWholeFile(o.tls_cert_file, 1 << 20));
    VOUCH_ASSIGN_OR_RETURN(std::string k, ReadWholeFile(o.tls_key_file, 1 << 20));
    key_pem = crypto::SecretBytes(k);
  } else {
    VOUCH_ASSIGN_OR_RETURN(ServiceTlsMaterial tls, CreateServiceTls(o.tls_dns_names, o.tls_ip_addresses, clock.Now()));
    chain_pem = tls.server_chain_pem;
    key_pem = std::move(tls.server_key_pem);
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(service_ca_path, tls.ca_cert_pem, 0644));
  }
  VOUCH_ASSIGN_OR_RETURN(auto sealed_key, crypto::Aes256GcmSeal(master.span(), key_pem.span(), AsBytes(kTlsKeyAad)));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(o.data_dir, "tls/server.pem"), chain_pem, 0644));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(o.data_dir, "tls/server.key.sealed"), ToString(sealed_key), 0600));

  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenDatabase(store_url));
  VOUCH_RETURN_IF_ERROR(db->Migrate().status());
  VOUCH_ASSIGN_OR_RETURN(auto manager, Manager::Create(db.get(), crypto::SecretBytes(master.span()), &clock));
  Principal system = Principal::System();
  VOUCH_RETURN_IF_ERROR(manager->CreateUser(system, o.admin_user, "admin", o.admin_password).status());
  ZoneSpec zone;
  zone.name = "default";
  zone.allow_sim = o.dev;
  VOUCH_RETURN_IF_ERROR(manager->CreateZone(system, zone).status());
  VOUCH_ASSIGN_OR_RETURN(std::string zone_ca, manager->ZoneCaPem("default"));
  std::string zone_ca_path = Join(o.data_dir, "zone-default-ca.pem");
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(zone_ca_path, zone_ca, 0644));

  if (o.dev) {
    // A sim TEE vendor for development: INSECURE, see docs/sim.md. vouchd serve trusts its
    // collateral for zones that allow sim; vouch-agent --tee sim --sim DIR/sim plays its CPU.
    VOUCH_RETURN_IF_ERROR(attest::SimVendor::Create(Join(o.data_dir, "sim")).status());
  }
  nlohmann::json config = {{"store", store_url},
                           {"listen", o.listen},
                           {"tls_cert", "tls/server.pem"},
                           {"tls_key_sealed", "tls/server.key.sealed"},
                           {"dev", o.dev}};
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(o.data_dir, "config.json"), config.dump(2) + "\n", 0600));
  // The master key is written last: its presence marks a complete data directory.
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(o.data_dir, "master.key"), master.view(), 0600));
  return InitResult{o.tls_cert_file.empty() ? service_ca_path : "", zone_ca_path, store_url};
}

Status WriteJoinedDataDir(const JoinedDataDir& j) {
  const std::string& dir = j.data_dir;
  if (dir.empty()) return InvalidArgument("--data-dir is required", std::string(kInvalidArgument));
  if (FileExists(Join(dir, "master.key")) || FileExists(Join(dir, "config.json"))) {
    return AlreadyExists("'" + dir + "' already holds a vouchd data directory",
                         std::string(kAlreadyInitialized));
  }
  std::string host;
  uint16_t port;
  VOUCH_RETURN_IF_ERROR(ParseListen(j.listen, &host, &port));
  if (j.master_key.size() != 32)
    return InvalidArgument("the cluster key must be 32 bytes", std::string(kInvalidMasterKey));
  if (!crypto::Aes256GcmOpen(j.master_key.span(), j.tls_key_sealed, AsBytes(kTlsKeyAad)).ok()) {
    return DataLoss("the member's TLS key does not unseal with the cluster key",
                    std::string(kTlsKeyUnsealFailed));
  }
  // The shared store must be reachable (and is migrated, as any member does at start).
  VOUCH_ASSIGN_OR_RETURN(auto db, store::OpenDatabase(j.store_url));
  VOUCH_RETURN_IF_ERROR(db->Migrate().status());

  VOUCH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  VOUCH_RETURN_IF_ERROR(MakeDirs(Join(dir, "tls"), 0700));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "tls/server.pem"), j.tls_chain_pem, 0644));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "tls/server.key.sealed"), ToString(j.tls_key_sealed), 0600));
  if (!j.service_ca_pem.empty()) {
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "service-ca.pem"), j.service_ca_pem, 0644));
  }
  if (!j.collateral_dir.empty()) {
    VOUCH_RETURN_IF_ERROR(MakeDirs(Join(dir, "sim"), 0700));
    for (const char* name : {"trustedRootCaCert.pem", "pckSignChain.pem", "pckCert.pem", "tcbSignChain.pem",
                             "rootCaCrl.der", "intermediateCaCrl.der", "tcbInfo.json", "qeIdentity.json"}) {
      auto data = ReadWholeFile(Join(j.collateral_dir, name), 4 << 20);
      if (data.ok()) VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(Join(dir, "sim"), name), *data, 0644));
    }
  }
  nlohmann::json config = {{"store", j.store_url},
                           {"listen", j.listen},
                           {"tls_cert", "tls/server.pem"},
                           {"tls_key_sealed", "tls/server.key.sealed"},
                           {"dev", false},
                           {"cluster", {{"allow_sim", j.allow_sim}}}};
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "config.json"), config.dump(2) + "\n", 0600));
  return WriteFileAtomic(Join(dir, "master.key"), j.master_key.view(), 0600);
}

Result<cluster::JoinPolicy> LoadJoinPolicy(const std::string& dir) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(Join(dir, "config.json"), 1 << 20));
  auto config = nlohmann::json::parse(text, nullptr, false);
  if (!config.is_object())
    return DataLoss(Join(dir, "config.json") + " is not valid JSON", std::string(kInvalidConfig));
  nlohmann::json c = config.value("cluster", nlohmann::json::object());
  if (!c.is_object())
    return DataLoss("config.json: \"cluster\" must be an object", std::string(kInvalidConfig));
  cluster::JoinPolicy policy;
  VOUCH_ASSIGN_OR_RETURN(cluster::Measurement self, cluster::SelfMeasurement());
  policy.measurements.push_back(self);
  for (const auto& m : c.value("measurements", nlohmann::json::array())) {
    auto bytes = m.is_string() ? HexDecode(m.get<std::string>()) : Result<std::vector<uint8_t>>(InvalidArgument("x"));
    if (!bytes.ok() || bytes->size() != 32) {
      return DataLoss("config.json: cluster.measurements must hold 64-digit hex strings",
                      std::string(kInvalidConfig));
    }
    cluster::Measurement mm;
    std::copy(bytes->begin(), bytes->end(), mm.begin());
    policy.measurements.push_back(mm);
  }
  policy.allow_sim = c.value("allow_sim", config.value("dev", false));
  policy.collateral_dir = c.value("collateral_dir", Join(dir, "sim"));
  return policy;
}

Result<DataDir> OpenDataDir(const std::string& dir) {
  // A master-key rotation that was interrupted is finished or rolled back first (master_key.h).
  if (FileExists(Join(dir, "master.key.next"))) VOUCH_RETURN_IF_ERROR(RecoverMasterKeyRotation(dir).status());
  DataDir d;
  d.dir = dir;
  std::string key_path = Join(dir, "master.key");
  struct stat st;
  if (::stat(key_path.c_str(), &st) != 0) {
    return NotFound("'" + dir + "' is not an initialised data directory (run vouchd init)",
                    std::string(kNotInitialized));
  }
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(key_path + " is accessible by group or others; chmod 600 it",
                            std::string(kInsecureMasterKey));
  }
  VOUCH_ASSIGN_OR_RETURN(std::string key, ReadWholeFile(key_path, 64));
  if (key.size() != 32)
    return DataLoss(key_path + " is not a 32-byte key", std::string(kInvalidMasterKey));
  d.master_key = crypto::SecretBytes(key);
  std::fill(key.begin(), key.end(), '\0');
  VOUCH_ASSIGN_OR_RETURN(std::string config_text, ReadWholeFile(Join(dir, "config.json"), 1 << 20));
  auto config = nlohmann::json::parse(config_text, nullptr, false);
  if (!config.is_object())
    return DataLoss(Join(dir, "config.json") + " is not valid JSON", std::string(kInvalidConfig));
  d.store_url = config.value("store", "sqlite:" + Join(dir, "vouch.db"));
  d.listen = config.value("listen", std::string("127.0.0.1:8443"));
  VOUCH_ASSIGN_OR_RETURN(d.tls_chain_pem, ReadWholeFile(Join(dir, config.value("tls_cert", std::string("tls/server.pem")))));
  VOUCH_ASSIGN_OR_RETURN(std::string sealed,
                         ReadWholeFile(Join(dir, config.value("tls_key_sealed", std::string("tls/server.key.sealed")))));
  auto key_pem = crypto::Aes256GcmOpen(d.master_key.span(), AsBytes(sealed), AsBytes(kTlsKeyAad));
  if (!key_pem.ok())
    return DataLoss("the TLS key cannot be unsealed with master.key",
                    std::string(kTlsKeyUnsealFailed));
  d.tls_key_pem = std::move(*key_pem);
  return d;
}

}  // namespace vouch::api
