#include "api/manager.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include "api/ca_adapter.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "attest/dcap_verifier.h"
#include "crypto/secret.h"
#include "http/limits.h"
#include "policy/tcb_status.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kViewer: return "viewer";
    case Role::kMember: return "member";
    case Role::kApprover: return "approver";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

Result<Role> ParseRole(std::string_view s) {
  if (s == "viewer") return Role::kViewer;
  if (s == "member") return Role::kMember;
  if (s == "approver") return Role::kApprover;
  if (s == "admin") return Role::kAdmin;
  return InvalidArgument("role must be one of admin, approver, member, viewer",
                         std::string(kInvalidRole));
}

std::string Principal::Actor() const {
  switch (kind) {
    case Kind::kUser: return "user:" + name;
    case Kind::kApiKey: return "apikey:" + id + " (" + name + ")";
    case Kind::kNode: return "node:" + id;
    case Kind::kSystem: return "system";
  }
  return "system";
}

Principal Principal::System() {
  Principal p;
  p.kind = Kind::kSystem;
  p.name = "system";
  p.role = Role::kAdmin;
  return p;
}

Status Authorize(const Principal& p, Permission perm) {
  if (p.kind == Principal::Kind::kNode)
    return PermissionDenied("nodes may not call this endpoint", std::string(kForbidden));
  bool ok = false;
  switch (perm) {
    case Permission::kRead: ok = true; break;
    case Permission::kWrite: ok = p.role == Role::kMember || p.role == Role::kAdmin; break;
    case Permission::kApprove: ok = p.role == Role::kApprover || p.role == Role::kAdmin; break;
    case Permission::kAdmin: ok = p.role == Role::kAdmin; break;
  }
  if (!ok) {
    return PermissionDenied("role '" + std::string(RoleName(p.role)) + "' may not do this",
                            std::string(kForbidden));
  }
  return Status::Ok();
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::islower(static_cast<unsigned char>(name[0])) && !std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

bool IsValidTcbStatus(std::string_view s) { return policy::IsZoneMinimumTcbName(s); }

json ZonePolicy::ToJson() const {
  return {{"allow_sim", rules.allow_sim},
          {"min_tcb", std::string(policy::TcbStatusName(rules.min_tcb))},
          {"tolerated_advisories", rules.tolerated_advisories},
          {"approvals_required", approvals_required},
          {"cert_validity_hours", cert_validity_hours},
          {"allow_debug", rules.allow_debug}};
}

Manager::Manager(store::Database* db, crypto::SecretBytes master_key, const Clock* clock, ManagerOptions options)
    : db_(db), keys_(NewMasterKeys(std::move(master_key))), clock_(clock), options_(options) {
  size_t slots = options_.password_hash_slots;
  if (slots == 0) slots = std::max<size_t>(2, std::thread::hardware_concurrency());
  kdf_slots_ = std::make_shared<http::BoundedSemaphore>(slots, options_.password_hash_queue, options_.password_hash_wait);
  refusals_ = std::make_shared<RefusalAggregates>();
}

namespace {
thread_local std::string t_request_source;
}  // namespace

ScopedRequestSource::ScopedRequestSource(std::string source) : previous_(std::move(t_request_source)) {
  t_request_source = std::move(source);
}
ScopedRequestSource::~ScopedRequestSource() { t_request_source = std::move(previous_); }
const std::string& ScopedRequestSource::Current() { return t_request_source; }

Manager::~Manager() = default;

Result<std::unique_ptr<Manager>> Manager::Create(store::Database* db, crypto::SecretBytes master_key,
                                                 const Clock* clock, ManagerOptions options) {
  if (db == nullptr || clock == nullptr) return InvalidArgument("Manager needs a database and a clock");
  if (master_key.size() != 32)
    return InvalidArgument("the master key must be 32 bytes", std::string(kInvalidMasterKey));
  std::string fingerprint = CollateralFingerprint(options.collateral_dirs);
  VOUCH_ASSIGN_OR_RETURN(auto verifiers, LoadVerifiers(options.collateral_dirs, false));
  auto m = std::unique_ptr<Manager>(new Manager(db, std::move(master_key), clock, options));
  m->verifiers_ = std::move(verifiers);
  m->collateral_fingerprint_ = std::move(fingerprint);
  return m;
}

int64_t Manager::Now() const { return ToUnixSeconds(clock_->Now()); }

std::chrono::seconds Manager::WorkloadCertValidity(const ZonePolicy& policy) const {
  std::chrono::seconds v = std::chrono::hours(policy.cert_validity_hours);
  if (options_.workload_cert_max_validity.count() > 0) v = std::min(v, options_.workload_cert_max_validity);
  return v;
}

// ---------------------------------------------------------------- stats

Manager::Stats Manager::GetStats() {
  Stats s;
  s.certificates_issued = issued_.load();
  (void)db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT COUNT(*) FROM tasks WHERE status = 'pending'", {}, "tasks"));
    s.pending_tasks = r.Int(0);
    return Status::Ok();
  });
  return s;
}

}  // namespace vouch::api
