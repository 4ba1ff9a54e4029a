#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace vouch {

// Broad error categories. Each maps to exactly one HTTP status (HttpStatusFor in http/message.h)
// and one CLI exit behaviour; the finer, stable machine-readable reason lives in
// Status::reason() (e.g. "measurement_not_allowed").
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // 400: the caller sent something malformed
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kNotFound,            // 404
  kAlreadyExists,       // 409
  kFailedPrecondition,  // 409/422: well-formed, but the state does not allow it
  kOutOfRange,          // 400
  kResourceExhausted,   // 429: a rate or capacity limit; retry later
  kDeadlineExceeded,    // 504
  kUnavailable,         // 503
  kAborted,             // 409: concurrency conflict, retry
  kUnimplemented,       // 501
  kDataLoss,            // 500: stored data is corrupt
  kInternal,            // 500: a bug
  kPayloadTooLarge,     // 413: the request (or an item in it) is larger than accepted
};

std::string_view StatusCodeName(StatusCode code);

// An error or success. Cheap to copy when ok. Messages say what was expected and what was
// seen, and never contain secrets.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string reason = {})
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Stable machine-readable code, e.g. "invalid_json"; falls back to the code's name.
  std::string reason() const;

  // Prefixes the message with context: "loading zone: <message>".
  Status WithContext(std::string_view context) const;

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

inline Status InvalidArgument(std::string msg, std::string reason = "invalid_argument") {
  return {StatusCode::kInvalidArgument, std::move(msg), std::move(reason)};
}
inline Status NotFound(std::string msg, std::string reason = "not_found") {
  return {StatusCode::kNotFound, std::move(msg), std::move(reason)};
}
inline Status AlreadyExists(std::string msg, std::string reason = "already_exists") {
  return {StatusCode::kAlreadyExists, std::move(msg), std::move(reason)};
}
inline Status PermissionDenied(std::string msg, std::string reason = "forbidden") {
  return {StatusCode::kPermissionDenied, std::move(msg), std::move(reason)};
}
inline Status Unauthenticated(std::string msg, std::string reason = "unauthenticated") {
  return {StatusCode::kUnauthenticated, std::move(msg), std::move(reason)};
}
inline Status FailedPrecondition(std::string msg, std::string reason = "failed_precondition") {
  return {StatusCode::kFailedPrecondition, std::move(msg), std::move(reason)};
}
inline Status OutOfRange(std::string msg, std::string reason = "out_of_range") {
  return {StatusCode::kOutOfRange, std::move(msg), std::move(reason)};
}
inline Status PayloadTooLarge(std::string msg, std::string reason = "payload_too_large") {
  return {StatusCode::kPayloadTooLarge, std::move(msg), std::move(reason)};
}
inline Status ResourceExhausted(std::string msg, std::string reason = "resource_exhausted") {
  return {StatusCode::kResourceExhausted, std::move(msg), std::move(reason)};
}
inline Status Unavailable(std::string msg, std::string reason = "unavailable") {
  return {StatusCode::kUnavailable, std::move(msg), std::move(reason)};
}
inline Status Aborted(std::string msg, std::string reason = "aborted") {
  return {StatusCode::kAborted, std::move(msg), std::move(reason)};
}
inline Status Unimplemented(std::string msg, std::string reason = "unimplemented") {
  return {StatusCode::kUnimplemented, std::move(msg), std::move(reason)};
}
inline Status DataLoss(std::string msg, std::string reason = "data_loss") {
  return {StatusCode::kDataLoss, std::move(msg), std::move(reason)};
}
inline Status Internal(std::string msg, std::string reason = "internal") {
  return {StatusCode::kInternal, std::move(msg), std::move(reason)};
}

}  // namespace vouch

#define VOUCH_CONCAT_INNER_(a, b) a##b
#define VOUCH_CONCAT_(a, b) VOUCH_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is not ok.
// The variable name is unique per use, so the macro nests (e.g. inside a lambda passed to it).
#define VOUCH_RETURN_IF_ERROR_IMPL_(var, expr) \
  do {                                         \
    ::vouch::Status var = (expr);              \
    if (!var.ok()) return var;                 \
  } while (0)
#define VOUCH_RETURN_IF_ERROR(expr) VOUCH_RETURN_IF_ERROR_IMPL_(VOUCH_CONCAT_(vouch_status_, __COUNTER__), expr)
