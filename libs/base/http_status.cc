#include "base/http_status.h"

namespace vouch {

StatusCode StatusCodeForHttp(long http_status, std::string_view reason) {
  switch (http_status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409:
      return (reason.find("exists") != std::string_view::npos ||
              reason.find("duplicate") != std::string_view::npos)
                 ? StatusCode::kAlreadyExists
                 : StatusCode::kFailedPrecondition;
    case 413: return StatusCode::kPayloadTooLarge;
    case 429: return StatusCode::kResourceExhausted;
    case 422: return StatusCode::kFailedPrecondition;
    case 501: return StatusCode::kUnimplemented;
    case 503: return StatusCode::kUnavailable;
    case 504: return StatusCode::kDeadlineExceeded;
    default: break;
  }
  if (http_status >= 400 && http_status < 500) return StatusCode::kInvalidArgument;
  return StatusCode::kInternal;
}

}  // namespace vouch
