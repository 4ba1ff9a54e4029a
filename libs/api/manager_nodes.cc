// Node agents: provisioning and renewal with platform evidence, mTLS identity, workload
// certificates after local attestation, heartbeats (docs/agent.md).
#include <algorithm>
#include <unordered_map>

#include "api/ca_adapter.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "attest/dcap_verifier.h"
#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/sgx_report.h"
#include "pki/ca.h"
#include "policy/policy.h"
#include "workload/wire.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

Result<ZonePolicy> LoadZonePolicy(Transaction& tx, const std::string& zone_id);

namespace {

constexpr char kNodeCaCertSetting[] = "node_ca_cert_pem";
constexpr char kNodeCaKeySetting[] = "node_ca_key_sealed";
constexpr char kNodeCaAad[] = "vouch:node-ca-key";
constexpr size_t kMaxNonces = 10000;
constexpr size_t kMaxEvidenceBytes = 64 * 1024;

Result<policy::ZonePolicy> ToPolicy(const ZonePolicy& z) {
  policy::ZonePolicy p;
  VOUCH_ASSIGN_OR_RETURN(p.min_tcb, policy::ParseTcbStatus(z.min_tcb));
  p.tolerated_advisories = z.tolerated_advisories;
  p.allow_sim = z.allow_sim;
  p.allow_debug = z.allow_debug;
  return p;
}

// The verdict a node's stored record stands for, so that a zone's current rules can be applied
// again at every certificate request.
attest::Verdict StoredNodeVerdict(const Row& n) {
  attest::Verdict v;
  v.genuine = true;
  v.tcb_status = n.Str("tcb_status");
  for (const auto& a : ParseJsonColumn(n.Str("advisory_ids"), json::array())) {
    if (a.is_string()) v.advisory_ids.push_back(a.get<std::string>());
  }
  v.insecure_sim = n.Str("platform").rfind("sim-", 0) == 0;
  return v;
}

Status Refuse(std::string_view code, std::string message) {
  return PermissionDenied(std::move(message), std::string(code));
}

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
    VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT key, value FROM settings WHERE key IN (?, ?)",
                                                 {std::string(kNodeCaCertSetting), std::string(kNodeCaKeySetting)}));
      for (const Row& r : rows) {
        if (r.Str(0) == kNodeCaCertSetting) cert_pem = r.Str(1);
        if (r.Str(0) == kNodeCaKeySetting) sealed_b64 = r.Str(1);
      }
      return Status::Ok();
    }));
    if (cert_pem.empty() || sealed_b64.empty()) return NotFound("no node CA yet", "no_node_ca");
    VOUCH_ASSIGN_OR_RETURN(auto sealed, Base64Decode(sealed_b64));
    auto key = crypto::Aes256GcmOpen(master_key_.span(), sealed, AsBytes(kNodeCaAad));
    if (!key.ok()) return DataLoss("the node CA key cannot be unsealed with this master key", "ca_key_unseal_failed");
    return LoadZoneSigner(cert_pem, *key);
  };
  auto signer = load();
  if (!signer.ok() && signer.status().code() == StatusCode::kNotFound) {
    VOUCH_ASSIGN_OR_RETURN(ZoneCaMaterial ca, CreateNodeCa(clock_->Now()));
    VOUCH_ASSIGN_OR_RETURN(auto sealed, crypto::Aes256GcmSeal(master_key_.span(), ca.key_der.span(), AsBytes(kNodeCaAad)));
    Status st = db_->Write([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT key FROM settings WHERE key = ?", {std::string(kNodeCaCertSetting)}));
      if (!rows.empty()) return Status::Ok();  // another instance made it first
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

Result<json> Manager::CreateNodeNonce() {
  std::vector<uint8_t> nonce = crypto::RandomBytes(32);
  std::string nonce_hex = HexEncode(nonce);
  int64_t now = Now();
  int64_t expires = now + options_.nonce_ttl.count();
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM node_nonces WHERE expires_at <= ?", {now}).status());
    VOUCH_ASSIGN_OR_RETURN(Row c, tx.QueryOne("SELECT COUNT(*) AS n FROM node_nonces", {}, "count"));
    if (static_cast<size_t>(c.Int("n")) >= kMaxNonces) {
      return ResourceExhausted("too many outstanding nonces; retry later", "too_many_nonces");
    }
    return tx.Exec("INSERT INTO node_nonces (nonce_hash, created_at, expires_at) VALUES (?, ?, ?)",
                   {HashToken(nonce_hex), now, expires})
        .status();
  }));
  return json{{"nonce", nonce_hex}, {"expires_at", TimeJson(expires)}};
}

attest::Verdict Manager::VerifyEvidence(std::span<const uint8_t> quote) {
  std::shared_ptr<const Verifiers> verifiers = CurrentVerifiers();
  if (!verifiers || verifiers->empty()) {
    return attest::VerifyDcapQuote(quote, std::nullopt, clock_->Now());
  }
  attest::Verdict last;
  for (const auto& v : *verifiers) {
    last = v->Verify(quote, clock_->Now());
    if (last.genuine) return last;
  }
  return last;
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
  // Shape checks first (400s, not audited: nothing security-relevant was attempted yet).
  if (e.platform != "sgx") return InvalidArgument("platform must be \"sgx\"", "unsupported_platform");
  if (e.evidence.empty() || e.evidence.size() > kMaxEvidenceBytes) {
    return InvalidArgument("evidence must be 1.." + std::to_string(kMaxEvidenceBytes) + " bytes", "invalid_evidence");
  }
  auto nonce = HexDecode(e.nonce_hex);
  if (!nonce.ok() || nonce->size() != 32) return InvalidArgument("nonce must be 64 hex digits", "invalid_nonce");
  auto key = crypto::PublicKeyFromDer(e.public_key_der);
  if (!key.ok() || crypto::DescribeKey(key->get()).rfind("EC P-", 0) != 0) {
    return InvalidArgument("public_key must be an EC P-256 or P-384 SubjectPublicKeyInfo", "invalid_public_key");
  }
  if (!renewal && e.join_token.empty()) return Unauthenticated("a join token is required", "join_token_required");

  // The nonce is consumed whatever happens next: it can never be used twice.
  int64_t now = Now();
  int64_t consumed = 0;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(consumed, tx.Exec("DELETE FROM node_nonces WHERE nonce_hash = ? AND expires_at > ?",
                                             {HashToken(e.nonce_hex), now}));
    return Status::Ok();
  }));
  if (consumed != 1) return refuse(Refuse("nonce_invalid", "the nonce is unknown, expired or already used"));

  // Which zone: the join token's, or the node's own.
  std::string zone_id, token_id;
  if (renewal) {
    zone_id = node->zone_id;
  } else {
    Status st = db_->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT id, zone_id FROM join_tokens WHERE token_hash = ? AND "
                                                 "expires_at > ? AND uses_left > 0",
                                                 {HashToken(e.join_token), now}));
      if (rows.empty()) return Refuse("join_token_invalid", "the join token is unknown, expired or used up");
      zone_id = rows[0].Str("zone_id");
      token_id = rows[0].Str("id");
      return Status::Ok();
    });
    if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse(st) : st;
  }
  ZonePolicy zone_policy;
  std::string zone_name;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(zone_policy, LoadZonePolicy(tx, zone_id));
    VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT name FROM zones WHERE id = ?", {zone_id}, "zone"));
    zone_name = z.Str("name");
    return Status::Ok();
  }));

  // Genuine? Bound to this key and nonce? Acceptable under the zone's rules?
  attest::Verdict verdict = VerifyEvidence(e.evidence);
  if (!verdict.genuine) {
    std::string why = verdict.error ? verdict.error->reason() + ": " + verdict.error->message() : "not genuine";
    return refuse(Refuse("evidence_not_genuine", "the node evidence is not genuine (" + why.substr(0, 300) + ")"));
  }
  std::vector<uint8_t> bound = e.public_key_der;
  bound.insert(bound.end(), nonce->begin(), nonce->end());
  std::string expected = HexEncode(crypto::Sha256(bound));
  if (verdict.report_data_hex.size() < 64 || !crypto::ConstantTimeEquals(verdict.report_data_hex.substr(0, 64), expected)) {
    return refuse(Refuse("report_data_mismatch", "the evidence's report data is not SHA-256(node public key || nonce)"));
  }
  VOUCH_ASSIGN_OR_RETURN(policy::ZonePolicy zp, ToPolicy(zone_policy));
  policy::Decision decision = policy::EvaluatePlatform(verdict, zp);
  std::string platform = verdict.insecure_sim ? "sim-sgx" : "sgx";
  json advisories(verdict.advisory_ids);
  std::string fmspc = verdict.details.value("fmspc", std::string());
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
  Status st = db_->Write([&](Transaction& tx) -> Status {
    if (renewal) {
      VOUCH_ASSIGN_OR_RETURN(Row n, tx.QueryOne("SELECT status FROM nodes WHERE id = ?", {node_id}, "node"));
      if (n.Str("status") != "active") return Refuse("node_deactivated", "node " + node_id + " is deactivated");
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
      if (n != 1) return Refuse("join_token_invalid", "the join token is unknown, expired or used up");
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
                  {"evidence_sha256", evidence_sha},
                  {"join_token", token_id},
                  {"serial", cert.serial_hex}});
  });
  if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse(st) : st;
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
  if (!cert.ok()) return Unauthenticated("unreadable client certificate", "unauthenticated");
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
  Status st = db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT c.status AS cert_status, c.not_after, n.id, n.zone_id, n.status "
                                               "FROM certificates c JOIN nodes n ON n.id = c.node_id "
                                               "WHERE c.serial = ? AND c.kind = 'node'",
                                               {serial}));
    if (rows.empty()) return Unauthenticated("the client certificate is not a node certificate", "unauthenticated");
    const Row& r = rows[0];
    p.id = r.Str("id");
    if (r.Str("status") != "active") return PermissionDenied("node " + r.Str("id") + " is deactivated", "node_deactivated");
    if (r.Str("cert_status") != "valid") return PermissionDenied("the node certificate is revoked", "node_cert_revoked");
    if (r.Int("not_after") <= now) return Unauthenticated("the node certificate has expired", "node_cert_expired");
    p.kind = Principal::Kind::kNode;
    p.id = r.Str("id");
    p.name = p.id;
    p.zone_id = r.Str("zone_id");
    return Status::Ok();
  });
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

// ---------------------------------------------------------------- workload certificates

Result<json> Manager::IssueForWorkload(const Principal& node, std::string_view csr_pem,
                                       std::span<const uint8_t> report_body, const std::string& instance_id) {
  if (node.kind != Principal::Kind::kNode) return PermissionDenied("only node agents may do this", "node_identity_required");
  auto body = evidence::ParseSgxReportBody(report_body);
  if (!body.ok()) return InvalidArgument("report must be a 384-byte SGX report body: " + body.status().message(), "invalid_report");
  if (!instance_id.empty() && !workload::IsValidWireId(instance_id)) {
    return InvalidArgument("invalid instance_id", "invalid_instance_id");
  }
  // Parsed and verified here, once (structure, key type, proof of possession): vouchd does not
  // rely on the agent's parsing, and issues from this same parsed CSR (docs/agent.md).
  auto checked = CheckCsr(csr_pem);
  if (!checked.ok()) return checked.status();
  const std::string mrenclave = HexEncode(body->mr_enclave);
  const std::string mrsigner = HexEncode(body->mr_signer);
  auto refuse = [&](const Status& st) -> Status {
    AuditRefusal(node, "certificate.issue", "mrenclave:" + mrenclave, st);
    return st;
  };
  if (!crypto::ConstantTimeEquals(std::span<const uint8_t>(body->report_data.data(), 32), checked->key_digest)) {
    return refuse(Refuse("report_data_mismatch", "the report data is not SHA-256 of the CSR's public key"));
  }

  // Every rule the request must satisfy, evaluated on one consistent view of the store. Run
  // twice: on a read snapshot to decide and sign outside any transaction (signing is most of the
  // CPU; writers are serialised), and again inside the write that records the certificate, so
  // that what holds at commit time is what counts (a build revoked or a node deactivated in
  // between refuses the request; the signed certificate is then discarded, never returned).
  struct Decision {
    Row node, build;
    ZonePolicy zone_policy;
    std::vector<std::string> names;
  };
  auto decide = [&](Transaction& tx, Decision* d) -> Status {
    VOUCH_ASSIGN_OR_RETURN(d->node, tx.QueryOne("SELECT * FROM nodes WHERE id = ?", {node.id}, "node"));
    const Row& n = d->node;
    if (n.Str("status") != "active") return Refuse("node_deactivated", "node " + node.id + " is deactivated");
    VOUCH_ASSIGN_OR_RETURN(d->zone_policy, LoadZonePolicy(tx, n.Str("zone_id")));
    VOUCH_ASSIGN_OR_RETURN(policy::ZonePolicy zp, ToPolicy(d->zone_policy));
    policy::Decision pd = policy::EvaluatePlatform(StoredNodeVerdict(n), zp);
    if (!pd.accepted()) {
      return Refuse("node_tcb_not_acceptable", "node " + node.id + " is no longer acceptable in its zone: " +
                                                   pd.status.reason() + ": " + pd.status.message());
    }
    VOUCH_ASSIGN_OR_RETURN(Rows builds,
                           tx.Query("SELECT b.*, a.name AS app_name, a.domains AS domains, z.name AS zone_name "
                                    "FROM builds b JOIN apps a ON a.id = b.app_id JOIN zones z ON z.id = a.zone_id "
                                    "WHERE a.zone_id = ? AND a.deleted = 0 AND b.mrenclave = ? AND b.mrsigner = ? AND "
                                    "b.isvprodid = ? AND b.isvsvn = ? ORDER BY b.created_at",
                                    {n.Str("zone_id"), mrenclave, mrsigner, int64_t{body->isv_prod_id},
                                     int64_t{body->isv_svn}}));
    if (builds.empty()) {
      return Refuse("measurement_not_allowed", "no build in this zone has mrenclave " + mrenclave + ", mrsigner " +
                                                   mrsigner + ", isvprodid " + std::to_string(body->isv_prod_id) +
                                                   ", isvsvn " + std::to_string(body->isv_svn));
    }
    const Row* b = nullptr;
    for (const Row& r : builds) {
      if (r.Str("status") == "approved") {
        b = &r;
        break;
      }
    }
    if (b == nullptr) {
      std::string s = builds.front().Str("status");
      return Refuse("build_" + s, "build " + builds.front().Str("id") + " is " + s + ", not approved");
    }
    d->build = *b;
    if (body->debug() && !(d->zone_policy.allow_debug && b->Int("debug") != 0)) {
      return Refuse("debug_not_allowed", "the enclave runs in debug mode, which this zone or build does not allow");
    }
    json allowed = ParseJsonColumn(b->Str("domains"), json::array());
    d->names = checked->dns_names;
    if (d->names.empty()) {
      for (const auto& a : allowed) d->names.push_back(a.get<std::string>());
    }
    for (const auto& nm : d->names) {
      bool ok = false;
      for (const auto& a : allowed) {
        std::string dom = a.get<std::string>();
        if (dom == nm) ok = true;
        if (dom.rfind("*.", 0) == 0 && nm.size() > dom.size() - 1 &&
            nm.compare(nm.size() - (dom.size() - 1), dom.size() - 1, dom.substr(1)) == 0 &&
            nm.substr(0, nm.size() - (dom.size() - 1)).find('.') == std::string::npos) {
          ok = true;
        }
      }
      if (!ok) {
        return Refuse("domain_not_allowed",
                      "'" + nm.substr(0, 100) + "' is not an allowed domain of app '" + b->Str("app_name") + "'");
      }
    }
    if (!instance_id.empty()) {
      VOUCH_ASSIGN_OR_RETURN(Rows i, tx.Query("SELECT id FROM instances WHERE id = ? AND node_id = ? AND build_id = ?",
                                              {instance_id, node.id, b->Str("id")}));
      if (i.empty()) {
        return NotFound("instance '" + instance_id + "' of this build on this node not found", "instance_not_found");
      }
    }
    return Status::Ok();
  };

  // 1. Decide on a snapshot, then sign outside any transaction.
  Decision d;
  std::shared_ptr<pki::CaSigner> signer;
  std::string ca_pem;
  Status st = db_->Read([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(decide(tx, &d));
    VOUCH_ASSIGN_OR_RETURN(signer, ZoneSigner(tx, d.node.Str("zone_id")));
    VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT ca_cert_pem FROM zones WHERE id = ?", {d.node.Str("zone_id")}, "zone"));
    ca_pem = z.Str("ca_cert_pem");
    return Status::Ok();
  });
  if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse(st) : st;
  const Row& b = d.build;
  const std::string zone_id = d.node.Str("zone_id");
  WorkloadCertRequest req;
  req.checked_csr = checked->csr;
  req.common_name = d.names.empty() ? b.Str("app_name") : d.names.front();
  req.dns_names = d.names;
  req.spiffe_uri = "spiffe://" + b.Str("zone_name") + "/app/" + b.Str("app_name");
  req.not_before = clock_->Now() - std::chrono::minutes(5);
  req.not_after = clock_->Now() + WorkloadCertValidity(d.zone_policy);
  req.platform = d.node.Str("platform");
  req.mrenclave_hex = mrenclave;
  req.mrsigner_hex = mrsigner;
  req.isvprodid = body->isv_prod_id;
  req.isvsvn = body->isv_svn;
  VOUCH_ASSIGN_OR_RETURN(IssuedCert cert, IssueWorkloadCert(*signer, req));
  const std::string inst = instance_id.empty() ? NewId("inst") : instance_id;
  json sans(d.names);
  sans.push_back(req.spiffe_uri);

  // 2. Record it (SQLite commits concurrent requests in groups: one fsync for many), checking
  //    again first. The answer goes out only after this commit.
  st = db_->Write([&](Transaction& tx) -> Status {
    Decision now;
    VOUCH_RETURN_IF_ERROR(decide(tx, &now));
    if (now.build.Str("id") != b.Str("id") || now.names != d.names || now.node.Str("zone_id") != zone_id) {
      return Aborted("the app's builds or domains changed during the request; retry", "conflict_retry");
    }
    int64_t now_s = Now();
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, instance_id, "
                                  "subject, sans, not_before, not_after, pem, status, issued_to, created_at) VALUES (?, ?, "
                                  "'workload', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?)",
                                  {cert.serial_hex, zone_id, b.Str("app_id"), b.Str("id"), node.id, inst,
                                   "CN=" + req.common_name, sans.dump(), ToUnixSeconds(cert.not_before),
                                   ToUnixSeconds(cert.not_after), cert.pem, node.Actor(), now_s})
                              .status());
    if (instance_id.empty()) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, "
                                    "first_seen, last_heartbeat) VALUES (?, ?, ?, ?, ?, 'running', 0, ?, ?)",
                                    {inst, b.Str("app_id"), b.Str("id"), node.id, cert.serial_hex, now_s, now_s})
                                .status());
    } else {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE instances SET serial = ?, status = 'running', last_heartbeat = ? WHERE id = ?",
                                    {cert.serial_hex, now_s, inst})
                                .status());
    }
    return Audit(tx, *this, node, "certificate.issue", cert.serial_hex,
                 {{"build", b.Str("id")}, {"app", b.Str("app_name")}, {"instance", inst}, {"node", node.id}, {"sans", sans}});
  });
  if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse(st) : st;
  issued_.fetch_add(1);
  return json{{"serial", cert.serial_hex},
              {"instance_id", inst},
              {"app", b.Str("app_name")},
              {"build_id", b.Str("id")},
              {"certificate_pem", cert.pem},
              {"chain_pem", cert.pem},  // the zone CA signs leaves directly: no intermediates
              {"ca_pem", ca_pem},
              {"not_after", TimeJson(ToUnixSeconds(cert.not_after))}};
}

// ---------------------------------------------------------------- heartbeats

Result<json> Manager::IngestHeartbeats(const Principal& node, const json& node_info, const std::vector<Heartbeat>& hbs) {
  if (node.kind != Principal::Kind::kNode) return PermissionDenied("only node agents may do this", "node_identity_required");
  int64_t now = Now();
  struct Item {
    const Heartbeat* hb;
    std::string result = "ok";
  };
  std::vector<Item> items;
  items.reserve(hbs.size());
  for (const Heartbeat& h : hbs) items.push_back({&h});

  // 1. Look up each instance's current certificate (serial and status); the certificate itself
  //    is read and its key decoded only for a serial whose key is not cached yet.
  struct Cert {
    std::string serial;
    bool valid = false;
    std::shared_ptr<EVP_PKEY> key;
  };
  std::unordered_map<std::string, Cert> inst;  // instance id -> its certificate
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    inst.clear();
    for (Item& it : items) {
      if (inst.count(it.hb->instance_id)) continue;
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT i.serial, c.status FROM instances i JOIN certificates c ON "
                                                 "c.serial = i.serial WHERE i.id = ? AND i.node_id = ?",
                                                 {it.hb->instance_id, node.id}));
      if (rows.empty()) continue;
      Cert c;
      c.serial = rows[0].Str(0);
      c.valid = rows[0].Str(1) == "valid";
      if (c.valid) {
        {
          std::lock_guard<std::mutex> lock(keys_mu_);
          auto k = heartbeat_keys_.find(c.serial);
          if (k != heartbeat_keys_.end()) c.key = k->second;
        }
        if (!c.key) {
          VOUCH_ASSIGN_OR_RETURN(Rows pem, tx.Query("SELECT pem FROM certificates WHERE serial = ?", {c.serial}));
          auto cert = pem.empty() ? Result<crypto::X509Ptr>(NotFound("gone")) : crypto::CertFromPem(pem[0].Str(0));
          if (cert.ok()) {
            c.key = std::shared_ptr<EVP_PKEY>(X509_get_pubkey(cert->get()), EVP_PKEY_free);  // new reference
            if (c.key) {
              std::lock_guard<std::mutex> lock(keys_mu_);
              if (heartbeat_keys_.size() > 500000) heartbeat_keys_.clear();
              heartbeat_keys_[c.serial] = c.key;
            }
          }
        }
      }
      inst.emplace(it.hb->instance_id, std::move(c));
    }
    return Status::Ok();
  }));
  // 2. Verify signatures outside any transaction.
  for (Item& it : items) {
    const Heartbeat& h = *it.hb;
    auto found = inst.find(h.instance_id);
    if (found == inst.end() || (found->second.valid && !found->second.key)) {
      it.result = "unknown_instance";
      continue;
    }
    if (!found->second.valid) {
      it.result = "certificate_revoked";
      continue;
    }
    if (h.status != "running" && h.status != "stopping") {
      it.result = "invalid_status";
      continue;
    }
    if (h.timestamp > now + 300) {
      it.result = "bad_timestamp";
      continue;
    }
    std::string msg = workload::HeartbeatMessage(h.instance_id, h.seq, h.timestamp, h.status);
    if (!crypto::Verify(found->second.key.get(), AsBytes(msg), h.signature)) it.result = "bad_signature";
  }
  // 3. Record, in sequence order per instance; a sequence number not above the last is a replay.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].hb->seq < items[b].hb->seq; });
  int64_t accepted = 0;
  json rejected = json::array();
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    accepted = 0;
    for (size_t idx : order) {
      Item& it = items[idx];
      if (it.result != "ok" && it.result != "replayed" && it.result != "instance_stopped") continue;
      it.result = "ok";
      const Heartbeat& h = *it.hb;
      int64_t seen = std::min(h.timestamp, now);
      VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE instances SET last_seq = ?, last_heartbeat = ?, status = ? "
                                                "WHERE id = ? AND node_id = ? AND last_seq < ? AND status <> 'stopped'",
                                                {h.seq, seen, std::string(h.status == "stopping" ? "stopped" : "running"),
                                                 h.instance_id, node.id, h.seq}));
      if (n == 1) {
        ++accepted;
      } else {
        // Not recorded: a stopped instance takes no more heartbeats; otherwise the seq was seen.
        VOUCH_ASSIGN_OR_RETURN(Rows cur, tx.Query("SELECT status FROM instances WHERE id = ? AND node_id = ?",
                                                  {h.instance_id, node.id}));
        it.result = !cur.empty() && cur[0].Str(0) == "stopped" ? "instance_stopped" : "replayed";
      }
    }
    json info = node_info.is_object() ? node_info : json::object();
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("UPDATE nodes SET last_seen = ?, info = ? WHERE id = ?", {now, info.dump(), node.id}).status());
    rejected = json::array();
    for (const Item& it : items) {
      if (it.result != "ok") {
        rejected.push_back({{"instance_id", it.hb->instance_id}, {"seq", it.hb->seq}, {"code", it.result}});
      }
    }
    if (!rejected.empty()) {
      json sample = json::array();
      for (size_t i = 0; i < rejected.size() && i < 10; ++i) sample.push_back(rejected[i]);
      VOUCH_RETURN_IF_ERROR(Audit(tx, *this, node, "heartbeat.reject", node.id,
                                  {{"rejected", rejected.size()}, {"sample", sample}}));
    }
    return Status::Ok();
  }));
  return json{{"accepted", accepted}, {"rejected", rejected}};
}

Status Manager::RecordAgentRefusals(const Principal& node, const json& refusals) {
  if (node.kind != Principal::Kind::kNode) return PermissionDenied("only node agents may do this", "node_identity_required");
  if (!refusals.is_array() || refusals.empty()) return Status::Ok();
  return db_->Write([&](Transaction& tx) -> Status {
    for (const json& r : refusals) {
      const std::string mrenclave = r.value("mrenclave", std::string());
      VOUCH_RETURN_IF_ERROR(store::AppendAudit(tx, clock_->Now(), node.Actor(), "certificate.issue",
                                               mrenclave.empty() ? "local" : "mrenclave:" + mrenclave,
                                               "denied:" + r.value("code", std::string("local_refusal")),
                                               {{"reported_by", "agent"},
                                                {"at", TimeJson(r.value("at", int64_t{0}))},
                                                {"message", r.value("message", std::string())}}));
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------- status on read

std::string Manager::EffectiveInstanceStatus(const Row& r) const {
  std::string s = r.Str("status");
  if (s != "running") return s;
  int64_t last = r.IsNull("last_heartbeat") ? r.Int("first_seen") : r.Int("last_heartbeat");
  if (Now() - last > options_.heartbeat_interval.count() * options_.missed_intervals) return "unresponsive";
  return s;
}

std::string Manager::EffectiveNodeStatus(const Row& r) const {
  std::string s = r.Str("status");
  if (s != "active") return s;
  int64_t last = r.IsNull("last_seen") ? r.Int("created_at") : r.Int("last_seen");
  if (Now() - last > options_.node_checkin_interval.count() * options_.missed_intervals) return "unresponsive";
  return s;
}

}  // namespace vouch::api
