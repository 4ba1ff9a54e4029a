// Collateral reload (ManagerOptions::collateral_dirs): the DCAP verifiers node evidence is checked against.
#include <algorithm>
#include <filesystem>
#include <system_error>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "attest/dcap_verifier.h"
#include "attest/verdict.h"
#include "base/encoding.h"
#include "collateral/service.h"

namespace vouch::api {

namespace internal {

// Name, size and modification time of every file in the collateral folders, in order: what
// ReloadCollateral compares to decide whether anything changed.
std::string CollateralFingerprint(const std::vector<std::string>& dirs) {
  std::string fp;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    std::vector<std::string> entries;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code fec;
      if (!e.is_regular_file(fec)) continue;
      auto size = e.file_size(fec);
      auto mtime = e.last_write_time(fec).time_since_epoch().count();
      entries.push_back(e.path().filename().string() + ":" + std::to_string(size) + ":" + std::to_string(mtime));
    }
    if (ec) entries.push_back("unreadable:" + ec.message());
    std::sort(entries.begin(), entries.end());
    fp += dir + "\n";
    for (const std::string& e : entries) fp += e + "\n";
  }
  return fp;
}

// Loads every folder. `strict`: each must hold complete, correctly signed collateral.
Result<std::shared_ptr<const std::vector<std::unique_ptr<attest::DcapVerifier>>>> LoadVerifiers(
    const std::vector<std::string>& dirs, bool strict) {
  auto verifiers = std::make_shared<std::vector<std::unique_ptr<attest::DcapVerifier>>>();
  for (const std::string& dir : dirs) {
    auto in_dir = [&dir](const Status& st) {
      return Status(st.code(), "collateral in " + dir + ": " + st.message(), st.reason());
    };
    auto collateral = attest::DcapCollateral::LoadDir(dir);
    if (!collateral.ok()) return in_dir(collateral.status());
    // allow_sim here only lets the verifier recognise a sim root (the verdict is then marked
    // insecure_sim); whether sim evidence is acceptable is each zone's policy decision.
    attest::DcapTrustOptions trust;
    trust.allow_sim = true;
    auto verifier = attest::DcapVerifier::Create(std::move(*collateral), trust);
    if (!verifier.ok()) return in_dir(verifier.status());
    if (strict) {
      if (Status st = (*verifier)->CollateralStatus(); !st.ok()) return in_dir(st);
    }
    verifiers->push_back(std::move(*verifier));
  }
  return std::shared_ptr<const std::vector<std::unique_ptr<attest::DcapVerifier>>>(std::move(verifiers));
}

}  // namespace internal

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

std::shared_ptr<const Manager::Verifiers> Manager::CurrentVerifiers() {
  std::lock_guard<std::mutex> lock(verifiers_mu_);
  return verifiers_;
}

std::vector<std::pair<std::string, TimePoint>> Manager::CollateralValidUntil() {
  std::shared_ptr<const Verifiers> verifiers = CurrentVerifiers();
  std::vector<std::pair<std::string, TimePoint>> out;
  for (size_t i = 0; verifiers && i < verifiers->size() && i < options_.collateral_dirs.size(); ++i) {
    out.emplace_back(options_.collateral_dirs[i], (*verifiers)[i]->CollateralValidUntil());
  }
  return out;
}

Result<bool> Manager::ReloadCollateral(bool force) {
  std::lock_guard<std::mutex> reload(reload_mu_);
  std::string fingerprint = CollateralFingerprint(options_.collateral_dirs);
  if (!force && fingerprint == collateral_fingerprint_) return false;
  collateral_fingerprint_ = fingerprint;  // a broken copy is reported once, not at every poll
  VOUCH_ASSIGN_OR_RETURN(auto verifiers, LoadVerifiers(options_.collateral_dirs, true));
  std::lock_guard<std::mutex> lock(verifiers_mu_);
  verifiers_ = std::move(verifiers);
  return true;
}

// ---------------------------------------------------------------- collateral service

namespace {

Status NoService() {
  return NotFound("the collateral service is not enabled on this manager",
                  std::string(kCollateralDisabled));
}

json ItemJson(const collateral::Item& it) {
  json j = {{"id", it.id},
            {"kind", it.kind},
            {"key", it.key},
            {"root", it.root},
            {"sim", it.sim},
            {"issue_date", FormatRfc3339(it.issue_date)},
            {"next_update", it.next_update == TimePoint::max() ? json(nullptr) : json(FormatRfc3339(it.next_update))},
            {"tcb_evaluation_data_number",
             it.tcb_evaluation_data_number ? json(*it.tcb_evaluation_data_number) : json(nullptr)},
            {"source", it.source},
            {"origin", it.origin},
            {"state", it.state},
            {"stored_at", FormatRfc3339(it.stored_at)},
            {"sha256", it.sha256},
            {"current", it.current}};
  return j;
}

json ReportJson(const collateral::Report& r) {
  json outcomes = json::array();
  for (const auto& o : r.outcomes) {
    json e = {{"kind", o.kind}, {"key", o.key}, {"origin", o.origin}, {"result", o.result}};
    if (!o.reason.empty()) e["reason"] = o.reason;
    if (!o.message.empty()) e["message"] = o.message;
    outcomes.push_back(e);
  }
  return json{{"stored", r.stored}, {"unchanged", r.unchanged}, {"refused", r.refused}, {"failed", r.failed},
              {"outcomes", outcomes}};
}

void Tally(collateral::Report* r, collateral::Outcome o) {
  if (o.result == "stored") ++r->stored;
  if (o.result == "unchanged") ++r->unchanged;
  if (o.result == "refused") ++r->refused;
  if (o.result == "failed") ++r->failed;
  r->outcomes.push_back(std::move(o));
}

}  // namespace

Result<json> Manager::ListCollateral(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (!options_.collateral) return NoService();
  collateral::ListFilter f;
  f.kind = Filter(q, "kind");
  f.key = Filter(q, "key");
  f.all_versions = Filter(q, "versions") == "all";
  if (!f.kind.empty() && !collateral::IsKind(f.kind)) {
    return InvalidArgument("unknown collateral kind \"" + f.kind + "\"", std::string(kInvalidKind));
  }
  VOUCH_ASSIGN_OR_RETURN(auto items, options_.collateral->List(f));
  json out = json::array();
  for (const auto& it : items) out.push_back(ItemJson(it));
  return json{{"items", out}, {"next_cursor", nullptr}};
}

Result<json> Manager::RefreshCollateral(const Principal& p, const std::string& kind, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!options_.collateral) return NoService();
  if (!kind.empty() && !collateral::IsKind(kind)) {
    return InvalidArgument("unknown collateral kind \"" + kind + "\"", std::string(kInvalidKind));
  }
  if (!kind.empty() && key.empty() && kind != collateral::kQeIdentity && kind != collateral::kTdQeIdentity &&
      kind != collateral::kRootCaCrl) {
    return InvalidArgument("refreshing " + kind + " needs a key", std::string(kInvalidKey));
  }
  collateral::Report report;
  if (kind.empty()) {
    report = options_.collateral->RefreshDue(/*force=*/true);
  } else {
    Tally(&report, options_.collateral->RefreshOne(kind, key));
  }
  json answer = ReportJson(report);
  (void)db_->Write([&](Transaction& tx) -> Status {
    return Audit(tx, *this, p, "collateral.refresh", kind.empty() ? "all" : kind + ":" + key,
                 {{"stored", report.stored}, {"unchanged", report.unchanged}, {"refused", report.refused},
                  {"failed", report.failed}});
  });
  return answer;
}

Result<json> Manager::ImportCollateral(const Principal& p, const std::map<std::string, std::string>& files,
                                       const std::string& origin) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!options_.collateral) return NoService();
  if (files.empty())
    return InvalidArgument("no files to import", std::string(kInvalidCollateralImport));
  collateral::Report report = options_.collateral->ImportFiles(files, origin.empty() ? "upload" : origin);
  (void)db_->Write([&](Transaction& tx) -> Status {
    return Audit(tx, *this, p, "collateral.import", origin.empty() ? "upload" : origin,
                 {{"files", files.size()}, {"stored", report.stored}, {"unchanged", report.unchanged},
                  {"refused", report.refused}, {"failed", report.failed}});
  });
  return ReportJson(report);
}

Result<json> Manager::ExportCollateral(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (!options_.collateral) return NoService();
  VOUCH_ASSIGN_OR_RETURN(auto files, options_.collateral->ExportFiles());
  json out = json::object();
  for (const auto& [name, bytes] : files) out[name] = Base64Encode(AsBytes(bytes));
  return json{{"files", out}};
}

Result<attest::Verdict> Manager::VerifyEvidenceFor(const Principal& p, std::span<const uint8_t> evidence,
                                                   const std::string& platform, std::optional<TimePoint> at) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (evidence.empty() || evidence.size() > 128 * 1024) {
    return InvalidArgument("evidence must be 1..131072 bytes", std::string(kInvalidEvidence));
  }
  std::string plat = platform.empty() ? collateral::DetectPlatform(evidence) : platform;
  if (plat.empty()) {
    attest::Verdict v;
    v.error = InvalidArgument("unrecognised evidence (not a DCAP quote or an SEV-SNP report)",
                              std::string(attest::kDcapMalformedQuote));
    return v;
  }
  if (plat != "sgx" && plat != "tdx" && plat != "sev-snp") {
    return InvalidArgument("platform must be sgx, tdx or sev-snp",
                           std::string(kUnsupportedPlatform));
  }
  return VerifyEvidence(plat, evidence, at.value_or(clock_->Now()));
}

}  // namespace vouch::api
