#include "store/audit.h"

#include <algorithm>
#include <functional>

#include "base/encoding.h"
#include "crypto/digest.h"
#include "store/audit_internal.h"

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
  AuditEntry e;
  e.at = ToUnixSeconds(now);
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.target = std::move(target);
  e.outcome = std::move(outcome);
  e.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // The backends' write transactions chain a group's entries once, at its end (audit_internal.h).
  if (auto* sink = dynamic_cast<internal::AuditSink*>(&tx); sink != nullptr && sink->DefersAudit()) {
    sink->DeferAudit(std::move(e));
    return Status::Ok();
  }
  std::vector<AuditEntry> one;
  one.push_back(std::move(e));
  return internal::WriteAuditEntries(tx, one);
}

namespace internal {

Status WriteAuditEntries(Transaction& tx, std::vector<AuditEntry>& entries) {
  if (entries.empty()) return Status::Ok();
  VOUCH_ASSIGN_OR_RETURN(Rows last, tx.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
  int64_t seq = last.empty() ? 0 : last[0].Int(0);
  std::string prev = last.empty() ? std::string(kAuditGenesis) : last[0].Str(1);
  for (AuditEntry& e : entries) {
    e.seq = ++seq;
    e.prev_hash = prev;
    e.hash = AuditHash(e);
    prev = e.hash;
  }
  // Multi-row INSERTs of at most kChunk rows: one prepared statement per chunk size.
  constexpr size_t kChunk = 64;
  for (size_t i = 0; i < entries.size(); i += kChunk) {
    size_t n = std::min(kChunk, entries.size() - i);
    std::string sql = "INSERT INTO audit (seq, at, actor, action, target, outcome, detail, prev_hash, hash) VALUES ";
    std::vector<Value> params;
    params.reserve(n * 9);
    for (size_t k = 0; k < n; ++k) {
      const AuditEntry& e = entries[i + k];
      sql += k == 0 ? "(?, ?, ?, ?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?, ?, ?, ?)";
      params.insert(params.end(), {e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.detail, e.prev_hash, e.hash});
    }
    VOUCH_RETURN_IF_ERROR(tx.Exec(sql, params).status());
  }
  return tx.Exec("INSERT INTO settings (key, value) VALUES ('audit_head', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 {prev})
      .status();
}

}  // namespace internal

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

namespace {

constexpr char kAuditColumns[] = "seq, at, actor, action, target, outcome, detail, prev_hash, hash";

// Where the chain ends: settings.audit_head and the seq of the entry carrying that hash, and the
// highest seq present. Read max_seq first: an append committing in between raises the head too.
struct ChainEnd {
  bool has_head = false;
  std::string head_hash;
  int64_t head_seq = 0;  // 0: no entry carries head_hash
  int64_t max_seq = 0;   // 0: no entries
};

Result<ChainEnd> ReadChainEnd(Transaction& tx) {
  ChainEnd end;
  VOUCH_ASSIGN_OR_RETURN(Rows max, tx.Query("SELECT MAX(seq) FROM audit"));
  if (!max.empty() && !max[0].IsNull(0)) end.max_seq = max[0].Int(0);
  VOUCH_ASSIGN_OR_RETURN(Rows head, tx.Query("SELECT value FROM settings WHERE key = 'audit_head'"));
  if (head.empty()) return end;
  end.has_head = true;
  end.head_hash = head[0].Str(0);
  VOUCH_ASSIGN_OR_RETURN(Rows at, tx.Query("SELECT seq FROM audit WHERE hash = ?", {end.head_hash}));
  if (!at.empty()) end.head_seq = at[0].Int(0);
  return end;
}

// Walks the chain in pages of `page_size` entries (keyset pagination by seq), each page read by
// `read` in a transaction of its own choosing, up to the head as it stands when the walk reaches
// it: entries appended meanwhile are followed, entries after the head that no append recorded
// are a failure.
Result<AuditVerification> Walk(const std::function<Status(const std::function<Status(Transaction&)>&)>& read,
                               int64_t page_size) {
  AuditVerification v;
  auto fail = [&v](int64_t seq, std::string message) {
    v.ok = false;
    v.first_bad_seq = seq;
    v.message = std::move(message);
    return v;
  };
  std::string prev = kAuditGenesis;
  int64_t expect_seq = 1;
  constexpr int kMaxRounds = 20;
  int rounds = 0;
  for (;;) {
    ChainEnd end;
    VOUCH_RETURN_IF_ERROR(read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(end, ReadChainEnd(tx));
      return Status::Ok();
    }));
    if (!end.has_head) {
      if (end.max_seq == 0 && expect_seq == 1) return v;  // an empty log
      return fail(expect_seq, "the chain head record (settings.audit_head) is missing");
    }
    if (end.head_seq == 0) {
      return fail(std::max(expect_seq, end.max_seq + 1),
                  "the chain head record points to a missing entry (the newest entries were removed)");
    }
    if (end.head_seq < expect_seq - 1) return fail(end.head_seq, "the chain head record points to an older entry");
    // Under a steady stream of appends, stop following after a few rounds: every entry up to the
    // head of the previous round was verified.
    if (++rounds > kMaxRounds && end.head_seq > expect_seq - 1) return v;
    if (end.head_seq == expect_seq - 1) {
      // Walked up to the head: nothing may follow it.
      if (end.max_seq > end.head_seq) {
        return fail(end.head_seq + 1, "entry " + std::to_string(end.head_seq + 1) + " follows the chain head");
      }
      if (prev != end.head_hash) return fail(end.head_seq, "the chain head does not match the newest entry");
      return v;
    }
    // The entries up to this head, page by page.
    while (expect_seq <= end.head_seq) {
      Rows rows;
      VOUCH_RETURN_IF_ERROR(read([&](Transaction& tx) -> Status {
        VOUCH_ASSIGN_OR_RETURN(rows, tx.Query(std::string("SELECT ") + kAuditColumns +
                                                  " FROM audit WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                                              {expect_seq, end.head_seq, page_size}));
        return Status::Ok();
      }));
      if (rows.empty()) {
        return fail(expect_seq, "entry " + std::to_string(expect_seq) + " is missing (the chain head is entry " +
                                    std::to_string(end.head_seq) + ")");
      }
      for (const Row& row : rows) {
        AuditEntry e = AuditEntryFromRow(row);
        if (e.seq != expect_seq) {
          return fail(expect_seq, "entry " + std::to_string(expect_seq) + " is missing (next is " +
                                      std::to_string(e.seq) + ")");
        }
        if (e.prev_hash != prev) return fail(e.seq, "entry " + std::to_string(e.seq) + " does not link to its predecessor");
        if (AuditHash(e) != e.hash) return fail(e.seq, "entry " + std::to_string(e.seq) + " was modified (hash mismatch)");
        prev = e.hash;
        ++expect_seq;
        ++v.entries;
      }
    }
  }
}

}  // namespace

Result<AuditVerification> VerifyAuditChain(Transaction& tx, int64_t page_size) {
  return Walk([&tx](const std::function<Status(Transaction&)>& fn) { return fn(tx); }, std::max<int64_t>(1, page_size));
}

Result<AuditVerification> VerifyAuditChain(Database& db, int64_t page_size) {
  return Walk([&db](const std::function<Status(Transaction&)>& fn) { return db.Read(fn); },
              std::max<int64_t>(1, page_size));
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
