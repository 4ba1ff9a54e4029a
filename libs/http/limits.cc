#include "http/limits.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <arpa/inet.h>

namespace vouch::http {

std::string SourceOf(std::string_view remote) {
  if (!remote.empty() && remote.front() == '[') {
    size_t close = remote.find(']');
    if (close != std::string_view::npos) return std::string(remote.substr(1, close - 1));
    return std::string(remote);
  }
  size_t colon = remote.rfind(':');
  // Exactly one colon: IPv4 "a.b.c.d:port". Several: a bare IPv6 address (kept whole).
  if (colon != std::string_view::npos && remote.find(':') == colon) return std::string(remote.substr(0, colon));
  return std::string(remote);
}

std::string RateLimitKey(std::string_view source) {
  if (source.find(':') == std::string_view::npos) return std::string(source);
  in6_addr a{};
  if (inet_pton(AF_INET6, std::string(source).c_str(), &a) != 1) return std::string(source);
  // An IPv4 client of a dual-stack listener appears as ::ffff:a.b.c.d: it is that IPv4 address,
  // not a /64 that every IPv4 client would share (one flooding client would lock out all).
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    char v4[INET_ADDRSTRLEN] = {0};
    if (inet_ntop(AF_INET, &a.s6_addr[12], v4, sizeof v4) != nullptr) return std::string(v4);
  }
  std::fill(std::begin(a.s6_addr) + 8, std::end(a.s6_addr), 0);
  char text[INET6_ADDRSTRLEN] = {0};
  if (inet_ntop(AF_INET6, &a, text, sizeof text) == nullptr) return std::string(source);
  return std::string(text) + "/64";
}

RateLimiter::RateLimiter(Options options) : options_(options) {
  options_.burst = std::max(1.0, options_.burst);
  options_.max_sources = std::max<size_t>(1, options_.max_sources);
}

RateLimiter::Decision RateLimiter::Take(std::string_view source, Clock::time_point now) {
  Decision d;
  if (!enabled()) return d;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(source));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_sources) {
      buckets_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.emplace_front(source);
    Bucket b;
    b.tokens = options_.burst;
    b.last = now;
    b.lru = lru_.begin();
    it = buckets_.emplace(std::string(source), b).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Bucket& b = it->second;
  if (now > b.last) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(options_.burst, b.tokens + elapsed * options_.rate_per_second);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return d;
  }
  d.allowed = false;
  double wait = (1.0 - b.tokens) / options_.rate_per_second;
  d.retry_after = std::chrono::seconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait))));
  return d;
}

size_t RateLimiter::size() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

BoundedSemaphore::BoundedSemaphore(size_t permits, size_t max_waiting, std::chrono::milliseconds max_wait)
    : permits_(std::max<size_t>(1, permits)), max_waiting_(max_waiting), max_wait_(max_wait) {}

BoundedSemaphore::Permit::~Permit() {
  if (sem_ != nullptr) sem_->Release();
}

std::optional<BoundedSemaphore::Permit> BoundedSemaphore::Acquire() {
  std::unique_lock lock(mu_);
  if (used_ < permits_ && waiting_ == 0) {
    ++used_;
    return Permit(this);
  }
  if (waiting_ >= max_waiting_) return std::nullopt;
  ++waiting_;
  bool got = cv_.wait_for(lock, max_wait_, [this] { return used_ < permits_; });
  --waiting_;
  if (!got) return std::nullopt;
  ++used_;
  return Permit(this);
}

void BoundedSemaphore::Release() {
  {
    std::lock_guard lock(mu_);
    --used_;
  }
  cv_.notify_one();
}

size_t BoundedSemaphore::in_use() const {
  std::lock_guard lock(mu_);
  return used_;
}

size_t BoundedSemaphore::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

}  // namespace vouch::http
