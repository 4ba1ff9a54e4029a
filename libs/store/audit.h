#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "store/database.h"

namespace vouch::store {

struct AuditEntry {
  int64_t seq = 0;
  int64_t at = 0;  // unix seconds
  std::string actor;    // "user:alice", "apikey:ci", "node:node_ab12", "system"
  std::string action;   // "zone.create", "task.approve", ...
  std::string target;   // the resource id or name
  std::string outcome;  // "ok" or "denied:<reason>"
  std::string detail;   // compact JSON with non-secret facts
  std::string prev_hash;
  std::string hash;
};

// The genesis prev_hash of the first entry.
inline constexpr char kAuditGenesis[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// hash = hex(SHA-256(prev_hash || "\n" || seq || "\n" || at || "\n" || actor || ... || detail)),
// each field length-prefixed so that no two different entries hash alike.
std::string AuditHash(const AuditEntry& e);

// Appends an entry inside `tx` (the same transaction as the change it records), chaining it to
// the previous one. In a Database::Write the entry is chained at the end of the write group, in
// the order the group's members appended (so it is not visible to queries of the same callback),
// under the lock that makes one group at a time the appender: the chain never forks and its order
// is the commit order (store/audit_internal.h, docs/cluster.md).
Status AppendAudit(Transaction& tx, TimePoint now, std::string actor, std::string action, std::string target,
                   std::string outcome, const nlohmann::json& detail = nlohmann::json::object());

struct AuditVerification {
  bool ok = true;
  int64_t entries = 0;
  int64_t first_bad_seq = 0;
  std::string message;
};

// Recomputes the chain up to its head (settings.audit_head); reports the first entry whose hash
// or link does not match, a gap in sequence numbers (a deleted row), a head record that is
// missing or names no entry (the newest entries were removed), and entries after the head. Reads
// `page_size` entries at a time by seq; entries appended during the walk are followed to the new
// head. The Database form reads each page in its own read transaction (no reader is held for the
// whole walk); the Transaction form reads every page in `tx`.
Result<AuditVerification> VerifyAuditChain(Transaction& tx, int64_t page_size = 1000);
Result<AuditVerification> VerifyAuditChain(Database& db, int64_t page_size = 1000);

nlohmann::json AuditEntryToJson(const AuditEntry& e);
AuditEntry AuditEntryFromRow(const Row& row);

}  // namespace vouch::store
