#include "crypto/timed_nonce.h"

#include <algorithm>
#include <string>
#include <vector>

#include "crypto/digest.h"
#include "crypto/random.h"
#include "crypto/secret.h"

namespace vouch::crypto {
namespace {

constexpr size_t kHead = 16;  // time ‖ random: what the MAC covers

std::array<uint8_t, 16> Mac(std::span<const uint8_t> key, std::string_view label, std::span<const uint8_t> head) {
  std::vector<uint8_t> msg(label.begin(), label.end());
  msg.insert(msg.end(), head.begin(), head.end());
  auto mac = HmacSha256(key, msg);
  std::array<uint8_t, 16> out{};
  std::copy_n(mac.begin(), out.size(), out.begin());
  return out;
}

}  // namespace

TimedNonce MakeTimedNonce(std::span<const uint8_t> key, std::string_view label, int64_t now_unix) {
  TimedNonce n{};
  const uint64_t t = static_cast<uint64_t>(now_unix);
  for (int i = 0; i < 8; ++i) n[i] = static_cast<uint8_t>(t >> (56 - 8 * i));
  std::vector<uint8_t> r = RandomBytes(8);
  std::copy(r.begin(), r.end(), n.begin() + 8);
  auto mac = Mac(key, label, std::span<const uint8_t>(n.data(), kHead));
  std::copy(mac.begin(), mac.end(), n.begin() + kHead);
  return n;
}

Result<int64_t> CheckTimedNonce(std::span<const uint8_t> key, std::string_view label, std::span<const uint8_t> nonce,
                                int64_t now_unix, int64_t max_age_seconds, std::string_view reason) {
  if (nonce.size() != TimedNonce().size()) {
    return PermissionDenied("the nonce is malformed", std::string(reason));
  }
  auto mac = Mac(key, label, nonce.first(kHead));
  if (!ConstantTimeEquals(std::span<const uint8_t>(mac), nonce.subspan(kHead))) {
    return PermissionDenied("the nonce was not issued here", std::string(reason));
  }
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | nonce[i];
  const int64_t issued = static_cast<int64_t>(t);
  const int64_t age = now_unix - issued;
  if (age < -5 || age > max_age_seconds) {
    return PermissionDenied("the nonce has expired; ask for a new one", std::string(reason));
  }
  return issued;
}

}  // namespace vouch::crypto
