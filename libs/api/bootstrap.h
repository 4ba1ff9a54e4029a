#pragma once

// Creating and opening a vouchd data directory.
//
// DIR/
//   master.key          32 random bytes, mode 0600: the cluster master key. Zone CA keys, the
//                       TLS key and other secrets at rest are sealed under it (AES-256-GCM).
//                       On TEE hardware this file is replaced by a sealed blob (docs/adr).
//   config.json         store URL, listen address, TLS file names
//   vouch.db            the SQLite store (default)
//   service-ca.pem      the CA that clients use to trust the manager's HTTPS endpoint
//   tls/server.pem      server certificate chain
//   tls/server.key.sealed  its private key, sealed under the master key
//   sim/                (--dev) a sim TEE vendor; the default zone then accepts sim evidence

#include <memory>
#include <string>
#include <vector>

#include "api/manager.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "store/database.h"

namespace vouch::api {

struct InitOptions {
  std::string data_dir;
  std::string admin_user;
  std::string admin_password;  // read from --admin-password-file by the caller
  std::string store_url;       // "" = sqlite in data_dir
  std::string listen = "127.0.0.1:8443";
  bool dev = false;
  std::string tls_cert_file;   // operator-supplied certificate chain (optional)
  std::string tls_key_file;    // operator-supplied key (optional; sealed into the data dir)
  std::vector<std::string> tls_dns_names = {"localhost"};
  std::vector<std::string> tls_ip_addresses = {"127.0.0.1", "::1"};
};

struct InitResult {
  std::string service_ca_path;
  std::string default_zone_ca_path;
  std::string store_url;
};

// Creates a new data directory. Fails with AlreadyExists if DIR already holds a manager.
Result<InitResult> InitDataDir(const InitOptions& options, const Clock& clock);

struct DataDir {
  std::string dir;
  std::string store_url;
  std::string listen;
  crypto::SecretBytes master_key;
  std::string tls_chain_pem;
  crypto::SecretBytes tls_key_pem;
};

// Opens an existing data directory; checks the master key file's permissions.
Result<DataDir> OpenDataDir(const std::string& dir);

// What `vouchd join` received from a cluster member (docs/cluster.md).
struct JoinedDataDir {
  std::string data_dir;
  std::string store_url;  // the cluster's shared PostgreSQL
  std::string listen = "127.0.0.1:8443";
  crypto::SecretBytes master_key;
  std::string tls_chain_pem;
  std::vector<uint8_t> tls_key_sealed;
  std::string service_ca_pem;  // may be empty
  bool allow_sim = false;      // this member accepts sim evidence from later joiners
  // Attestation collateral to copy into DIR/sim so this member can admit later joiners (the
  // public files only: never a sim vendor's sim-secrets.json). Empty: none.
  std::string collateral_dir;
};
// Writes a data directory for a member that joined a cluster: checks that the TLS key unseals
// with the master key and that the store is reachable and migrated, then writes config.json,
// the TLS files, service-ca.pem and, last, master.key. Fails with AlreadyExists if DIR is in use.
Status WriteJoinedDataDir(const JoinedDataDir& joined);

// The join policy of the member in DIR (config.json "cluster"): approved measurements = this
// binary's own plus "cluster.measurements" (hex); allow_sim = "cluster.allow_sim" (default: the
// dev flag); collateral = "cluster.collateral_dir" (default DIR/sim).
Result<cluster::JoinPolicy> LoadJoinPolicy(const std::string& dir);

// Parses "host:port" ("127.0.0.1:8443", "[::1]:8443").
Status ParseListen(const std::string& listen, std::string* host, uint16_t* port);

}  // namespace vouch::api
