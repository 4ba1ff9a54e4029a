#pragma once

// Group commit, shared by the store backends (docs/design.md, "Store"). Writers queue their
// callbacks; one of them (the leader) takes the queue and runs it as one group: one transaction,
// each callback inside its own SAVEPOINT (a failing callback is rolled back alone, as if it had
// run in a transaction of its own), then one COMMIT: one fsync (SQLite) or one WAL flush and one
// cluster writer lock (PostgreSQL) for the whole group. Every writer returns only once the COMMIT
// holding its changes has returned, so an ok Write is still a durable one. Callbacks of a group
// run one after another on the leader's thread, in arrival order, each seeing the effects of
// those before it: the same serial order as before, only the commits are shared. A queue may let
// several leaders run groups at once (PostgreSQL's row-keyed writes, each group on its own
// connection); the serial queues have one. Audit entries of a group are chained at its end
// (store/audit_internal.h).

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "store/database.h"

namespace vouch::store::internal {

inline constexpr char kGroupSavepoint[] = "vouch_group_member";

struct GroupMember {
  explicit GroupMember(const std::function<Status(Transaction&)>* f) : fn(f) {}
  const std::function<Status(Transaction&)>* fn;
  Status result = Status::Ok();
  bool done = false;
  std::condition_variable cv;  // this writer's own wake-up: no thundering herd per commit
};

// Runs a callback; an exception becomes an error of this callback alone.
inline Status CallMember(const std::function<Status(Transaction&)>& fn, Transaction& tx) {
  try {
    return fn(tx);
  } catch (const std::exception& e) {
    return Internal(std::string("exception in a write transaction: ") + e.what(), "store_error");
  } catch (...) {
    return Internal("exception in a write transaction", "store_error");
  }
}

class WriteGroups {
 public:
  // `max_leaders`: how many groups may run at once (1: one after another, the serial order;
  // PostgreSQL's row-keyed groups run a few at once on separate connections).
  explicit WriteGroups(size_t max_group = 512, size_t max_leaders = 1)
      : max_group_(max_group), max_leaders_(max_leaders < 1 ? 1 : max_leaders) {}

  // Queues `fn` and returns its outcome once its group has committed (or failed). The calling
  // thread either waits for the current leader or becomes the leader and calls `run` with a
  // group of queued members (its own among them); `run` sets each member's result.
  Status Submit(const std::function<Status(Transaction&)>& fn,
                const std::function<void(const std::vector<GroupMember*>&)>& run) {
    GroupMember me(&fn);
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&me);
    while (!me.done) {
      if (leaders_ >= max_leaders_) {
        me.cv.wait(lock);  // woken when done, or when first in the queue and a leader slot is free
        continue;
      }
      ++leaders_;
      std::vector<GroupMember*> group;
      while (!queue_.empty() && group.size() < max_group_) {
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      lock.unlock();
      run(group);
      lock.lock();
      for (GroupMember* m : group) {
        m->done = true;
        if (m != &me) m->cv.notify_one();
      }
      --leaders_;
      if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
    }
    return me.result;
  }

 private:
  const size_t max_group_;
  const size_t max_leaders_;
  std::mutex mu_;
  std::deque<GroupMember*> queue_;
  size_t leaders_ = 0;
};

}  // namespace vouch::store::internal
