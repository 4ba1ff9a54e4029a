#pragma once

// Stateless nonces: a server makes one without storing anything, and later checks that it made
// it, recently, under its key. 32 bytes:
//   u64 big-endian issue time (Unix seconds) ‖ 8 random bytes ‖
//   the first 16 bytes of HMAC-SHA256(key, label ‖ the first 16 bytes).
// The label separates uses of one key (cluster join nonces, node nonces). Single use, where a
// protocol needs it, is the caller's job (record the nonce where it is consumed).

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"

namespace vouch::crypto {

using TimedNonce = std::array<uint8_t, 32>;

TimedNonce MakeTimedNonce(std::span<const uint8_t> key, std::string_view label, int64_t now_unix);

// The nonce's issue time when `nonce` was made with `key` and `label` at most `max_age_seconds`
// before `now_unix` (and at most 5 s after it: clocks of a cluster's members differ a little).
// Otherwise PermissionDenied with reason `reason` (malformed, forged and expired alike).
Result<int64_t> CheckTimedNonce(std::span<const uint8_t> key, std::string_view label, std::span<const uint8_t> nonce,
                                int64_t now_unix, int64_t max_age_seconds, std::string_view reason);

}  // namespace vouch::crypto
