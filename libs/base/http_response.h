#pragma once

// Bounds-checked parsing of HTTP/1.x response heads and chunked bodies, for the clients that do
// not use an HTTP library (vouch-rte links statically, without libcurl) and for the status
// lines that libcurl hands to a header callback. Strict: anything not in the expected shape is
// refused ("invalid_response"), never guessed at.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vouch {

inline constexpr std::string_view kInvalidHttpResponse = "invalid_response";

// "HTTP/<version> <3-digit status>[ <reason>]" with an optional trailing CRLF; version is
// digits and at most one dot ("1.1", "2"). Returns the status (100..599).
Result<int> ParseHttpStatusLine(std::string_view line);

struct HttpResponseHead {
  int status = 0;
  std::optional<uint64_t> content_length;  // absent without a Content-Length header
  bool chunked = false;                    // Transfer-Encoding ends with "chunked"
};

// The head of a response: the status line and the header lines, separated by CRLF, without the
// blank line that ends it. Header names are matched case-insensitively. Content-Length must be
// 1 to 19 decimal digits and at most `max_content_length`; repeated Content-Length headers must
// agree. A header line without a colon is refused.
Result<HttpResponseHead> ParseHttpResponseHead(std::string_view head, uint64_t max_content_length);

// Decodes a complete chunked body (chunk sizes in hex, at most 8 digits, extensions after ';'
// ignored, each chunk followed by CRLF, ended by a zero-size chunk; trailers ignored). Refuses a
// truncated body or one whose decoded size exceeds `max_size`.
Result<std::string> DecodeChunkedBody(std::string_view in, size_t max_size);

}  // namespace vouch
