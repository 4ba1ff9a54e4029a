// Node agents: the node CA, nonces, provisioning and renewal with platform evidence, and the
// mTLS node identity (docs/agent.md). Workload certificates: manager_issuance.cc; heartbeats
// and check-ins: manager_heartbeats.cc.
#include <algorithm>
#include <unordered_map>

#include "api/ca_adapter.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/manager_nodes_internal.h"
#include "api/master_key_ring.h"
#include "api/reasons.h"
#include "attest/dcap_verifier.h"
#include "attest/snp_verifier.h"
#include "base/encoding.h"
#include "collateral/service.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/timed_nonce.h"
#include "crypto/x509.h"
#include "pki/ca.h"
#include "policy/policy.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace internal {

// The verdict a node's stored record stands for, so that a zone's current rules can be applied
// again at every certificate request.
attest::Verdict StoredNodeVerdict(const Row& n) {
  attest::Verdict v;
  v.genuine = true;
  v.tcb_status = n.Str("tcb_status");
  for (const auto& a : ParseJsonColumn(n.Str("advisory_ids"), json::array())) {
    if (a.is_string()) v.advisory_ids.push_back(a.get<std::string>());
  }
  const std::string platform = n.Str("platform");
  v.insecure_sim = platform.rfind("sim-", 0) == 0;
  const std::string base = v.insecure_sim ? platform.substr(4) : platform;
  if (base == "tdx") v.platform = attest::Platform::kTdx;
  if (base == "sev-snp") v.platform = attest::Platform::kSevSnp;
  return v;
}

Status Refuse(std::string_view code, std::string message) {
  return PermissionDenied(std::move(message), std::string(code));
}
}  // namespace internal

namespace {

constexpr char kNodeCaCertSetting[] = "node_ca_cert_pem";
constexpr char kNodeCaKeySetting[] = "node_ca_key_sealed";
constexpr char kNodeCaAad[] = "vouch:node-ca-key";
constexpr std::string_view kNodeNonceLabel = "vouch-node-nonce-v1";
constexpr size_t kMaxEvidenceBytes = 64 * 1024;

Principal Unprovisioned() {
  Principal p;
  p.kind = Principal::Kind::kNode;
  p.id = "unprovisioned";
  p.name = "unprovisioned";
  return p;
}

}  // namespace

// ---------------------------------------------------------------- node CA

Result<std::shared_ptr<pki::CaSigner>> Manager::NodeSigner() {
  std::lock_guard<std::mutex> lock(node_signer_mu_);
  if (node_signer_) return node_signer_;
  auto load = [&]() -> Result<std::shared_ptr<pki::CaSigner>> {
    std::string cert_pem, sealed_b64;
    crypto::SecretBytes master;
    VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(master, StoreKey(tx));  // the key of this snapshot (master_key_online.cc)
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT key, value FROM settings WHERE key IN (?, ?)",
                                                 {std::string(kNodeCaCertSetting), std::string(kNodeCaKeySetting)}));
      for (const Row& r : rows) {
        if (r.Str(0) == kNodeCaCertSetting) cert_pem = r.Str(1);
        if (r.Str(0) == kNodeCaKeySetting) sealed_b64 = r.Str(1);
      }
      return Status::Ok();
    }));
    if (cert_pem.empty() || sealed_b64.empty())
      return NotFound("no node CA yet", std::string(kNoNodeCa));
    VOUCH_ASSIGN_OR_RETURN(auto sealed, Base64Decode(sealed_b64));
    auto key = crypto::Aes256GcmOpen(master.span(), sealed, AsBytes(kNodeCaAad));
    if (!key.ok())
      return DataLoss("the node CA key cannot be unsealed with this master key",
                      std::string(kCaKeyUnsealFailed));
    return LoadZoneSigner(cert_pem, *key);
  };
  auto signer = load();
  if (!signer.ok() && signer.status().code() == StatusCode::kNotFound) {
    VOUCH_ASSIGN_OR_RETURN(ZoneCaMaterial ca, CreateNodeCa(clock_->Now()));
    Status st = db_->Write([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT key FROM settings WHERE key = ?", {std::string(kNodeCaCertSetting)}));
      if (!rows.empty()) return Status::Ok();  // another instance made it first
      VOUCH_ASSIGN_OR_RETURN(auto sealed, SealSecret(tx, ca.key_der.span(), kNodeCaAad));
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)",
                                    {std::string(kNodeCaCertSetting), ca.cert_pem})
                                .status());
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO settings (key, value) VALUES (?, ?)",
                                    {std::string(kNodeCaKeySetting), Base64Encode(sealed)})
                                .status());
      return Audit(tx, *this, Principal::System(), "node_ca.create", "node-ca");
    });
    if (!st.ok() && st.code() != StatusCode::kAlreadyExists) return st;
    signer = load();
  }
  if (!signer.ok()) return signer.status();
  node_signer_ = *signer;
  return node_signer_;
}

Result<std::string> Manager::NodeCaPem() {
  VOUCH_ASSIGN_OR_RETURN(auto signer, NodeSigner());
  return signer->cert_pem();
}

// ---------------------------------------------------------------- nonces and evidence

// Node nonces are stateless (crypto/timed_nonce.h, as cluster join nonces): MAC'd under a key
// derived from the master key, with their issue time. Making one writes nothing, so no flood of
// nonce requests can crowd out a real node; single use is enforced where a nonce is consumed.
crypto::SecretBytes Manager::NodeNonceKey() const {
  auto k = crypto::HmacSha256(HeldMasterKey().span(), AsBytes("vouch-node-nonce-key-v1"));
  crypto::SecretBytes key{std::span<const uint8_t>(k)};
  std::fill(k.begin(), k.end(), 0);
  return key;
}

Result<json> Manager::CreateNodeNonce() {
  const int64_t now = Now();
  crypto::TimedNonce nonce = crypto::MakeTimedNonce(NodeNonceKey().span(), kNodeNonceLabel, now);
  return json{{"nonce", HexEncode(nonce)}, {"expires_at", TimeJson(now + options_.nonce_ttl.count())}};
}

attest::Verdict Manager::VerifyEvidence(const std::string& platform, std::span<const uint8_t> evidence, TimePoint at) {
  // DCAP (sgx, tdx): the collateral folders first, as before the collateral service; the service
  // when none of them verifies the quote. A folder's refusal for a reason other than missing or
  // foreign collateral stands (a revoked PCK stays revoked whatever the service holds).
  std::optional<attest::Verdict> from_folders;
  if (platform == "sgx" || platform == "tdx") {
    std::shared_ptr<const Verifiers> verifiers = CurrentVerifiers();
    if (verifiers && !verifiers->empty()) {
      for (const auto& v : *verifiers) {
        attest::Verdict verdict = v->Verify(evidence, at);
        if (verdict.genuine) return verdict;
        from_folders = std::move(verdict);
      }
    } else if (!options_.collateral) {
      return attest::VerifyDcapQuote(evidence, std::nullopt, at);
    }
  }
  if (!options_.collateral) {
    if (from_folders) return *from_folders;
    attest::Verdict v;
    v.platform = attest::Platform::kSevSnp;
    v.error = FailedPrecondition("SEV-SNP evidence needs the collateral service (vouchd serve --kds-url)",
                                 std::string(attest::kSnpMissingCollateral));
    return v;
  }
  attest::Verdict service = options_.collateral->Verify(evidence, platform, at, /*allow_sim=*/true);
  if (service.genuine || !from_folders) return service;
  const std::string folder_reason = from_folders->error ? from_folders->error->reason() : std::string();
  const bool folder_inconclusive = folder_reason == attest::kDcapMissingCollateral ||
                                   folder_reason == attest::kDcapChainUntrusted ||
                                   folder_reason == attest::kDcapTcbInfoMismatch ||
                                   folder_reason == attest::kDcapSimNotAllowed;
  // A folder of another vendor root or FMSPC says nothing about this quote: the service's answer
  // (e.g. missing_collateral) is the one that does.
  if (folder_inconclusive) return service;
  return *from_folders;
}

// ---------------------------------------------------------------- provisioning and renewal

Result<json> Manager::EnrollNode(const Principal* node, const NodeEnrollment& e) {
  const bool renewal = node != nullptr;
  const Principal actor = renewal ? *node : Unprovisioned();
  const std::string action = renewal ? "node.renew" : "node.provision";
  auto refuse = [&](const Status& st) -> Status {
    AuditRefusal(actor, action, renewal ? node->id : "join", st);
    return st;
  };
  // Until its nonce and join token are accepted, a caller is anonymous: its refusals are counted
  // per source, not written one by one (a caller holding a valid join token and presenting
  // evidence is audited one by one; a renewing node always is).
  auto refuse_anonymous = [&](const Status& st) -> Status {
    if (renewal) return refuse(st);
    const std::string& source = ScopedRequestSource::Current();
    AuditUnauthenticated(source.empty() ? "unknown" : source, action, "join", st);
    return st;
  };
  // Shape checks first (400s, not audited: nothing security-relevant was attempted yet).
  if (e.platform != "sgx" && e.platform != "tdx" && e.platform != "sev-snp") {
    return InvalidArgument("platform must be \"sgx\", \"tdx\" or \"sev-snp\"",
                           std::string(kUnsupportedPlatform));
  }
  if (e.evidence.empty() || e.evidence.size() > kMaxEvidenceBytes) {
    return InvalidArgument("evidence must be 1.." + std::to_string(kMaxEvidenceBytes) + " bytes",
                           std::string(kInvalidEvidence));
  }
  auto nonce = HexDecode(e.nonce_hex);
  if (!nonce.ok() || nonce->size() != 32)
    return InvalidArgument("nonce must be 64 hex digits", std::string(kInvalidNonce));
  auto key = crypto::PublicKeyFromDer(e.public_key_der);
  if (!key.ok() || crypto::DescribeKey(key->get()).rfind("EC P-", 0) != 0) {
    return InvalidArgument("public_key must be an EC P-256 or P-384 SubjectPublicKeyInfo",
                           std::string(kInvalidPublicKey));
  }
  if (!renewal && e.join_token.empty())
    return Unauthenticated("a join token is required", std::string(kJoinTokenRequired));

  // The nonce must be ours and fresh; it is consumed whatever happens next: recorded until it
  // expires, so that it can never be used twice (the primary key is the replay check).
  int64_t now = Now();
  auto issued = crypto::CheckTimedNonce(NodeNonceKey().span(), kNodeNonceLabel, *nonce, now,
                                        options_.nonce_ttl.count(), kNonceInvalid);
  if (!issued.ok()) {
    // Made before this process's last master-key rotation (master_key_ring.h): still good until it expires.
    std::shared_ptr<const MasterKeys::Key> previous;
    {
      std::lock_guard<std::mutex> lock(keys_->mu);
      previous = keys_->previous;
    }
    if (previous) {
      auto k = crypto::HmacSha256(previous->bytes.span(), AsBytes("vouch-node-nonce-key-v1"));
      crypto::SecretBytes previous_nonce_key{std::span<const uint8_t>(k)};
      std::fill(k.begin(), k.end(), 0);
      issued = crypto::CheckTimedNonce(previous_nonce_key.span(), kNodeNonceLabel, *nonce, now, options_.nonce_ttl.count(),
                                       kNonceInvalid);
    }
  }
  if (!issued.ok())
    return refuse_anonymous(Refuse(kNonceInvalid, "the nonce is unknown, expired or already used"));
  int64_t consumed = 0;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM node_nonces WHERE expires_at <= ?", {now}).status());
    VOUCH_ASSIGN_OR_RETURN(consumed, tx.Exec("INSERT INTO node_nonces (nonce_hash, created_at, expires_at) VALUES (?, ?, ?) "
                                             "ON CONFLICT (nonce_hash) DO NOTHING",
                                             {HashToken(HexEncode(*nonce)), now, *issued + options_.nonce_ttl.count() + 6}));
    return Status::Ok();
  }));
  if (consumed != 1)
    return refuse_anonymous(Refuse(kNonceInvalid, "the nonce is unknown, expired or already used"));

  // Which zone: the join token's, or the node's own.
  std::string zone_id, token_id;
  if (renewal) {
    zone_id = node->zone_id;
  } else {
    Status st = db_->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT id, zone_id FROM join_tokens WHERE token_hash = ? AND "
                                                 "expires_at > ? AND uses_left > 0",
                                                 {HashToken(e.join_token), now}));
      if (rows.empty())
        return Refuse(kJoinTokenInvalid, "the join token is unknown, expired or used up");
      zone_id = rows[0].Str("zone_id");
      token_id = rows[0].Str("id");
      return Status::Ok();
    });
    if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse_anonymous(st) : st;
  }
  ZonePolicy zone_policy;
  std::string zone_name;
  std::vector<policy::MeasurementRule> identities;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(zone_policy, LoadZonePolicy(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(identities, ActiveNodeIdentities(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT name FROM zones WHERE id = ?", {zone_id}, "zone"));
    zone_name = z.Str("name");
    return Status::Ok();
  }));

  // Genuine? Bound to this key and nonce? Acceptable under the zone's rules, from an agent
  // identity the zone accepts, never debug? One decision: libs/policy's (docs/policy.md).
  const policy::ZonePolicy& zp = zone_policy.rules;
  attest::Verdict verdict = VerifyEvidence(e.platform, e.evidence, clock_->Now());
  if (!verdict.genuine) return refuse(policy::EvaluatePlatform(verdict, zp).status);
  if (attest::PlatformName(verdict.platform) != e.platform) {
    return refuse(Refuse(policy::kPlatformMismatch, "the evidence is " + std::string(attest::PlatformName(verdict.platform)) +
                                                        " evidence, not " + e.platform));
  }
  std::vector<uint8_t> bound = e.public_key_der;
  bound.insert(bound.end(), nonce->begin(), nonce->end());
  policy::Decision binding = policy::CheckReportData(verdict, crypto::Sha256(bound));
  if (!binding.accepted()) return refuse(binding.status);
  // TDX and SEV-SNP report data are 64 bytes: SHA-256(key || nonce) then 32 zero bytes (the
  // configfs-tsm inblob, docs/agent.md); anything else in the second half is refused.
  if (e.platform != "sgx" && verdict.report_data_hex.size() == 128 &&
      verdict.report_data_hex.find_first_not_of('0', 64) != std::string::npos) {
    return refuse(Refuse(policy::kReportDataMismatch, "the evidence's report data does not end in 32 zero bytes"));
  }
  policy::Decision decision = policy::EvaluateIdentity(verdict, identities, zp, policy::kNodeIdentityNotAllowed);
  std::string platform = (verdict.insecure_sim ? "sim-" : "") + e.platform;
  json advisories(verdict.advisory_ids);
  std::string fmspc = verdict.details.value("fmspc", std::string());
  // SEV-SNP has no FMSPC: the chip and its reported TCB are recorded in the node's info.
  json platform_facts = json::object();
  if (e.platform == "sev-snp") {
    if (verdict.measurements.contains("reported_tcb")) platform_facts["reported_tcb"] = verdict.measurements["reported_tcb"];
    if (verdict.measurements.contains("chip_id")) platform_facts["chip_id"] = verdict.measurements["chip_id"];
    if (verdict.details.contains("product")) platform_facts["product"] = verdict.details["product"];
    if (verdict.details.contains("amd_crl")) platform_facts["amd_crl"] = verdict.details["amd_crl"];
  }
  std::string evidence_sha = HexEncode(crypto::Sha256(e.evidence));
  if (!decision.accepted()) {
    if (renewal) {
      // Record what the platform now is, so operators see why renewals stop.
      (void)db_->Write([&](Transaction& tx) -> Status {
        return tx.Exec("UPDATE nodes SET tcb_status = ?, advisory_ids = ?, evidence_sha256 = ? WHERE id = ?",
                       {verdict.tcb_status, advisories.dump(), evidence_sha, node->id})
            .status();
      });
    }
    return refuse(decision.status);
  }

  // Issue the node certificate, then record everything in one transaction.
  std::string node_id = renewal ? node->id : NewId("node");
  VOUCH_ASSIGN_OR_RETURN(auto signer, NodeSigner());
  NodeCertRequest creq;
  creq.spki_der = e.public_key_der;
  creq.node_id = node_id;
  creq.spiffe_uri = "spiffe://" + zone_name + "/node/" + node_id;
  creq.not_before = clock_->Now() - std::chrono::minutes(5);
  creq.validity = options_.node_cert_validity + std::chrono::minutes(5);
  VOUCH_ASSIGN_OR_RETURN(IssuedCert cert, IssueNodeCert(*signer, creq));
  std::string key_sha = HexEncode(crypto::Sha256(e.public_key_der));
  json info = e.info.is_object() ? e.info : json::object();
  if (!platform_facts.empty()) info["platform_tcb"] = platform_facts;
  Status st = db_->Write([&](Transaction& tx) -> Status {
    int64_t superseded = 0;
    if (renewal) {
      VOUCH_ASSIGN_OR_RETURN(Row n, tx.QueryOne("SELECT status, platform FROM nodes WHERE id = ?", {node_id}, "node"));
      if (n.Str("status") != "active")
        return Refuse(kNodeDeactivated, "node " + node_id + " is deactivated");
      if (n.Str("platform") != platform) {
        return Refuse(policy::kPlatformMismatch, "node " + node_id + " is a " + n.Str("platform") + " node, the evidence is " +
                                                     platform);
      }
      // Only the newest node certificate authenticates (AuthenticateNode checks the status).
      VOUCH_ASSIGN_OR_RETURN(superseded, tx.Exec("UPDATE certificates SET status = 'revoked', revoked_at = ?, "
                                                 "revocation_reason = 'superseded' WHERE kind = 'node' AND "
                                                 "node_id = ? AND status = 'valid'",
                                                 {now, node_id}));
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE nodes SET tcb_status = ?, advisory_ids = ?, fmspc = ?, evidence_sha256 = ?, "
                                    "public_key_sha256 = ?, cert_serial = ?, cert_not_after = ?, last_seen = ?, info = ? "
                                    "WHERE id = ?",
                                    {verdict.tcb_status, advisories.dump(), fmspc, evidence_sha, key_sha, cert.serial_hex,
                                     ToUnixSeconds(cert.not_after), now, info.dump(), node_id})
                                .status());
    } else {
      // Single use (or N uses): the decrement only succeeds while uses are left.
      VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = ? AND "
                                                "uses_left > 0 AND expires_at > ?",
                                                {token_id, now}));
      if (n != 1) return Refuse(kJoinTokenInvalid, "the join token is unknown, expired or used up");
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO nodes (id, zone_id, platform, tcb_status, advisory_ids, fmspc, "
                                    "evidence_sha256, public_key_sha256, status, cert_serial, cert_not_after, last_seen, "
                                    "info, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)",
                                    {node_id, zone_id, platform, verdict.tcb_status, advisories.dump(), fmspc, evidence_sha,
                                     key_sha, cert.serial_hex, ToUnixSeconds(cert.not_after), now, info.dump(), now})
                                .status());
    }
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO certificates (serial, zone_id, kind, node_id, subject, sans, not_before, "
                                  "not_after, pem, status, issued_to, created_at) VALUES (?, ?, 'node', ?, ?, ?, ?, ?, ?, "
                                  "'valid', ?, ?)",
                                  {cert.serial_hex, zone_id, node_id, "CN=" + node_id, json({creq.spiffe_uri}).dump(),
                                   ToUnixSeconds(cert.not_before), ToUnixSeconds(cert.not_after), cert.pem,
                                   "node:" + node_id, now})
                              .status());
    return Audit(tx, *this, renewal ? actor : Principal::System(), action, node_id,
                 {{"zone", zone_name},
                  {"platform", platform},
                  {"tcb_status", verdict.tcb_status},
                  {"advisory_ids", advisories},
                  {"fmspc", fmspc},
                  {"platform_tcb", platform_facts},
                  {"evidence_sha256", evidence_sha},
                  {"join_token", token_id},
                  {"superseded_certificates", superseded},
                  {"serial", cert.serial_hex}});
  });
  // A PermissionDenied here is a join token used up meanwhile (new node) or the node's own state.
  if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse_anonymous(st) : st;
  return json{{"node_id", node_id},
              {"zone", zone_name},
              {"platform", platform},
              {"tcb_status", verdict.tcb_status},
              {"advisory_ids", advisories},
              {"insecure_sim", verdict.insecure_sim},
              {"serial", cert.serial_hex},
              {"certificate_pem", cert.pem},
              {"ca_pem", signer->cert_pem()},
              {"not_after", TimeJson(ToUnixSeconds(cert.not_after))}};
}

namespace {

// The serial number of a client certificate the TLS layer has verified, by its DER bytes.
// Decoding a certificate (its key goes through OpenSSL's provider decoders) costs more than a
// signature verification; an agent sends the same certificate with every request. A pure
// function of the bytes, so one bounded cache for the process.
Result<std::string> ClientCertSerial(std::span<const uint8_t> der) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::string> cache;
  std::string key(der.begin(), der.end());
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto cert = crypto::CertFromDer(der);
  if (!cert.ok())
    return Unauthenticated("unreadable client certificate", std::string(kUnauthenticated));
  std::string serial = crypto::SerialHex(cert->get());
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 4096) cache.clear();
  cache.emplace(std::move(key), serial);
  return serial;
}

}  // namespace

Result<Principal> Manager::AuthenticateNode(std::span<const uint8_t> leaf_der) {
  VOUCH_ASSIGN_OR_RETURN(std::string serial, ClientCertSerial(leaf_der));
  int64_t now = Now();
  Principal p;
  // One statement (its own snapshot): on PostgreSQL one round trip per agent request, no BEGIN/COMMIT.
  Status st = [&]() -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, db_->QueryOnce("SELECT c.status AS cert_status, c.not_after, n.id, n.zone_id, "
                                                     "n.status FROM certificates c JOIN nodes n ON n.id = c.node_id "
                                                     "WHERE c.serial = ? AND c.kind = 'node'",
                                                     {serial}));
    if (rows.empty())
      return Unauthenticated("the client certificate is not a node certificate",
                             std::string(kUnauthenticated));
    const Row& r = rows[0];
    p.id = r.Str("id");
    if (r.Str("status") != "active")
      return PermissionDenied("node " + r.Str("id") + " is deactivated",
                              std::string(kNodeDeactivated));
    if (r.Str("cert_status") != "valid")
      return PermissionDenied("the node certificate is revoked", std::string(kNodeCertRevoked));
    if (r.Int("not_after") <= now)
      return Unauthenticated("the node certificate has expired", std::string(kNodeCertExpired));
    p.kind = Principal::Kind::kNode;
    p.id = r.Str("id");
    p.name = p.id;
    p.zone_id = r.Str("zone_id");
    return Status::Ok();
  }();
  if (st.code() == StatusCode::kPermissionDenied) {
    // A known node that may no longer act: audited like every other refusal, but an agent that
    // keeps retrying adds one entry per hour (with the count of those not audited), not one per try.
    Principal who;
    who.kind = Principal::Kind::kNode;
    who.id = p.id.empty() ? "cert:" + serial : p.id;
    bool audit = true;
    int64_t suppressed = 0;
    {
      std::lock_guard<std::mutex> lock(node_refusals_mu_);
      if (node_refusals_audited_.size() > 10000) node_refusals_audited_.clear();
      auto& entry = node_refusals_audited_[who.id + "/" + serial + "/" + st.reason()];
      if (entry.first != 0 && now - entry.first < 3600) {
        ++entry.second;
        audit = false;
      } else {
        suppressed = entry.second;
        entry = {now, 0};
      }
    }
    if (audit) {
      Status logged = suppressed == 0 ? st
                                      : Status(st.code(), st.message() + " (" + std::to_string(suppressed) +
                                                              " identical refusals in the last hour not audited)",
                                               st.reason());
      AuditRefusal(who, "node.authenticate", serial, logged);
    }
  }
  if (!st.ok()) return st;
  return p;
}

}  // namespace vouch::api
