#include "base/host_port.h"

#include <charconv>

namespace vouch {

Result<HostPort> ParseHostPort(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgument("'" + std::string(text) + "' is not host:port", "invalid_host_port");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return InvalidArgument("'" + std::string(text) + "' has no host", "invalid_host_port");
  const std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value > 65535) {
    return InvalidArgument("invalid port in '" + std::string(text) + "'", "invalid_host_port");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

}  // namespace vouch
