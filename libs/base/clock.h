#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch {

using TimePoint = std::chrono::system_clock::time_point;

// The source of "now". Verification and expiry logic take a Clock (or an explicit
// TimePoint) so that tests and `--at` can fix the time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& Get();
};

class FixedClock final : public Clock {
 public:
  explicit FixedClock(TimePoint t) : t_(t) {}
  TimePoint Now() const override { return t_; }
  void Set(TimePoint t) { t_ = t; }
  void Advance(std::chrono::seconds d) { t_ += d; }

 private:
  TimePoint t_;
};

int64_t ToUnixSeconds(TimePoint t);
TimePoint FromUnixSeconds(int64_t s);

// "2025-02-13T12:00:00Z". Formats in UTC with second precision.
std::string FormatRfc3339(TimePoint t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" and the date-only "YYYY-MM-DD".
Result<TimePoint> ParseRfc3339(std::string_view text);

}  // namespace vouch
