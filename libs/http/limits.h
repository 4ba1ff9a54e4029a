#pragma once

// Admission limits for unauthenticated work (docs/design.md, "Authentication and roles"): a
// per-source token bucket, a bounded semaphore for expensive work (password hashing), and the
// source key of a remote address.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vouch::http {

// Reason codes of the answers these limits cause.
inline constexpr std::string_view kRateLimited = "rate_limited";  // 429 + Retry-After
inline constexpr std::string_view kBusy = "busy";                 // 503 + Retry-After
// ResourceExhausted with this reason is 413, the one ResourceExhausted that is not 429
// (HttpStatusFor): a body over the limit is not retried as it is.
inline constexpr std::string_view kBodyTooLarge = "body_too_large";

// The rate-limit key of a Request::remote_address: the IP address without the port
// ("192.0.2.1:5000" -> "192.0.2.1", "[2001:db8::1]:443" -> "2001:db8::1"); "unix" stays "unix".
std::string SourceOf(std::string_view remote_address);
// The rate-limit bucket of a source: an IPv4 address as is, an IPv6 address by its /64 prefix
// ("2001:db8:1:2::/64": one host usually holds a whole /64, so per-address buckets would not
// limit it). Anything else (e.g. "unix") as is.
std::string RateLimitKey(std::string_view source);

// One token bucket per source: `burst` tokens, refilled at `rate_per_second`. Memory is bounded:
// at most `max_sources` buckets; when full, the least recently used bucket is dropped (a dropped
// source starts again with a full bucket, which is what it would have after being idle for
// burst/rate seconds anyway). Thread-safe.
class RateLimiter {
 public:
  struct Options {
    double rate_per_second = 10;  // <= 0: unlimited (Take always allows)
    double burst = 100;
    size_t max_sources = 100000;
  };
  struct Decision {
    bool allowed = true;
    std::chrono::seconds retry_after{0};  // when refused: until one token is back (>= 1 s)
  };
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(Options options);
  bool enabled() const { return options_.rate_per_second > 0; }
  Decision Take(std::string_view source, Clock::time_point now = Clock::now());
  size_t size() const;  // buckets held

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
    std::list<std::string>::iterator lru;
  };
  Options options_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Bucket> buckets_;
};

// A counting semaphore with a bounded wait queue: at most `permits` holders, at most
// `max_waiting` callers waiting (each at most `max_wait`); anyone beyond gets no permit at once.
// Thread-safe.
class BoundedSemaphore {
 public:
  BoundedSemaphore(size_t permits, size_t max_waiting, std::chrono::milliseconds max_wait);

  class Permit {
   public:
    Permit(Permit&& other) noexcept : sem_(other.sem_) { other.sem_ = nullptr; }
    Permit& operator=(Permit&&) = delete;
    Permit(const Permit&) = delete;
    ~Permit();

   private:
    friend class BoundedSemaphore;
    explicit Permit(BoundedSemaphore* sem) : sem_(sem) {}
    BoundedSemaphore* sem_;
  };

  // A permit, or nullopt when all are held and the queue is full or `max_wait` passed.
  std::optional<Permit> Acquire();
  size_t in_use() const;
  size_t waiting() const;

 private:
  void Release();
  const size_t permits_;
  const size_t max_waiting_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t used_ = 0;
  size_t waiting_ = 0;
};

}  // namespace vouch::http
