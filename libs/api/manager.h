#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "cluster/join.h"
#include "crypto/kdf.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"
#include "policy/policy.h"
#include "store/database.h"

namespace vouch::pki {
class CaSigner;
}
namespace vouch::http {
class BoundedSemaphore;
}
namespace vouch::attest {
class DcapVerifier;
struct Verdict;
}
namespace vouch::collateral {
class Service;
}

namespace vouch::api {

using nlohmann::json;

enum class Role { kViewer = 0, kMember = 1, kApprover = 2, kAdmin = 3 };
std::string_view RoleName(Role r);
Result<Role> ParseRole(std::string_view s);

// Who is calling. Built by authentication; never from request data.
struct Principal {
  enum class Kind { kUser, kApiKey, kNode, kSystem };
  Kind kind = Kind::kSystem;
  std::string id;    // user id, api key id or node id
  std::string name;  // user name (for API keys: the owning user's name)
  Role role = Role::kViewer;
  std::string zone_id;  // nodes only
  // Not authenticated: built from a request that carried no valid credentials (a failed login).
  // Its refusals are audited in aggregate per source and minute (Manager::AuditRefusal).
  bool anonymous = false;
  std::string Actor() const;  // "user:alice", "apikey:ci (alice)", "node:node_1a2b", "system"
  static Principal System();
};

// What an operation needs the caller to be.
enum class Permission {
  kRead,         // viewer and up
  kWrite,        // create apps/builds, add domains: member, admin
  kApprove,      // approve/deny tasks, revoke builds: approver, admin
  kAdmin,        // zones, users, certificates, nodes: admin
};
Status Authorize(const Principal& p, Permission perm);

// A zone's policy as stored (zones.policy) and served: the platform rules libs/policy decides
// with, and what only the manager uses. Converted from and to JSON in one place
// (manager_zones.cc, ZonePolicy::ToJson), never field by field at a use.
struct ZonePolicy {
  policy::ZonePolicy rules;  // min_tcb, tolerated_advisories, allow_sim, allow_debug
  int approvals_required = 1;
  int cert_validity_hours = 24;
  json ToJson() const;
};

struct ZoneSpec {
  std::string name;
  std::optional<bool> allow_sim;
  std::optional<std::string> min_tcb;
  std::optional<std::vector<std::string>> tolerated_advisories;
  std::optional<int> approvals_required;
  std::optional<int> cert_validity_hours;
  std::optional<bool> allow_debug;
};

struct BuildSpec {
  std::string app;
  std::string mrenclave;  // 64 hex
  std::string mrsigner;   // 64 hex
  int64_t isvprodid = 0;
  int64_t isvsvn = 0;
  bool debug = false;
  std::string image_ref;
  std::string image_digest;
};

// A registry's fields (docs/api.md "Registries"; manager_registries.cc). Create: name and url
// required. Update: an absent field stays as it is; a null one (the inner nullopt) is cleared.
// password and token are the secret (at most one of them): never logged or returned.
struct RegistrySpec {
  std::optional<std::string> name;
  std::optional<std::string> url;
  std::optional<std::optional<std::string>> ca_pem;
  std::optional<std::optional<std::string>> username;
  std::optional<std::optional<std::string>> password;
  std::optional<std::optional<std::string>> token;
  std::optional<bool> insecure;
};

// PATCH /api/v1/apps/{id}: the app's default registries (id or name; the inner nullopt clears).
struct AppUpdate {
  std::optional<std::optional<std::string>> input_registry;
  std::optional<std::optional<std::string>> output_registry;
};

// POST /api/v1/conversions (docs/convert.md "Server-side conversion"; manager_conversions.cc).
struct ConversionSpec {
  std::string app;  // id or name
  std::string input_image, output_image;
  std::string input_registry, output_registry;  // id or name; empty: the app's default, else by host
  json options = json::object();                // `vouch convert`'s options (convert/options.h)
};

struct ListQuery {
  int64_t limit = 100;
  std::string cursor;
  std::map<std::string, std::string> filters;
};

struct ManagerOptions {
  std::chrono::seconds session_ttl{12 * 3600};
  std::chrono::seconds crl_validity{7 * 24 * 3600};
  crypto::ScryptParams password_kdf;  // for new password hashes
  // Password hashing (32 MiB scrypt each) runs under a semaphore: at most `password_hash_slots`
  // at once (0: max(2, cores)), at most `password_hash_queue` more waiting up to
  // `password_hash_wait`; beyond that a login is refused with 503 "busy" (Retry-After).
  size_t password_hash_slots = 0;
  size_t password_hash_queue = 16;
  std::chrono::milliseconds password_hash_wait{2000};
  // API keys expire: after `api_key_default_days` unless created with another validity, at most
  // `api_key_max_days` (keys stored without an expiry expire that long after their creation).
  int api_key_default_days = 90;
  int api_key_max_days = 365;
  // Unauthenticated refusals are counted in memory per (source, action, outcome, minute) and
  // written as one audit row per key when the minute closes; at most this many keys are held
  // (further sources of the same minute are counted under source "*").
  size_t refusal_aggregate_max_keys = 10000;
  // --- node agents (docs/agent.md)
  std::chrono::seconds node_cert_validity{7 * 24 * 3600};
  // Upper bound on workload certificate validity, below the zones' cert_validity_hours; 0: none.
  // (vouchd serve --workload-cert-max-validity-seconds; short lifetimes exercise renewal.)
  std::chrono::seconds workload_cert_max_validity{0};
  std::chrono::seconds nonce_ttl{300};
  // Workload heartbeat interval; an instance with no heartbeat for `missed_intervals` of them
  // is shown as unresponsive. Nodes likewise with the check-in interval.
  std::chrono::seconds heartbeat_interval{10};
  std::chrono::seconds node_checkin_interval{30};
  int missed_intervals = 3;
  // DCAP collateral folders (Intel PCS files, or a sim vendor's folder) that node evidence is
  // verified against; a sim root there is trusted only for zones that allow sim.
  std::vector<std::string> collateral_dirs;
  // The collateral service (libs/collateral, docs/collateral.md): collateral kept in the store,
  // fetched from Intel PCS/PCCS and AMD KDS. Node evidence the folders above do not verify is
  // verified with it; TDX and SEV-SNP nodes need it. Null: folders only (SGX and TDX).
  std::shared_ptr<collateral::Service> collateral;
  // Backups taken by the server (docs/operations.md, "Backups taken by the server";
  // manager_backups.cc). vouchd sets the hooks from libs/backup, so this library does not depend
  // on it; the folder, names, retention, verification state and audit are kept here.
  struct Backups {
    std::string dir;  // empty: the backup routes answer 409 backups_disabled
    int keep = 7;     // after a good backup, the oldest beyond this many are deleted
    // Writes an archive of the data directory to `path` (vouchd backup); answers the manifest's
    // {"schema_version", "created_at"}.
    std::function<Result<json>(const std::string& path)> create;
    // Checks an archive (vouchd backup --verify); answers the same fields.
    std::function<Result<json>(const std::string& path)> verify;
  } backups;
  // Server-side conversion (docs/convert.md "Server-side conversion").
  struct Conversions {
    std::string manager_url;  // recorded in converted manifests (`vouch convert --manager-url`); empty: none
    // oci:DIR and docker-archive:FILE references. Tests only: a server must not read or write local
    // paths a caller names; vouchd always leaves this off.
    bool allow_local_images = false;
  } conversions;
  // The data directory (vouchd serve; docs/custody.md "Online rotation"): online master-key
  // rotation and AdoptMasterKey rewrite its master.key and tls/server.key.sealed under
  // master.key.lock. Empty: the rotate route answers 409 rotation_unavailable.
  std::string data_dir;
  // Test hook of the online rotation (as RotateOptions::step_hook in api/master_key.h; vouchd
  // serve's hidden --test-master-key-crash-at): an error stops the rotation there as a crash would.
  std::function<Status(std::string_view step)> master_key_step_hook;
  // Stopped instances whose last heartbeat is older than this are deleted by PruneInstances
  // (vouchd serve --instance-retention-days); 0: kept forever.
  std::chrono::seconds instance_retention{0};
  // InstanceCounts / CertificateCounts answers are reused for this long (at 1,000,000 rows the
  // unresponsive count reads the table once, ~0.1 s; the dashboard asks every 5 s per console).
  std::chrono::milliseconds counts_max_age{5000};
};

// Node evidence for provisioning (with a join token) or renewal (by an authenticated node).
struct NodeEnrollment {
  std::string join_token;             // provisioning only
  std::string nonce_hex;              // from CreateNodeNonce
  std::vector<uint8_t> public_key_der;  // the node key's SubjectPublicKeyInfo
  std::string platform = "sgx";      // "sgx" | "tdx" | "sev-snp"
  // sgx: SGX quote v3; tdx: DCAP TDX quote v4/v5 (the configfs-tsm outblob); sev-snp: the
  // 1184-byte report followed by the GHCB certificate table (outblob ‖ auxblob; may be absent).
  std::vector<uint8_t> evidence;
  json info = json::object();         // agent version etc., recorded as reported
};

// One signed workload heartbeat (docs/agent.md, "Heartbeats").
struct Heartbeat {
  std::string instance_id;
  int64_t seq = 0;
  int64_t timestamp = 0;  // Unix seconds, as the workload signed it
  std::string status;     // "running" or "stopping"
  std::vector<uint8_t> signature;  // DER ECDSA by the instance's certificate key (empty when `mac` is set)
  // HMAC-SHA256 (32 bytes) under the instance's heartbeat key (docs/formats/heartbeat-key.md);
  // empty when signed.
  std::vector<uint8_t> mac;
};

// The manager core: every operation of the REST API as a typed, authorised, audited call.
// Each mutation runs in one store transaction together with its audit entry. Thread-safe.
class Manager {
 public:
  static Result<std::unique_ptr<Manager>> Create(store::Database* db, crypto::SecretBytes master_key,
                                                 const Clock* clock, ManagerOptions options = {});
  ~Manager();

  store::Database& db() { return *db_; }
  const ManagerOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }

  // --- authentication
  Result<json> Login(std::string_view user, std::string_view password);
  Result<Principal> Authenticate(std::string_view bearer_token);
  Status Logout(const Principal& p, std::string_view bearer_token);
  json WhoAmI(const Principal& p) const;

  // --- users and API keys
  Result<json> CreateUser(const Principal& p, const std::string& name, const std::string& role,
                          std::string_view password);
  Result<json> ListUsers(const Principal& p, const ListQuery& q);
  Result<json> GetUser(const Principal& p, const std::string& id_or_name);
  Result<json> UpdateUser(const Principal& p, const std::string& id_or_name, std::optional<std::string> role,
                          std::optional<std::string> password, std::optional<bool> disabled);
  Status DeleteUser(const Principal& p, const std::string& id_or_name);
  Result<json> CreateApiKey(const Principal& p, const std::string& name, std::optional<int64_t> expires_in_days);
  Result<json> ListApiKeys(const Principal& p, const ListQuery& q);
  Status DeleteApiKey(const Principal& p, const std::string& id);

  // --- zones
  Result<json> CreateZone(const Principal& p, const ZoneSpec& spec);
  Result<json> UpdateZone(const Principal& p, const std::string& id_or_name, const ZoneSpec& spec);
  Result<json> ListZones(const Principal& p, const ListQuery& q);
  Result<json> GetZone(const Principal& p, const std::string& id_or_name);
  Result<std::string> ZoneCaPem(const std::string& id_or_name);
  // DER; regenerated when stale (past half its validity) or after a revocation.
  Result<std::vector<uint8_t>> ZoneCrl(const std::string& id_or_name);
  Result<json> CreateJoinToken(const Principal& p, const std::string& zone, int64_t ttl_seconds, int64_t uses);
  Result<json> ListJoinTokens(const Principal& p, const std::string& zone, const ListQuery& q);
  // Node identities (docs/policy.md, "Node identity"): the agent identities a zone accepts.
  // Adding one (admin) creates it pending with an approval task of kind node_identity under the
  // zone's quorum; removing one (admin) needs no quorum.
  Result<json> ListNodeIdentities(const Principal& p, const std::string& zone);
  Result<json> AddNodeIdentity(const Principal& p, const std::string& zone, const json& rule, const std::string& note);
  Result<json> RemoveNodeIdentity(const Principal& p, const std::string& zone, const std::string& id);

  // --- apps
  Result<json> CreateApp(const Principal& p, const std::string& name, const std::string& zone,
                         const std::vector<std::string>& domains);
  Result<json> ListApps(const Principal& p, const ListQuery& q);
  Result<json> GetApp(const Principal& p, const std::string& id_or_name);
  Status DeleteApp(const Principal& p, const std::string& id_or_name);
  Result<json> AddAppDomain(const Principal& p, const std::string& app, const std::string& domain);
  Result<json> RemoveAppDomain(const Principal& p, const std::string& app, const std::string& domain);

  // Default registries (AppUpdate; member). The app record shows them by name, and mrsigner.
  Result<json> UpdateApp(const Principal& p, const std::string& id_or_name, const AppUpdate& update);
  // Admin: a new signing key for the app, pending until its task (kind signing_key, the zone's
  // quorum) is approved (manager_signing_keys.cc). 409 signing_key_pending while one waits.
  Result<json> RotateAppSigningKey(const Principal& p, const std::string& id_or_name);

  // --- zone CA rotation (manager_ca_rotation.cc, zone_ca_rotation.h; docs/api.md "Zone CA
  // rotation"). Admin: rotate makes the next root pending under the zone's quorum (409
  // ca_rotation_pending while one is pending or approved); activate swaps the approved one in
  // (409 no_approved_ca) and retires the previous root. Public: the bundle (active, approved next,
  // retired roots while a certificate they issued is unexpired) and a retired or next root's CRL.
  Result<json> RotateZoneCa(const Principal& p, const std::string& zone);
  Result<json> ActivateZoneCa(const Principal& p, const std::string& zone);
  Result<std::string> ZoneCaBundlePem(const std::string& zone);
  Result<std::vector<uint8_t>> ZoneCaCrl(const std::string& zone, const std::string& ca_id);
  // Viewer: the zone's roots (active first, then next, retired, denied) with their dates and ids.
  Result<json> ListZoneCas(const Principal& p, const std::string& zone);

  // --- registries (manager_registries.cc, registry_access.h): admin manages, members and
  // approvers list and read; the secret is sealed and never returned.
  Result<json> CreateRegistry(const Principal& p, const RegistrySpec& spec);
  Result<json> ListRegistries(const Principal& p, const ListQuery& q);
  Result<json> GetRegistry(const Principal& p, const std::string& id_or_name);
  Result<json> UpdateRegistry(const Principal& p, const std::string& id_or_name, const RegistrySpec& spec);
  // 409 registry_in_use while an app names it as a default or an unfinished conversion uses it.
  Status DeleteRegistry(const Principal& p, const std::string& id_or_name);

  // Sealing under the master key (AES-256-GCM) for the sealed columns kept by free functions of
  // this library (registry_access.h): `aad` names the table, column and row. The key never leaves.
  // Both run inside the caller's transaction `tx` and use the key the store is under as `tx` sees
  // it (its master_key_check): 503 master_key_rotated when this process does not hold that key.
  Result<std::vector<uint8_t>> SealSecret(store::Transaction& tx, std::span<const uint8_t> plaintext,
                                          std::string_view aad) const;
  Result<crypto::SecretBytes> OpenSecret(store::Transaction& tx, std::span<const uint8_t> sealed,
                                         std::string_view aad) const;

  // --- conversion jobs (manager_conversions.cc; run by ConversionRunner, conversion_runner.h).
  // Member: validated up front (app, references, registries, options), then queued: 202 + the
  // job record. Viewer: list (filters state, app) and get. Member: cancel a job that has not
  // ended (409 conversion_finished otherwise); a running job stops at its next check.
  Result<json> CreateConversion(const Principal& p, const ConversionSpec& spec);
  Result<json> ListConversions(const Principal& p, const ListQuery& q);
  Result<json> GetConversion(const Principal& p, const std::string& id);
  Result<json> CancelConversion(const Principal& p, const std::string& id);
  // Jobs per state (every state listed), for vouch_conversions (/metrics).
  std::map<std::string, int64_t> ConversionStates();
  // Called (without locks held) after a job is queued or cancelled: this member's runner looks
  // at once instead of at its next poll. One listener; empty clears it.
  void SetConversionListener(std::function<void()> fn);

  // --- builds and approval tasks
  Result<json> CreateBuild(const Principal& p, const BuildSpec& spec);
  Result<json> ListBuilds(const Principal& p, const ListQuery& q);
  Result<json> GetBuild(const Principal& p, const std::string& id);
  Result<json> RevokeBuild(const Principal& p, const std::string& id, const std::string& reason);
  Result<json> ListTasks(const Principal& p, const ListQuery& q);
  Result<json> GetTask(const Principal& p, const std::string& id);
  Result<json> ApproveTask(const Principal& p, const std::string& id);
  Result<json> DenyTask(const Principal& p, const std::string& id, const std::string& reason);

  // --- certificates
  // Manual issuance by an admin for an approved build (a node's agent gets workload certificates
  // through IssueForWorkload under "node agents", below).
  Result<json> IssueManual(const Principal& p, const std::string& build_id, std::string_view csr_pem);
  Result<json> ListCertificates(const Principal& p, const ListQuery& q);
  Result<json> GetCertificate(const Principal& p, const std::string& serial);
  Result<json> RevokeCertificate(const Principal& p, const std::string& serial, const std::string& reason);

  // --- nodes and instances (read side; enrolment and check-ins are under "node agents", below)
  Result<json> ListNodes(const Principal& p, const ListQuery& q);
  Result<json> GetNode(const Principal& p, const std::string& id);
  Result<json> DeactivateNode(const Principal& p, const std::string& id);
  // Filters "app" (id or name), "node", "status" (running, stopped, unresponsive); pages in
  // (first_seen, id) order (docs/api.md).
  Result<json> ListInstances(const Principal& p, const ListQuery& q);
  // Viewer: {running, unresponsive, stopped, total} (api/instance_counts.h).
  Result<json> InstanceCounts(const Principal& p);
  // Viewer: {valid, expiring, expiring_within_days}: unexpired valid certificates, and those of
  // them expiring within `expiring_within_days`.
  Result<json> CertificateCounts(const Principal& p, int64_t expiring_within_days);
  // System (vouchd's pruning thread): deletes stopped instances older than
  // options().instance_retention in bounded batches, one audit entry "instance.prune" with the
  // count per run, at most kPruneBatch * kPruneMaxBatches per run (vouchd runs again at once
  // when a run deleted that many). Returns how many were deleted (0 when the retention is 0).
  static constexpr int64_t kPruneBatch = 1000;
  static constexpr int64_t kPruneMaxBatches = 100;
  Result<int64_t> PruneInstances(const Principal& p);
  int64_t InstancesPruned() const { return instances_pruned_.load(); }  // vouch_instances_pruned_total

  // --- node agents (docs/agent.md). Nodes authenticate with a certificate from the node CA
  // (one per installation, created on first use) over mutual TLS.
  Result<std::string> NodeCaPem();
  // Re-reads the collateral folders (ManagerOptions::collateral_dirs), e.g. after new TCB Info or
  // CRLs were copied in. Unless `force`, only when a file in them changed (name, size or mtime)
  // since the last load or the last failed attempt. The new set replaces the old one only when
  // every folder loads and its trust root, CRL, TCB Info and QE Identity check out; otherwise the
  // old set stays in use and the error is returned. True when a new set was installed.
  Result<bool> ReloadCollateral(bool force = false);
  // Each collateral folder in use with the time its first piece expires
  // (DcapVerifier::CollateralValidUntil): vouch_collateral_valid_until_seconds, and vouchd's
  // warning when that is less than a week away.
  std::vector<std::pair<std::string, TimePoint>> CollateralValidUntil();
  Result<json> CreateNodeNonce();
  // --- collateral service (docs/collateral.md; manager_collateral.cc). NotFound
  // "collateral_disabled" when ManagerOptions::collateral is null.
  collateral::Service* collateral_service() const { return options_.collateral.get(); }
  // Viewer: {items: [{id, kind, key, root, sim, issue_date, next_update, tcb_evaluation_data_number,
  // source, origin, state, stored_at, sha256, current}]}; filters "kind", "key", "versions"=all.
  Result<json> ListCollateral(const Principal& p, const ListQuery& q);
  // Admin: fetch one item now (kind and key), or with an empty kind every held item (force).
  // Audited ("collateral.refresh"). {stored, unchanged, refused, failed, outcomes: [...]}.
  Result<json> RefreshCollateral(const Principal& p, const std::string& kind, const std::string& key);
  // Admin: import one folder's files (name -> bytes; see collateral/service.h), each verified
  // before it is stored. Audited ("collateral.import"). Same answer as RefreshCollateral.
  Result<json> ImportCollateral(const Principal& p, const std::map<std::string, std::string>& files,
                                const std::string& origin);
  // --- backups taken by the server (ManagerOptions::backups; manager_backups.cc)
  // Admin: a backup now into the folder, named vouch-backup-<UTC time>.vbk, verified, then the
  // oldest beyond `keep` deleted. Aborted "backup_in_progress" (409) while one runs. Audited
  // ("backup.create", with its outcome). {name, size, sha256, created_at, schema_version}.
  Result<json> CreateBackup(const Principal& p);
  // Admin: {backups: [{name, size, created_at, schema_version, verified, reason?}]}, newest
  // first; a file this process has not checked yet is verified once (cached by size and mtime).
  Result<json> ListBackups(const Principal& p);
  struct BackupStats {
    int64_t ok = 0;
    int64_t failed = 0;
    std::optional<TimePoint> newest_good;  // created_at of the newest verified backup
  };
  BackupStats GetBackupStats();
  bool BackupsEnabled() const { return !options_.backups.dir.empty() && options_.backups.create != nullptr; }
  // Viewer: every stored version as files {files: {name: base64}} (manifest.json included), the
  // input of ImportCollateral on another installation.
  Result<json> ExportCollateral(const Principal& p);
  // Any signed-in user or API key (POST /api/v1/evidence/verify): the verdict of `vouch evidence
  // verify -o json` for `evidence` ("sgx"/"tdx"/"sev-snp" detected from the bytes unless
  // `platform` says), at `at` (default now), with collateral from the service (fetched if missing)
  // and the collateral folders. Sim evidence is recognised (verdict insecure_sim). 400
  // invalid_evidence for an empty or oversized blob.
  Result<attest::Verdict> VerifyEvidenceFor(const Principal& p, std::span<const uint8_t> evidence,
                                            const std::string& platform, std::optional<TimePoint> at);
  // With a join token (provisioning) when `node` is null, else a renewal by that node.
  Result<json> EnrollNode(const Principal* node, const NodeEnrollment& e);
  // Maps a verified client certificate (leaf DER) to its node: the certificate must be a valid,
  // unexpired node certificate of an active node.
  Result<Principal> AuthenticateNode(std::span<const uint8_t> leaf_der);
  // A workload certificate for a report body the agent verified locally.
  Result<json> IssueForWorkload(const Principal& node, std::string_view csr_pem, std::span<const uint8_t> report_body,
                                const std::string& instance_id);
  Result<json> IngestHeartbeats(const Principal& node, const json& node_info, const std::vector<Heartbeat>& heartbeats);
  // Audits the refusals an agent made locally (bad REPORT MAC, report not binding the CSR key),
  // reported with its check-in: each one `certificate.issue` / `denied:<code>` by that node.
  // `refusals` was validated by the route (at most 100 objects {at, code, message?, mrenclave?}).
  Status RecordAgentRefusals(const Principal& node, const json& refusals);

  // --- audit
  Result<json> ListAudit(const Principal& p, const ListQuery& q);
  Result<json> VerifyAudit(const Principal& p);

  // Records a refused security-relevant attempt (authorisation failure, failed login) in the
  // audit log in its own transaction. Refusals of anonymous callers (Principal::anonymous) go to
  // AuditUnauthenticated with the current ScopedRequestSource (EnrollNode sends a node's refusals
  // before its nonce and join token are accepted there itself).
  void AuditRefusal(const Principal& p, const std::string& action, const std::string& target, const Status& why);
  // An unauthenticated failure (failed login, invalid token or API key, refused provisioning,
  // rate-limited request): counted per (source, action, outcome, minute), not written one by one.
  // A closed minute's counts are written (one row "anonymous:<source>" each, detail.count) by the
  // next call or by FlushRefusalAggregates.
  void AuditUnauthenticated(const std::string& source, const std::string& action, const std::string& target,
                            const Status& why);
  // Writes the counts of closed minutes (all of them when `all`, e.g. at shutdown).
  void FlushRefusalAggregates(bool all = false);

  // --- cluster join (docs/cluster.md; manager_cluster.cc)
  // What this instance hands to a joiner that passed attestation, besides the master key.
  struct ClusterJoinConfig {
    cluster::JoinPolicy policy;
    std::string tls_chain_pem;             // the service TLS identity all members serve
    std::vector<uint8_t> tls_key_sealed;   // its key, sealed under the master key
    std::string service_ca_pem;            // may be empty (operator-supplied TLS)
  };
  // Enables the cluster routes. Without it they answer 404 "cluster_join_disabled".
  Status EnableClusterJoin(ClusterJoinConfig config);
  // Whether EnableClusterJoin ran (before serving): the routes refuse before reading the body.
  bool ClusterJoinEnabled() const { return cluster_ != nullptr; }
  Result<json> ClusterNonce();
  // Verifies the joiner's evidence; on success returns the wrapped master key and the TLS
  // identity. Every attempt is audited (outcome ok or denied).
  Result<json> ClusterJoin(const json& body, const std::string& remote);

  // --- the master key (docs/custody.md "Online rotation"; master_key_online.cc)
  // The master key id (docs/custody.md: HMAC-SHA256(key, "vouch-master-key-id-v1")[0..16], hex) of
  // the key this process holds.
  std::string MasterKeyId() const;
  // Ok(true) when the store's sealed values are under this process's key (`settings`
  // master_key_check opened in one read; no check yet: the key was never rotated); Ok(false) when
  // another member rotated it (this member must obtain the new key; until then every operation that
  // seals or unseals a stored secret answers 503 `master_key_rotated` with Retry-After, while
  // issuance, heartbeats and reads that need no unsealing go on).
  Result<bool> MasterKeyCurrent();
  // Adopt `key` obtained from a member (the join protocol): refused unless it opens the store's key
  // check; writes DATA/master.key and re-seals this member's DATA/tls/server.key.sealed under it
  // (atomically, as rotation does), swaps it in memory, audits `master_key.adopt`.
  Status AdoptMasterKey(const crypto::SecretBytes& key);
  // Admin (POST /api/v1/master-key/rotate): re-seals every sealed value under a new key inside this
  // serving process (options().data_dir's files written first, ONE serial store transaction, then
  // the renames; DATA/master.key.lock held throughout), audited `master_key.rotate`. Answers
  // {key_id, resealed: {column: count}, rotated_at}. 409 rotation_in_progress while one runs.
  Result<json> RotateMasterKeyOnline(const Principal& p);

  // Counters for /metrics.
  struct Stats {
    int64_t certificates_issued = 0;
    int64_t pending_tasks = 0;
  };
  Stats GetStats();
  // Instances whose heartbeat MAC key is cached (vouch_heartbeat_key_cache_entries).
  int64_t HeartbeatKeysCached() const;

 private:
  Manager(store::Database* db, crypto::SecretBytes master_key, const Clock* clock, ManagerOptions options);
  // Backup folder state (manager_backups.cc): the running flag, counters, verification cache.
  struct BackupState;
  static std::shared_ptr<BackupState> NewBackupState();
  std::shared_ptr<BackupState> backup_state_ = NewBackupState();

  Result<std::shared_ptr<pki::CaSigner>> ZoneSigner(store::Transaction& tx, const std::string& zone_id);
  Status RegenerateCrl(store::Transaction& tx, const std::string& zone_id);
  Status RevokeCertsWhere(store::Transaction& tx, const std::string& where_sql, const std::vector<store::Value>& params,
                          const std::string& reason, std::vector<std::string>* zones_touched);
  // Marks the listed certificates revoked (those still valid) without regenerating any CRL: the
  // caller regenerates its zone's CRL once. Returns how many changed.
  Result<int64_t> MarkRevoked(store::Transaction& tx, const std::vector<std::string>& serials, const std::string& reason);
  // After a zone's policy was tightened: revokes the zone's unexpired valid certificates that the
  // policy would no longer issue (manager_zones.cc); the CRL is regenerated once. Returns the
  // counts (and serials) for the audit entry.
  Result<json> RevokeWhatZoneRefuses(store::Transaction& tx, const std::string& zone_id, const ZonePolicy& policy);
  Result<json> DecideTask(store::Transaction& tx, const Principal& p, const store::Row& task, bool approve,
                          const std::string& reason);
  int64_t Now() const;
  // The zone's cert_validity_hours, capped by options_.workload_cert_max_validity.
  std::chrono::seconds WorkloadCertValidity(const ZonePolicy& policy) const;
  Result<std::shared_ptr<pki::CaSigner>> NodeSigner();
  crypto::SecretBytes NodeNonceKey() const;  // derived from the master key (stateless node nonces)
  // Node evidence of `platform` ("sgx", "tdx", "sev-snp") at `at`: the collateral folders first
  // (DCAP), then the collateral service.
  attest::Verdict VerifyEvidence(const std::string& platform, std::span<const uint8_t> evidence, TimePoint at);
  std::string EffectiveInstanceStatus(const store::Row& r) const;
  // Password hashing under kdf_slots_ (ManagerOptions::password_hash_*): Unavailable "busy" when
  // no slot frees in time.
  Result<std::string> HashPasswordBounded(std::string_view password);
  std::string EffectiveNodeStatus(const store::Row& r) const;

  store::Database* db_;
  // The master key ring (master_key_online.cc): the key this process holds, the one it rotates to
  // while an online rotation runs, and the one before (read snapshots older than a rotation).
  // Sealing and unsealing pick from it by the store's master_key_check as their transaction sees it.
  struct MasterKeys;
  static std::shared_ptr<MasterKeys> NewMasterKeys(crypto::SecretBytes key);
  std::shared_ptr<MasterKeys> keys_;
  // The key the store's sealed values are under as `tx` sees them; Unavailable kMasterKeyRotated
  // (503, Retry-After) when this process does not hold it.
  Result<crypto::SecretBytes> StoreKey(store::Transaction& tx) const;
  crypto::SecretBytes HeldMasterKey() const;  // the key this process holds (nonces, cluster join)
  const Clock* clock_;
  ManagerOptions options_;
  std::mutex signers_mu_;
  std::map<std::string, std::shared_ptr<pki::CaSigner>> signers_;
  std::atomic<int64_t> issued_{0};
  std::atomic<int64_t> instances_pruned_{0};
  struct CountsCache;  // api/instance_counts.cc
  static std::shared_ptr<CountsCache> NewCountsCache();
  std::shared_ptr<CountsCache> counts_cache_ = NewCountsCache();
  // Conversion jobs: the runner claims, updates and finishes them through the Manager's store,
  // clock and sealed keys (conversion_runner.cc).
  friend class ConversionRunner;
  struct ConversionState;  // manager_conversions.cc: the listener
  static std::shared_ptr<ConversionState> NewConversionState();
  std::shared_ptr<ConversionState> conversions_ = NewConversionState();
  struct ClusterJoinState;
  std::shared_ptr<ClusterJoinState> cluster_;
  // manager_cluster.cc: the key a grant hands out (the one the store is under; 503
  // master_key_rotated on a member left behind) and the service TLS key sealed under it.
  Result<crypto::SecretBytes> ClusterKey() const;
  Result<std::vector<uint8_t>> ClusterTlsKeySealed(const crypto::SecretBytes& key) const;
  std::mutex node_signer_mu_;
  std::shared_ptr<pki::CaSigner> node_signer_;
  using Verifiers = std::vector<std::unique_ptr<attest::DcapVerifier>>;
  std::mutex verifiers_mu_;  // guards the pointer; a snapshot stays valid while a request uses it
  std::shared_ptr<const Verifiers> verifiers_;
  std::shared_ptr<const Verifiers> CurrentVerifiers();  // the snapshot requests use
  std::string collateral_fingerprint_;  // of the last load or failed attempt (ReloadCollateral)
  std::mutex reload_mu_;                // one reload at a time
  // Heartbeat authentication state (api/heartbeat_keys.h): the zones' heartbeat keys, the
  // compact per-instance MAC key cache, the bounded ECDSA key cache, the counters.
  struct HeartbeatState;
  static std::shared_ptr<HeartbeatState> NewHeartbeatState();
  std::shared_ptr<HeartbeatState> heartbeats_ = NewHeartbeatState();
  // The zone's heartbeat public key (PEM), made and sealed on first need (write transaction).
  Result<std::string> EnsureZoneHeartbeatKey(store::Transaction& tx, const std::string& zone_id);
  // The zone's heartbeat private key, unsealed once and kept; nullptr if the zone has none yet.
  Result<std::shared_ptr<EVP_PKEY>> ZoneHeartbeatPrivateKey(store::Transaction& tx, const std::string& zone_id);
  // Refusals of a node's own identity (deactivated, certificate revoked) are audited once per
  // (node, certificate, code) and hour per instance: a refused agent keeps retrying.
  std::mutex node_refusals_mu_;
  std::map<std::string, std::pair<int64_t, int64_t>> node_refusals_audited_;  // key -> (audited at, suppressed)
  std::shared_ptr<http::BoundedSemaphore> kdf_slots_;
  struct RefusalAggregates;  // manager_users.cc
  std::shared_ptr<RefusalAggregates> refusals_;
};

// The network source (IP address, no port) of the request this thread is handling, set by the
// HTTP routes for the duration of a handler; "" outside one. Unauthenticated refusals are
// audited per source.
class ScopedRequestSource {
 public:
  explicit ScopedRequestSource(std::string source);
  ~ScopedRequestSource();
  ScopedRequestSource(const ScopedRequestSource&) = delete;
  ScopedRequestSource& operator=(const ScopedRequestSource&) = delete;
  static const std::string& Current();

 private:
  std::string previous_;
};

// Validation shared by the API and the CLI-side checks.
bool IsValidName(std::string_view name);     // ^[a-z0-9][a-z0-9-]{0,62}$
// DNS names: pki/names.h (IsValidDnsName, NormalizeDnsName, DomainAllowed), the one validator.
bool IsValidTcbStatus(std::string_view s);

// Reason codes of the app-domain rules (docs/api.md, docs/design.md "Apps, builds and approvals").
inline constexpr std::string_view kDomainTaken = "domain_taken";              // 409: another app of the zone holds it
inline constexpr std::string_view kDomainNotAllowed = "domain_not_allowed";   // 403: not an approved name of the app

}  // namespace vouch::api
