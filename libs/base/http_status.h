#pragma once

#include <string_view>

#include "base/status.h"

namespace vouch {

// The StatusCode for an HTTP error answer from a vouch server (vouchd or the agent); `reason`
// is the body's error code, which tells a 409 "already exists" from a failed precondition.
// One mapping for every client (libs/client, libs/workload, vouch-rte's socket transport).
StatusCode StatusCodeForHttp(long http_status, std::string_view reason = {});

}  // namespace vouch
