#pragma once

// The cluster join protocol's stable reason codes (docs/cluster.md). The text is a contract; the
// Status kind is given beside each.

#include <string_view>

namespace vouch::cluster {

inline constexpr std::string_view kInvalidJoinRequest = "invalid_join_request";  // InvalidArgument
inline constexpr std::string_view kInvalidNonce = "invalid_nonce";  // PermissionDenied
inline constexpr std::string_view kUnwrapFailed = "unwrap_failed";  // PermissionDenied
inline constexpr std::string_view kMeasurementUnreadable = "measurement_unreadable";  // NotFound
inline constexpr std::string_view kNoCollateral = "no_collateral";  // FailedPrecondition
// The joining side (join_client.h): a member's answer without the protocol's fields.
inline constexpr std::string_view kBadPeerResponse = "bad_peer_response";  // Internal

}  // namespace vouch::cluster
