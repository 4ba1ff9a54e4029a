// The audit log: listing with filters, and verification of its hash chain.
#include "api/manager.h"
#include "api/manager_internal.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

Result<json> Manager::ListAudit(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string actor = Filter(q, "actor"); !actor.empty()) {
      cond.push_back("actor = ?");
      params.emplace_back(actor);
    }
    if (std::string action = Filter(q, "action"); !action.empty()) {
      // A prefix filter: "task" matches task.approve and task.deny.
      cond.push_back("(action = ? OR action LIKE ?)");
      params.emplace_back(action);
      std::string escaped;
      for (char c : action) {
        if (c == '%' || c == '_' || c == '\\') continue;
        escaped += c;
      }
      params.emplace_back(escaped + ".%");
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, "SELECT *, seq AS id FROM audit", cond, params, q, "seq", true, "seq"));
    json items = json::array();
    for (const Row& r : page.rows) items.push_back(store::AuditEntryToJson(store::AuditEntryFromRow(r)));
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::VerifyAudit(const Principal& p) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  // Page by page, each in its own read transaction (no reader held for the whole walk).
  VOUCH_ASSIGN_OR_RETURN(store::AuditVerification v, store::VerifyAuditChain(*db_));
  json out = {{"ok", v.ok}, {"entries", v.entries}};
  if (!v.ok) {
    out["first_bad_seq"] = v.first_bad_seq;
    out["message"] = v.message;
  }
  return out;
}

}  // namespace vouch::api
