#include "http/limits.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace vouch::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(SourceOf, StripsThePort) {
  EXPECT_EQ(SourceOf("192.0.2.1:5000"), "192.0.2.1");
  EXPECT_EQ(SourceOf("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(SourceOf("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(SourceOf("unix"), "unix");
  EXPECT_EQ(SourceOf(""), "");
}

TEST(RateLimitKey, IPv6ByItsSlash64) {
  EXPECT_EQ(RateLimitKey("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(RateLimitKey("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(RateLimitKey("2001:db8:1:2::ffff"), RateLimitKey("2001:db8:1:2:aaaa::1"));
  EXPECT_NE(RateLimitKey("2001:db8:1:2::1"), RateLimitKey("2001:db8:1:3::1"));
  // IPv4 clients of a dual-stack listener keep a bucket each (not one shared ::/64).
  EXPECT_EQ(RateLimitKey("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_NE(RateLimitKey("::ffff:192.0.2.1"), RateLimitKey("::ffff:192.0.2.2"));
  EXPECT_EQ(RateLimitKey("::ffff:192.0.2.1"), RateLimitKey("192.0.2.1"));
  EXPECT_EQ(RateLimitKey("unix"), "unix");
  EXPECT_EQ(RateLimitKey("not:an:address"), "not:an:address");
}

TEST(RateLimiter, BurstThenRefusedWithRetryAfterThenRefilled) {
  RateLimiter rl({.rate_per_second = 2, .burst = 5, .max_sources = 10});
  auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.Take("a", t0).allowed) << i;
  auto refused = rl.Take("a", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(1));
  // Another source has its own bucket.
  EXPECT_TRUE(rl.Take("b", t0).allowed);
  // Honouring Retry-After succeeds: one token back after 0.5 s at 2/s.
  EXPECT_FALSE(rl.Take("a", t0 + milliseconds(400)).allowed);
  EXPECT_TRUE(rl.Take("a", t0 + milliseconds(400) + refused.retry_after).allowed);
}

TEST(RateLimiter, RetryAfterCoversASlowRate) {
  RateLimiter rl({.rate_per_second = 0.1, .burst = 1, .max_sources = 10});
  auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(rl.Take("a", t0).allowed);
  auto d = rl.Take("a", t0);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, seconds(10));
  EXPECT_TRUE(rl.Take("a", t0 + d.retry_after).allowed);
}

TEST(RateLimiter, ZeroRateDisables) {
  RateLimiter rl({.rate_per_second = 0, .burst = 1, .max_sources = 1});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.Take("a").allowed);
  EXPECT_EQ(rl.size(), 0u);
}

TEST(RateLimiter, AFloodOfSourcesIsBounded) {
  RateLimiter rl({.rate_per_second = 1, .burst = 1, .max_sources = 100});
  auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(rl.Take("victim", t0).allowed);
  EXPECT_FALSE(rl.Take("victim", t0).allowed);
  for (int i = 0; i < 10000; ++i) rl.Take("s" + std::to_string(i), t0);
  EXPECT_EQ(rl.size(), 100u);
  // The least recently used buckets went first; the newest sources are still limited.
  EXPECT_FALSE(rl.Take("s9999", t0).allowed);
}

TEST(BoundedSemaphore, PermitsThenQueueThenRefusal) {
  BoundedSemaphore sem(2, 1, milliseconds(10000));
  auto a = sem.Acquire();
  auto b = sem.Acquire();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(sem.in_use(), 2u);
  std::atomic<bool> waiter_got{false};
  std::thread waiter([&] {
    auto c = sem.Acquire();  // queues (one slot)
    waiter_got = c.has_value();
  });
  // Bounded wait until the waiter occupies the queue; then a further caller is refused at once.
  auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (sem.waiting() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_EQ(sem.waiting(), 1u) << "the waiter never queued";
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sem.Acquire());
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(500)) << "refused without waiting";
  a.reset();  // frees a permit: the waiter gets it
  waiter.join();
  EXPECT_TRUE(waiter_got);
  EXPECT_EQ(sem.in_use(), 1u);
}

TEST(BoundedSemaphore, WaitIsBounded) {
  BoundedSemaphore sem(1, 10, milliseconds(50));
  auto a = sem.Acquire();
  ASSERT_TRUE(a);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sem.Acquire());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
  a.reset();
  EXPECT_TRUE(sem.Acquire());
}

TEST(BoundedSemaphore, ConcurrentHoldersNeverExceedPermits) {
  BoundedSemaphore sem(3, 100, milliseconds(5000));
  std::atomic<int> holders{0}, max_seen{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        auto p = sem.Acquire();
        if (!p) continue;
        int now = ++holders;
        int prev = max_seen.load();
        while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        --holders;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_seen.load(), 3);
  EXPECT_EQ(sem.in_use(), 0u);
}

}  // namespace
}  // namespace vouch::http
