#include "base/http_response.h"

#include <gtest/gtest.h>

#include <string>

namespace vouch {
namespace {

TEST(HttpStatusLine, ParsesTheStatusOfEachVersion) {
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/1.1 200 OK"), 200);
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/1.0 404 Not Found\r\n"), 404);
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/2 204 \r\n"), 204);  // libcurl's header callback for HTTP/2
  EXPECT_EQ(*ParseHttpStatusLine("HTTP/1.1 503"), 503);
}

TEST(HttpStatusLine, RefusesTruncatedAndMalformedLines) {
  for (const char* bad : {"", "HTTP/", "HTTP/1.1", "HTTP/1.1 ", "HTTP/1.1 20", "HTTP/1.1 2000 OK", "HTTP/1.1 +20 OK",
                          "HTTP/1.1 -20 OK", "HTTP/1.1 099 low", "HTTP/1.1 600 high", "HTTP/x 200 OK",
                          "HTTP/1.1.1 200 OK", "HTTPS/1.1 200 OK", "http/1.1 200 OK", "HTTP/1.1 2OO OK"}) {
    auto r = ParseHttpStatusLine(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().reason(), kInvalidHttpResponse) << bad;
    }
  }
}

TEST(HttpResponseHead, ReadsContentLengthAndChunkedCaseInsensitively) {
  auto h = ParseHttpResponseHead("HTTP/1.1 201 Created\r\nCONTENT-length:  42 \r\nX-Other: a:b", 1 << 20);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->status, 201);
  ASSERT_TRUE(h->content_length.has_value());
  EXPECT_EQ(*h->content_length, 42u);
  EXPECT_FALSE(h->chunked);
  h = ParseHttpResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked", 1 << 20);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->chunked);
  EXPECT_FALSE(h->content_length.has_value());
  h = ParseHttpResponseHead("HTTP/1.1 204 No Content", 1 << 20);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->status, 204);
  // Repeated but equal lengths are fine.
  h = ParseHttpResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5", 1 << 20);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h->content_length, 5u);
}

TEST(HttpResponseHead, RefusesBadOrOversizedContentLength) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\nContent-Length: ", "HTTP/1.1 200 OK\r\nContent-Length: -1",
                          "HTTP/1.1 200 OK\r\nContent-Length: +1", "HTTP/1.1 200 OK\r\nContent-Length: 1x",
                          "HTTP/1.1 200 OK\r\nContent-Length: 0x10", "HTTP/1.1 200 OK\r\nContent-Length: 1 2",
                          "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999",
                          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
                          "HTTP/1.1 200 OK\r\nno colon here", "HTTP/1.1 200 OK\r\n: empty name",
                          "HTTP/1.1 200 OK\r\n", "garbage\r\nContent-Length: 5"}) {
    auto r = ParseHttpResponseHead(bad, 1 << 20);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto big = ParseHttpResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1048577", 1 << 20);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(ParseHttpResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1048576", 1 << 20).ok());
}

TEST(ChunkedBody, DecodesAndRefusesTruncatedOrOversizedBodies) {
  auto b = DecodeChunkedBody("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n", 100);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(*b, "hello world");
  EXPECT_EQ(*DecodeChunkedBody("A\r\n0123456789\r\n0\r\n", 100), "0123456789");
  EXPECT_EQ(*DecodeChunkedBody("0\r\n\r\n", 0), "");
  for (const char* bad : {"", "5", "5\r\nhel", "5\r\nhello", "5\r\nhelloXY0\r\n\r\n", "g\r\nx\r\n0\r\n",
                          "-1\r\nx\r\n0\r\n", "\r\nx\r\n0\r\n", "123456789\r\nx", "5\r\nhello\r\n"}) {
    EXPECT_FALSE(DecodeChunkedBody(bad, 100).ok()) << bad;
  }
  auto big = DecodeChunkedBody("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 10);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  // A size near 2^32 is refused by the limit before any read past the input.
  EXPECT_FALSE(DecodeChunkedBody("ffffffff\r\nx\r\n0\r\n", 1 << 20).ok());
}

}  // namespace
}  // namespace vouch
