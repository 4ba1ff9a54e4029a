#pragma once

// A bounded, durable FIFO of small records (heartbeats) in a directory: one file per record,
// named by a 20-digit sequence number, written with WriteFileAtomic (fsync of file and
// directory) before Push returns. So a record that Push acknowledged survives kill -9 and power
// loss; a crash mid-write leaves at most a temporary file, which Open removes.
//
// Bound: at most `max_records` records. Past it Push fails with ResourceExhausted
// "queue_full" and stores nothing: the caller must not acknowledge the record (the agent answers
// 503 with Retry-After, so the workload keeps it and retries). Nothing is ever dropped silently.
//
// Thread-safe (one mutex). Records are opaque strings of at most 64 KiB.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vouch::agent {

class DiskQueue {
 public:
  static Result<std::unique_ptr<DiskQueue>> Open(const std::string& dir, size_t max_records);

  Status Push(const std::string& record);
  // Up to `n` oldest records with their sequence numbers (not removed).
  Result<std::vector<std::pair<uint64_t, std::string>>> Peek(size_t n);
  // Removes every record with sequence number <= `seq` (after they were delivered).
  Status PopThrough(uint64_t seq);
  size_t size() const;
  size_t max_records() const { return max_; }

 private:
  DiskQueue(std::string dir, size_t max) : dir_(std::move(dir)), max_(max) {}
  std::string PathFor(uint64_t seq) const;
  std::string dir_;
  size_t max_;
  mutable std::mutex mu_;
  std::deque<uint64_t> seqs_;
  uint64_t next_ = 1;
};

}  // namespace vouch::agent
