#include "store/audit.h"

#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::store {
namespace {
void Field(crypto::Sha256Hasher& h, std::string_view s) {
  std::string len = std::to_string(s.size()) + ":";
  h.Update(len);
  h.Update(s);
  h.Update(std::string_view("\n"));
}
}  // namespace

std::string AuditHash(const AuditEntry& e) {
  crypto::Sha256Hasher h;
  Field(h, e.prev_hash);
  Field(h, std::to_string(e.seq));
  Field(h, std::to_string(e.at));
  Field(h, e.actor);
  Field(h, e.action);
  Field(h, e.target);
  Field(h, e.outcome);
  Field(h, e.detail);
  return HexEncode(h.Finish());
}

Status AppendAudit(Transaction& tx, TimePoint now, std::string actor, std::string action, std::string target,
                   std::string outcome, const nlohmann::json& detail) {
  VOUCH_ASSIGN_OR_RETURN(Rows last, tx.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  AuditEntry e;
  e.seq = last.empty() ? 1 : last[0].Int(0) + 1;
  e.prev_hash = last.empty() ? kAuditGenesis : last[0].Str(1);
  e.at = ToUnixSeconds(now);
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = std::move(outcome);
  e.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  e.hash = AuditHash(e);
  VOUCH_RETURN_IF_ERROR(
      tx.Exec("INSERT INTO audit (seq, at, actor, action, target, outcome, detail, prev_hash, hash) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
              {e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.detail, e.prev_hash, e.hash})
          .status());
  return tx.Exec("INSERT INTO settings (key, value) VALUES ('audit_head', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 {e.hash})
      .status();
}

AuditEntry AuditEntryFromRow(const Row& row) {
  AuditEntry e;
  e.seq = row.Int("seq");
  e.at = row.Int("at");
  e.actor = row.Str("actor");
  e.action = row.Str("action");
  e.target = row.Str("target");
  e.outcome = row.Str("outcome");
  e.detail = row.Str("detail");
  e.prev_hash = row.Str("prev_hash");
  e.hash = row.Str("hash");
  return e;
}

Result<AuditVerification> VerifyAuditChain(Transaction& tx) {
  VOUCH_ASSIGN_OR_RETURN(
      Rows rows, tx.Query("SELECT seq, at, actor, action, target, outcome, detail, prev_hash, hash FROM audit "
                          "ORDER BY seq"));
  AuditVerification v;
  std::string prev = kAuditGenesis;
  int64_t expect_seq = 1;
  for (const Row& row : rows) {
    AuditEntry e = AuditEntryFromRow(row);
    ++v.entries;
    if (e.seq != expect_seq) {
      v.ok = false;
      v.first_bad_seq = expect_seq;
      v.message = "entry " + std::to_string(expect_seq) + " is missing (next is " + std::to_string(e.seq) + ")";
      return v;
    }
    if (e.prev_hash != prev) {
      v.ok = false;
      v.first_bad_seq = e.seq;
      v.message = "entry " + std::to_string(e.seq) + " does not link to its predecessor";
      return v;
    }
    if (AuditHash(e) != e.hash) {
      v.ok = false;
      v.first_bad_seq = e.seq;
      v.message = "entry " + std::to_string(e.seq) + " was modified (hash mismatch)";
      return v;
    }
    prev = e.hash;
    ++expect_seq;
  }
  // The newest hash is also kept in settings so that truncating the tail is detected.
  VOUCH_ASSIGN_OR_RETURN(Rows head, tx.Query("SELECT value FROM settings WHERE key = 'audit_head'"));
  if (!head.empty() && head[0].Str(0) != prev) {
    v.ok = false;
    v.first_bad_seq = expect_seq;
    v.message = "the newest entries were removed (chain head does not match)";
  }
  return v;
}

nlohmann::json AuditEntryToJson(const AuditEntry& e) {
  auto detail = nlohmann::json::parse(e.detail, nullptr, false);
  if (detail.is_discarded()) detail = e.detail;
  return {{"seq", e.seq},         {"at", FormatRfc3339(FromUnixSeconds(e.at))},
          {"actor", e.actor},     {"action", e.action},
          {"target", e.target},   {"outcome", e.outcome},
          {"detail", detail},     {"prev_hash", e.prev_hash},
          {"hash", e.hash}};
}

}  // namespace vouch::store
