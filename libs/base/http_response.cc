#include "base/http_response.h"

#include <charconv>

namespace vouch {
namespace {

Status Invalid(const std::string& why) { return InvalidArgument("malformed HTTP response: " + why, std::string(kInvalidHttpResponse)); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsLower(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<int> ParseHttpStatusLine(std::string_view line) {
  if (line.size() >= 2 && line.substr(line.size() - 2) == "\r\n") line.remove_suffix(2);
  constexpr std::string_view kPrefix = "HTTP/";
  if (line.substr(0, kPrefix.size()) != kPrefix) return Invalid("the status line does not start with HTTP/");
  line.remove_prefix(kPrefix.size());
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return Invalid("no status code");
  const std::string_view version = line.substr(0, sp);
  const size_t dot = version.find('.');
  const std::string_view major = version.substr(0, dot);
  const std::string_view minor = dot == std::string_view::npos ? std::string_view("0") : version.substr(dot + 1);
  for (std::string_view part : {major, minor}) {
    if (part.empty() || part.size() > 2) return Invalid("bad HTTP version");
    for (char c : part) {
      if (!IsDigit(c)) return Invalid("bad HTTP version");
    }
  }
  const std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3 || !IsDigit(rest[0]) || !IsDigit(rest[1]) || !IsDigit(rest[2]) ||
      (rest.size() > 3 && rest[3] != ' ')) {
    return Invalid("the status code is not three digits");
  }
  const int status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  if (status < 100 || status > 599) return Invalid("status code " + std::to_string(status) + " out of range");
  return status;
}

Result<HttpResponseHead> ParseHttpResponseHead(std::string_view head, uint64_t max_content_length) {
  HttpResponseHead out;
  size_t eol = head.find("\r\n");
  VOUCH_ASSIGN_OR_RETURN(out.status, ParseHttpStatusLine(head.substr(0, eol)));
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return Invalid("a header line without a name");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsLower(name, "content-length")) {
      uint64_t n = 0;
      if (value.empty() || value.size() > 19) return Invalid("bad Content-Length");
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size()) return Invalid("bad Content-Length");
      if (n > max_content_length) {
        return Status(StatusCode::kResourceExhausted,
                      "HTTP response body of " + std::to_string(n) + " bytes is larger than the limit of " +
                          std::to_string(max_content_length),
                      std::string(kInvalidHttpResponse));
      }
      if (out.content_length && *out.content_length != n) return Invalid("conflicting Content-Length headers");
      out.content_length = n;
    } else if (EqualsLower(name, "transfer-encoding")) {
      const size_t comma = value.rfind(',');
      out.chunked = EqualsLower(Trim(comma == std::string_view::npos ? value : value.substr(comma + 1)), "chunked");
    }
  }
  return out;
}

Result<std::string> DecodeChunkedBody(std::string_view in, size_t max_size) {
  std::string out;
  while (true) {
    const size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return Invalid("truncated chunk size");
    std::string_view size_text = in.substr(0, eol);
    size_text = Trim(size_text.substr(0, size_text.find(';')));
    if (size_text.empty() || size_text.size() > 8) return Invalid("bad chunk size");
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), n, 16);
    if (ec != std::errc() || ptr != size_text.data() + size_text.size()) return Invalid("bad chunk size");
    in.remove_prefix(eol + 2);
    if (n == 0) return out;
    if (n > max_size - out.size()) {
      return Status(StatusCode::kResourceExhausted, "chunked HTTP body larger than the limit",
                    std::string(kInvalidHttpResponse));
    }
    if (in.size() < n + 2) return Invalid("truncated chunk");
    if (in.substr(n, 2) != "\r\n") return Invalid("a chunk not followed by CRLF");
    out.append(in.substr(0, n));
    in.remove_prefix(n + 2);
  }
}

}  // namespace vouch
