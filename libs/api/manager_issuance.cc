// Workload certificates for reports that a node agent verified locally (docs/agent.md).
#include <algorithm>

#include "api/ca_adapter.h"
#include "api/heartbeat_state.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/manager_nodes_internal.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "evidence/sgx_report.h"
#include "pki/ca.h"
#include "pki/csr.h"
#include "pki/names.h"
#include "policy/policy.h"
#include "workload/wire.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

// ---------------------------------------------------------------- workload certificates

Result<json> Manager::IssueForWorkload(const Principal& node, std::string_view csr_pem,
                                       std::span<const uint8_t> report_body, const std::string& instance_id) {
  if (node.kind != Principal::Kind::kNode)
    return PermissionDenied("only node agents may do this", std::string(kNodeIdentityRequired));
  auto body = evidence::ParseSgxReportBody(report_body);
  if (!body.ok())
    return InvalidArgument("report must be a 384-byte SGX report body: " + body.status().message(),
                           std::string(kInvalidReport));
  if (!instance_id.empty() && !workload::IsValidWireId(instance_id)) {
    return InvalidArgument("invalid instance_id", std::string(kInvalidInstanceId));
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
  // The workload's verdict: its REPORT, verified by the node agent (local attestation).
  attest::Verdict workload_verdict;
  workload_verdict.platform = attest::Platform::kSgx;
  workload_verdict.genuine = true;
  workload_verdict.report_data_hex = HexEncode(body->report_data);
  workload_verdict.measurements = {{"mrenclave", mrenclave},       {"mrsigner", mrsigner},
                                   {"isvprodid", body->isv_prod_id}, {"isvsvn", body->isv_svn},
                                   {"debug", body->debug()}};
  policy::Decision binding = policy::CheckReportData(workload_verdict, checked->key_digest);
  if (!binding.accepted()) {
    return refuse(Refuse(binding.status.reason(), "the report data is not SHA-256 of the CSR's public key"));
  }

  // Every rule the request must satisfy, evaluated on one consistent view of the store. Run
  // twice: on a read snapshot to decide and sign outside any transaction (signing is most of the
  // CPU; writers are serialised), and again inside the write that records the certificate, so
  // that what holds at commit time is what counts (a build revoked or a node deactivated in
  // between refuses the request; the signed certificate is then discarded, never returned).
  struct Decision {
    Row node, build;
    ZonePolicy zone_policy;
    std::string zone_ca_pem, zone_heartbeat_pub_pem;  // the zone's, as read with the node
    std::vector<std::string> names;
    std::string replaced_serial;  // a renewal: the instance's certificate until now
  };
  // The node, its zone's CA, heartbeat public key and policy, and the builds of the zone with this
  // measurement, in one query (each statement is a round trip to PostgreSQL, whose CPU per
  // certificate bounds issuance on a shared machine: BENCHMARKS.md, "PostgreSQL costs (issue 16)").
  // The builds' columns carry a prefix so that they never shadow the node's.
  static constexpr char kDecideSql[] =
      "SELECT n.*, z.ca_cert_pem AS zone_ca_cert_pem, z.heartbeat_pub_pem AS zone_heartbeat_pub_pem, "
      "z.policy AS zone_policy, z.name AS zone_name, b.id AS b_id, b.app_id AS b_app_id, b.mrenclave AS b_mrenclave, "
      "b.mrsigner AS b_mrsigner, b.isvprodid AS b_isvprodid, b.isvsvn AS b_isvsvn, b.status AS b_status, "
      "b.debug AS b_debug, b.created_at AS b_created_at, a.name AS b_app_name, a.domains AS b_domains "
      "FROM nodes n JOIN zones z ON z.id = n.zone_id "
      "LEFT JOIN (builds b JOIN apps a ON a.id = b.app_id AND a.deleted = 0) ON a.zone_id = n.zone_id AND "
      "b.mrenclave = ? AND b.mrsigner = ? AND b.isvprodid = ? AND b.isvsvn = ? "
      "WHERE n.id = ?";
  const std::vector<Value> decide_params{mrenclave, mrsigner, int64_t{body->isv_prod_id}, int64_t{body->isv_svn},
                                         node.id};
  // The decision from kDecideSql's rows; `tx` (the same snapshot) only reads a renewed instance.
  auto decide_rows = [&](const Rows& joined, Transaction* tx, Decision* d) -> Status {
    *d = Decision{};
    if (joined.empty()) return NotFound("node not found");
    d->node = joined[0];
    const Row& n = d->node;
    d->zone_ca_pem = n.Str("zone_ca_cert_pem");
    d->zone_heartbeat_pub_pem = n.IsNull("zone_heartbeat_pub_pem") ? "" : n.Str("zone_heartbeat_pub_pem");
    if (n.Str("status") != "active")
      return Refuse(kNodeDeactivated, "node " + node.id + " is deactivated");
    VOUCH_ASSIGN_OR_RETURN(d->zone_policy, PolicyFromJson(n.Str("zone_policy")));
    const policy::ZonePolicy& zp = d->zone_policy.rules;
    // One decision, libs/policy's (docs/policy.md): the node's standing, then the workload's
    // measurement against the zone's builds, their approval and debug.
    policy::Decision standing = policy::EvaluateNodeStanding(StoredNodeVerdict(n), zp);
    if (!standing.accepted()) {
      return Refuse(standing.status.reason(), "node " + node.id + ": " + standing.status.message());
    }
    // The matching builds as rows of their own (the columns below are all that is read of them).
    Rows builds;
    static const auto kBuildColumns = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{
        "id", "app_id", "mrenclave", "mrsigner", "isvprodid", "isvsvn", "status", "debug", "app_name", "domains",
        "zone_name"});
    // Oldest first (an ORDER BY would cost PostgreSQL a sort node per query for the usual one row).
    std::vector<const Row*> matched;
    for (const Row& r : joined) {
      if (!r.IsNull("b_id")) matched.push_back(&r);
    }
    std::stable_sort(matched.begin(), matched.end(), [](const Row* x, const Row* y) {
      const int64_t cx = x->Int("b_created_at"), cy = y->Int("b_created_at");
      return cx != cy ? cx < cy : x->Str("b_id") < y->Str("b_id");
    });
    for (const Row* rp : matched) {
      const Row& r = *rp;
      builds.emplace_back(kBuildColumns,
                          std::vector<Value>{r.Str("b_id"), r.Str("b_app_id"), r.Str("b_mrenclave"), r.Str("b_mrsigner"),
                                             r.Int("b_isvprodid"), r.Int("b_isvsvn"), r.Str("b_status"), r.Int("b_debug"),
                                             r.Str("b_app_name"), r.Str("b_domains"), r.Str("zone_name")});
    }
    std::vector<policy::BuildRule> rules;
    for (const Row& r : builds) {
      policy::SgxMeasurementRule m;
      m.mrenclave = r.Str("mrenclave");
      m.mrsigner = r.Str("mrsigner");
      m.isvprodid = static_cast<uint16_t>(r.Int("isvprodid"));
      m.min_isvsvn = static_cast<uint16_t>(r.Int("isvsvn"));
      rules.push_back(policy::BuildRule{policy::MeasurementRule{m}, r.Str("status"), r.Int("debug") != 0});
    }
    size_t chosen = 0;
    policy::Decision workload = policy::EvaluateWorkload(workload_verdict, rules, zp, &chosen);
    if (!workload.accepted()) return workload.status;
    const Row* b = &builds[chosen];
    d->build = *b;
    std::vector<std::string> allowed;
    for (const auto& a : ParseJsonColumn(b->Str("domains"), json::array())) {
      if (a.is_string()) allowed.push_back(a.get<std::string>());
    }
    d->names.clear();  // requested names are certified in lower case (pki/names.h)
    for (const auto& nm : checked->dns_names) d->names.push_back(pki::LowerDnsName(nm));
    if (d->names.empty()) d->names = allowed;
    for (const auto& nm : d->names) {
      if (!pki::DomainAllowed(nm, allowed)) {
        return Refuse(kDomainNotAllowed,
                      "'" + nm.substr(0, 100) + "' is not an allowed domain of app '" + b->Str("app_name") + "'");
      }
    }
    if (!instance_id.empty()) {
      if (tx == nullptr) return Internal("a renewal is decided in a transaction");
      VOUCH_ASSIGN_OR_RETURN(Rows i, tx->Query("SELECT id, serial FROM instances WHERE id = ? AND node_id = ? AND build_id = ?",
                                              {instance_id, node.id, b->Str("id")}));
      if (i.empty()) {
        return NotFound("instance '" + instance_id + "' of this build on this node not found",
                        std::string(kInstanceNotFound));
      }
      d->replaced_serial = i[0].Str(1);
    }
    return Status::Ok();
  };
  auto decide = [&](Transaction& tx, Decision* d) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows joined, tx.Query(kDecideSql, decide_params));
    return decide_rows(joined, &tx, d);
  };
  // ZoneSigner's rule without its query: the cached signer while it is still the zone's CA as the
  // decision's snapshot has it (kDecideSql reads ca_cert_pem); null when there is none.
  auto cached_signer = [&](const Decision& dd) -> std::shared_ptr<pki::CaSigner> {
    std::lock_guard<std::mutex> lock(signers_mu_);
    auto it = signers_.find(dd.node.Str("zone_id"));
    return it != signers_.end() && it->second->cert_pem() == dd.zone_ca_pem ? it->second : nullptr;
  };

  // 1. Decide on a snapshot, then sign outside any transaction. A new instance with its zone's
  //    signer cached needs kDecideSql only: one statement, its own snapshot (on PostgreSQL one
  //    round trip, no BEGIN/COMMIT); otherwise a read transaction (the renewed instance, the signer).
  Decision d;
  std::shared_ptr<pki::CaSigner> signer;
  Status st = Status::Ok();
  bool decided = false;
  if (instance_id.empty()) {
    auto joined = db_->QueryOnce(kDecideSql, decide_params);
    st = joined.ok() ? decide_rows(*joined, nullptr, &d) : joined.status();
    if (st.ok()) signer = cached_signer(d);
    decided = !st.ok() || signer != nullptr;  // a refusal or a store error stands as it is
  }
  if (!decided) {
    st = db_->Read([&](Transaction& tx) -> Status {
      VOUCH_RETURN_IF_ERROR(decide(tx, &d));
      signer = cached_signer(d);
      if (signer == nullptr) {
        VOUCH_ASSIGN_OR_RETURN(signer, ZoneSigner(tx, d.node.Str("zone_id")));
      }
      return Status::Ok();
    });
  }
  const std::string ca_pem = d.zone_ca_pem;
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
  //    again first. The answer goes out only after this commit. An EC P-256 instance key also
  //    gets the zone's heartbeat public key (made and sealed here on the zone's first need), from
  //    which the workload derives its heartbeat MAC key (docs/formats/heartbeat-key.md).
  const bool mac_heartbeats = checked->csr->key_type == pki::PublicKeyType::kEcP256;
  std::string heartbeat_pub_pem;
  std::string replaced_serial;
  const bool pg = db_->backend() == "postgres";
  st = WriteRowKeyed(*db_, [&](Transaction& tx) -> Status {
    heartbeat_pub_pem.clear();
    Decision now;
    VOUCH_RETURN_IF_ERROR(decide(tx, &now));
    if (now.build.Str("id") != b.Str("id") || now.names != d.names || now.node.Str("zone_id") != zone_id) {
      return Aborted("the app's builds or domains changed during the request; retry",
                     std::string(kConflictRetry));
    }
    // Signed by the zone's active root only: a root activated since the decision (another member
    // may have, manager_ca_rotation.cc) refuses this certificate, signed by the one before.
    if (now.zone_ca_pem != signer->cert_pem()) {
      return Aborted("the zone's CA changed during the request; retry", std::string(kConflictRetry));
    }
    if (mac_heartbeats) {
      // A zone's heartbeat public key is only ever set from NULL (EnsureZoneHeartbeatKey): one
      // read with the node is current; only a zone without one yet goes to make it.
      heartbeat_pub_pem = now.zone_heartbeat_pub_pem;
      if (heartbeat_pub_pem.empty()) {
        VOUCH_ASSIGN_OR_RETURN(heartbeat_pub_pem, EnsureZoneHeartbeatKey(tx, zone_id));
      }
    }
    replaced_serial = now.replaced_serial;
    int64_t now_s = Now();
    static constexpr char kInsertCert[] =
        "INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, instance_id, subject, sans, "
        "not_before, not_after, pem, status, issued_to, created_at) VALUES (?, ?, 'workload', ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "'valid', ?, ?)";
    static constexpr char kInsertInstance[] =
        "INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, first_seen, last_heartbeat) "
        "VALUES (?, ?, ?, ?, ?, 'running', 0, ?, ?)";
    static constexpr char kRenewInstance[] =
        "UPDATE instances SET serial = ?, status = 'running', last_heartbeat = ? WHERE id = ?";
    std::vector<Value> cert_params{cert.serial_hex, zone_id, b.Str("app_id"), b.Str("id"), node.id, inst,
                                   "CN=" + req.common_name, sans.dump(), ToUnixSeconds(cert.not_before),
                                   ToUnixSeconds(cert.not_after), cert.pem, node.Actor(), now_s};
    std::vector<Value> inst_params =
        instance_id.empty() ? std::vector<Value>{inst, b.Str("app_id"), b.Str("id"), node.id, cert.serial_hex, now_s, now_s}
                            : std::vector<Value>{cert.serial_hex, now_s, inst};
    const char* inst_sql = instance_id.empty() ? kInsertInstance : kRenewInstance;
    if (pg) {
      // Both rows in one statement (one round trip): the certificate's INSERT as a
      // data-modifying WITH, which PostgreSQL runs exactly once, with the instance's statement.
      cert_params.insert(cert_params.end(), inst_params.begin(), inst_params.end());
      VOUCH_RETURN_IF_ERROR(
          tx.Exec(std::string("WITH cert AS (") + kInsertCert + ") " + inst_sql, cert_params).status());
    } else {
      VOUCH_RETURN_IF_ERROR(tx.Exec(kInsertCert, cert_params).status());
      VOUCH_RETURN_IF_ERROR(tx.Exec(inst_sql, inst_params).status());
    }
    return Audit(tx, *this, node, "certificate.issue", cert.serial_hex,
                 {{"build", b.Str("id")}, {"app", b.Str("app_name")}, {"instance", inst}, {"node", node.id}, {"sans", sans}});
  });
  if (!st.ok()) return st.code() == StatusCode::kPermissionDenied ? refuse(st) : st;
  issued_.fetch_add(1);
  // A heartbeat MAC'd under the replaced certificate's K may still be queued at the agent.
  if (!replaced_serial.empty()) heartbeats_->NoteRenewal(inst, replaced_serial);
  json answer{{"serial", cert.serial_hex},
              {"instance_id", inst},
              {"app", b.Str("app_name")},
              {"build_id", b.Str("id")},
              {"certificate_pem", cert.pem},
              {"chain_pem", cert.pem},  // the zone CA signs leaves directly: no intermediates
              {"ca_pem", ca_pem},
              {"not_after", TimeJson(ToUnixSeconds(cert.not_after))}};
  if (!heartbeat_pub_pem.empty()) {
    answer["heartbeat_key"] = {{"version", crypto::kHeartbeatKeyVersion}, {"public_key_pem", heartbeat_pub_pem}};
  }
  return answer;
}

}  // namespace vouch::api
