#include "agent/disk_queue.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/file.h"

namespace vouch::agent {

Result<std::unique_ptr<DiskQueue>> DiskQueue::Open(const std::string& dir, size_t max_records) {
  if (max_records == 0) return InvalidArgument("the queue bound must be at least 1", "invalid_queue_bound");
  VOUCH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  auto q = std::unique_ptr<DiskQueue>(new DiskQueue(dir, max_records));
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Unavailable("cannot read the queue directory " + dir, "queue_unreadable");
  std::vector<uint64_t> seqs;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool digits = name.size() == 20 && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      seqs.push_back(std::stoull(name));
    } else {
      ::unlink((dir + "/" + name).c_str());  // a temporary file of an interrupted write
    }
  }
  ::closedir(d);
  std::sort(seqs.begin(), seqs.end());
  q->seqs_.assign(seqs.begin(), seqs.end());
  q->next_ = seqs.empty() ? 1 : seqs.back() + 1;
  return q;
}

std::string DiskQueue::PathFor(uint64_t seq) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu", static_cast<unsigned long long>(seq));
  return dir_ + "/" + name;
}

Status DiskQueue::Push(const std::string& record) {
  if (record.size() > 64 * 1024) return InvalidArgument("queue records are at most 64 KiB", "record_too_large");
  std::lock_guard<std::mutex> lock(mu_);
  if (seqs_.size() >= max_) {
    return ResourceExhausted("the agent's queue holds " + std::to_string(max_) + " records; retry later", "queue_full");
  }
  uint64_t seq = next_++;
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(PathFor(seq), record, 0600));
  seqs_.push_back(seq);
  return Status::Ok();
}

Result<std::vector<std::pair<uint64_t, std::string>>> DiskQueue::Peek(size_t n) {
  std::vector<uint64_t> want;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < seqs_.size() && i < n; ++i) want.push_back(seqs_[i]);
  }
  std::vector<std::pair<uint64_t, std::string>> out;
  out.reserve(want.size());
  for (uint64_t s : want) {
    VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(PathFor(s), 64 * 1024));
    out.emplace_back(s, std::move(text));
  }
  return out;
}

Status DiskQueue::PopThrough(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!seqs_.empty() && seqs_.front() <= seq) {
    if (::unlink(PathFor(seqs_.front()).c_str()) != 0 && errno != ENOENT) {
      return Internal("cannot remove a delivered queue record", "queue_io");
    }
    seqs_.pop_front();
  }
  return Status::Ok();
}

size_t DiskQueue::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seqs_.size();
}

}  // namespace vouch::agent
