#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch {

struct HostPort {
  std::string host;  // brackets of "[v6]" removed
  uint16_t port = 0;
};

// "host:port" or "[v6 address]:port": the last colon splits; the host must not be empty and the
// port is decimal digits, at most 65535 (0 allowed: "any free port"). InvalidArgument
// "invalid_host_port" otherwise; callers put their own words (which flag) around it.
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace vouch
