#pragma once

// The store's stable reason codes (Status::reason() of its errors; the text is a contract: clients,
// docs and tests rely on it). The Status kind is given beside each; http::HttpStatusFor maps it.

#include <string_view>

namespace vouch::store {

inline constexpr std::string_view kInvalidStoreUrl = "invalid_store_url";  // InvalidArgument
inline constexpr std::string_view kAlreadyExists = "already_exists";  // AlreadyExists
inline constexpr std::string_view kConstraintFailed = "constraint_failed";  // FailedPrecondition
inline constexpr std::string_view kSchemaTooNew = "schema_too_new";  // FailedPrecondition
inline constexpr std::string_view kStoreBusy = "store_busy";  // Aborted
inline constexpr std::string_view kStoreGroupFailed = "store_group_failed";  // Aborted
inline constexpr std::string_view kStoreTxAborted = "store_tx_aborted";  // Aborted
inline constexpr std::string_view kStoreCorrupt = "store_corrupt";  // DataLoss
inline constexpr std::string_view kStoreError = "store_error";  // Internal
inline constexpr std::string_view kStoreUnavailable = "store_unavailable";  // Unavailable

}  // namespace vouch::store
