// Certificates: manual issuance, listing and reading, revocation (and the CRL it regenerates).
#include <algorithm>

#include "api/ca_adapter.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "pki/names.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr char kCertSelect[] =
    "SELECT c.*, z.name AS zone_name, a.name AS app_name FROM certificates c LEFT JOIN zones z ON z.id = c.zone_id "
    "LEFT JOIN apps a ON a.id = c.app_id";

json CertJson(const Row& r, int64_t now) {
  std::string status = r.Str("status");
  if (status == "valid" && r.Int("not_after") <= now) status = "expired";
  json j{{"serial", r.Str("serial")},
         {"zone", r.Str("zone_name")},
         {"kind", r.Str("kind")},
         {"app", r.IsNull("app_name") ? json(nullptr) : json(r.Str("app_name"))},
         {"build_id", r.IsNull("build_id") ? json(nullptr) : json(r.Str("build_id"))},
         {"node_id", r.IsNull("node_id") ? json(nullptr) : json(r.Str("node_id"))},
         {"instance_id", r.IsNull("instance_id") ? json(nullptr) : json(r.Str("instance_id"))},
         {"subject", r.Str("subject")},
         {"sans", ParseJsonColumn(r.Str("sans"), json::array())},
         {"not_before", TimeJson(r.Int("not_before"))},
         {"not_after", TimeJson(r.Int("not_after"))},
         {"status", status},
         {"issued_to", r.Str("issued_to")},
         {"pem", r.Str("pem")}};
  if (!r.IsNull("revoked_at")) {
    j["revoked_at"] = TimeJson(r.Int("revoked_at"));
    j["revocation_reason"] = r.Str("revocation_reason");
  }
  return j;
}

}  // namespace

Status Manager::RevokeCertsWhere(Transaction& tx, const std::string& where_sql, const std::vector<Value>& params,
                                 const std::string& reason, std::vector<std::string>* zones_touched) {
  VOUCH_ASSIGN_OR_RETURN(Rows zones, tx.Query("SELECT DISTINCT zone_id FROM certificates WHERE status = 'valid' AND " +
                                                  where_sql,
                                              params));
  std::vector<Value> upd = {Now(), reason};
  upd.insert(upd.end(), params.begin(), params.end());
  VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? "
                                "WHERE status = 'valid' AND " + where_sql,
                                upd)
                            .status());
  for (const Row& z : zones) {
    VOUCH_RETURN_IF_ERROR(RegenerateCrl(tx, z.Str(0)));
    zones_touched->push_back(z.Str(0));
  }
  return Status::Ok();
}

Result<int64_t> Manager::MarkRevoked(Transaction& tx, const std::vector<std::string>& serials, const std::string& reason) {
  constexpr size_t kChunk = 200;  // bound the statement's parameters
  int64_t changed = 0;
  const int64_t now = Now();
  for (size_t i = 0; i < serials.size(); i += kChunk) {
    size_t n = std::min(kChunk, serials.size() - i);
    std::string marks;
    std::vector<Value> params = {now, reason};
    for (size_t k = 0; k < n; ++k) {
      marks += k == 0 ? "?" : ", ?";
      params.emplace_back(serials[i + k]);
    }
    VOUCH_ASSIGN_OR_RETURN(int64_t c, tx.Exec("UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? "
                                              "WHERE status = 'valid' AND serial IN (" + marks + ")",
                                              params));
    changed += c;
  }
  return changed;
}

Result<json> Manager::IssueManual(const Principal& p, const std::string& build_id, std::string_view csr_pem) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (csr_pem.size() > 64 * 1024)
    return InvalidArgument("CSR is larger than 64 KiB", std::string(kInvalidCsr));
  VOUCH_ASSIGN_OR_RETURN(CsrInfo csr, InspectCsr(csr_pem));
  json out;
  VOUCH_RETURN_IF_ERROR(WriteRowKeyed(*db_, [&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT b.*, a.name AS app_name, a.domains AS domains, a.zone_id AS zone_id, "
                                               "z.name AS zone_name FROM builds b JOIN apps a ON a.id = b.app_id "
                                               "JOIN zones z ON z.id = a.zone_id WHERE b.id = ? AND a.deleted = 0",
                                               {build_id}));
    if (rows.empty())
      return NotFound("build '" + build_id.substr(0, 80) + "' not found",
                      std::string(kBuildNotFound));
    const Row& b = rows[0];
    if (b.Str("status") != "approved") {
      return FailedPrecondition("build " + build_id + " is " + b.Str("status") + ", not approved",
                                std::string(kBuildNotApproved));
    }
    std::vector<std::string> allowed;
    for (const auto& d : ParseJsonColumn(b.Str("domains"), json::array())) {
      if (d.is_string()) allowed.push_back(d.get<std::string>());
    }
    // Requested names are certified in lower case (pki/names.h).
    std::vector<std::string> names;
    for (const auto& n : csr.dns_names) names.push_back(pki::LowerDnsName(n));
    if (names.empty()) names = allowed;
    for (const auto& n : names) {
      if (!pki::DomainAllowed(n, allowed)) {
        return PermissionDenied("'" + n.substr(0, 100) + "' is not an allowed domain of app '" + b.Str("app_name") + "'",
                                std::string(kDomainNotAllowed));
      }
    }
    VOUCH_ASSIGN_OR_RETURN(ZonePolicy policy, LoadZonePolicy(tx, b.Str("zone_id")));
    VOUCH_ASSIGN_OR_RETURN(auto signer, ZoneSigner(tx, b.Str("zone_id")));
    WorkloadCertRequest req;
    req.csr_pem = std::string(csr_pem);
    req.common_name = names.empty() ? b.Str("app_name") : names.front();
    req.dns_names = names;
    req.spiffe_uri = "spiffe://" + b.Str("zone_name") + "/app/" + b.Str("app_name");
    req.not_before = clock_->Now() - std::chrono::minutes(5);
    req.not_after = clock_->Now() + WorkloadCertValidity(policy);
    req.platform = b.Str("platform");
    req.mrenclave_hex = b.Str("mrenclave");
    req.mrsigner_hex = b.Str("mrsigner");
    req.isvprodid = b.Int("isvprodid");
    req.isvsvn = b.Int("isvsvn");
    VOUCH_ASSIGN_OR_RETURN(IssuedCert cert, IssueWorkloadCert(*signer, req));
    json sans(names);
    sans.push_back(req.spiffe_uri);
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, subject, sans, not_before, "
                                  "not_after, pem, status, issued_to, created_at) VALUES (?, ?, 'workload', ?, ?, ?, ?, ?, ?, ?, "
                                  "'valid', ?, ?)",
                                  {cert.serial_hex, b.Str("zone_id"), b.Str("app_id"), build_id, "CN=" + req.common_name,
                                   sans.dump(), ToUnixSeconds(cert.not_before), ToUnixSeconds(cert.not_after), cert.pem,
                                   p.Actor(), Now()})
                              .status());
    VOUCH_RETURN_IF_ERROR(Audit(tx, *this, p, "certificate.issue", cert.serial_hex,
                                {{"build", build_id}, {"app", b.Str("app_name")}, {"sans", sans}, {"manual", true}}));
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(std::string(kCertSelect) + " WHERE c.serial = ?", {cert.serial_hex}, "certificate"));
    out = CertJson(r, Now());
    out["ca_pem"] = "";
    VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT ca_cert_pem FROM zones WHERE id = ?", {b.Str("zone_id")}, "zone"));
    out["ca_pem"] = z.Str("ca_cert_pem");
    return Status::Ok();
  }));
  issued_.fetch_add(1);
  return out;
}

Result<json> Manager::ListCertificates(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  std::string status = Filter(q, "status");
  if (!status.empty() && status != "valid" && status != "revoked" && status != "expired") {
    return InvalidArgument("status must be valid, revoked or expired", std::string(kInvalidStatus));
  }
  json out;
  int64_t now = Now();
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string app = Filter(q, "app"); !app.empty()) {
      cond.push_back("(a.name = ? OR a.id = ?)");
      params.emplace_back(app);
      params.emplace_back(app);
    }
    if (std::string zone = Filter(q, "zone"); !zone.empty()) {
      cond.push_back("(z.name = ? OR z.id = ?)");
      params.emplace_back(zone);
      params.emplace_back(zone);
    }
    if (status == "valid") {
      cond.push_back("c.status = 'valid' AND c.not_after > ?");
      params.emplace_back(now);
    } else if (status == "expired") {
      cond.push_back("c.status = 'valid' AND c.not_after <= ?");
      params.emplace_back(now);
    } else if (status == "revoked") {
      cond.push_back("c.status = 'revoked'");
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page,
                           QueryPage(tx, kCertSelect, cond, params, q, "c.created_at", false, "c.serial"));
    json items = json::array();
    for (const Row& r : page.rows) items.push_back(CertJson(r, now));
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetCertificate(const Principal& p, const std::string& serial) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  return GetOne(*db_, kCertSelect, "c.serial", serial, "certificate", kCertificateNotFound,
                [&](Transaction&, const Row& r) -> Result<json> { return CertJson(r, Now()); });
}

Result<json> Manager::RevokeCertificate(const Principal& p, const std::string& serial, const std::string& reason) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (reason.size() > 1000)
    return InvalidArgument("reason is too long (max 1000)", std::string(kInvalidReason));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kCertSelect) + " WHERE c.serial = ?", {serial}));
    if (rows.empty())
      return NotFound("certificate '" + serial.substr(0, 80) + "' not found",
                      std::string(kCertificateNotFound));
    if (rows[0].Str("status") == "revoked") {
      return FailedPrecondition("certificate " + serial + " is already revoked",
                                std::string(kAlreadyRevoked));
    }
    std::vector<std::string> zones;
    VOUCH_RETURN_IF_ERROR(RevokeCertsWhere(tx, "serial = ?", {serial}, reason.empty() ? "revoked by admin" : reason, &zones));
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(std::string(kCertSelect) + " WHERE c.serial = ?", {serial}, "certificate"));
    out = CertJson(r, Now());
    return Audit(tx, *this, p, "certificate.revoke", serial, {{"reason", reason}});
  }));
  return out;
}

}  // namespace vouch::api
