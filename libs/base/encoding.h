#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch {

// Lower-case hex.
std::string HexEncode(std::span<const uint8_t> data);
// Accepts upper or lower case; rejects odd length and non-hex characters.
Result<std::vector<uint8_t>> HexDecode(std::string_view hex);

// RFC 4648 base64 with padding; Decode tolerates no whitespace.
std::string Base64Encode(std::span<const uint8_t> data);
Result<std::vector<uint8_t>> Base64Decode(std::string_view text);
// RFC 4648 base64url without padding (tokens, JWK-style fields).
std::string Base64UrlEncode(std::span<const uint8_t> data);
Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text);

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string ToString(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace vouch
