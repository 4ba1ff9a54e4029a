#pragma once

// Deferred audit appends (docs/cluster.md, "Store: consistency across instances"). A write
// transaction of a backend collects the audit entries its callbacks append and chains them at the
// end of the group, under the audit lock on PostgreSQL: one read of the chain head and one INSERT
// per group instead of two statements per entry, and the chain is appended by one group at a time
// even when row-keyed groups run concurrently. Entries of a group member that fails are dropped
// with its savepoint.
#include <vector>

#include "store/audit.h"

namespace vouch::store::internal {

// Implemented by the backends' write transactions. AppendAudit hands its entry (seq, prev_hash
// and hash not yet set) to the transaction instead of writing it, when the transaction defers.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // False for read transactions and while the deferred entries are being written.
  virtual bool DefersAudit() const = 0;
  virtual void DeferAudit(AuditEntry e) = 0;
};

// The entries of one group, in the order their members ran and appended them.
class DeferredAudit {
 public:
  void Clear() {
    entries_.clear();
    mark_ = 0;
  }
  void BeginMember() { mark_ = entries_.size(); }
  void DropMember() { entries_.resize(mark_); }
  void Add(AuditEntry e) { entries_.push_back(std::move(e)); }
  bool empty() const { return entries_.empty(); }
  std::vector<AuditEntry>& entries() { return entries_; }

 private:
  std::vector<AuditEntry> entries_;
  size_t mark_ = 0;
};

// Chains `entries` after the current head inside `tx` (sets their seq, prev_hash and hash) and
// moves settings.audit_head: one query for the head, one INSERT per 64 entries, one upsert. The
// caller holds whatever makes it the only appender (the SQLite writer; on PostgreSQL the audit
// lock, taken right before).
Status WriteAuditEntries(Transaction& tx, std::vector<AuditEntry>& entries);

}  // namespace vouch::store::internal
