#include "base/host_port.h"

#include <gtest/gtest.h>

namespace vouch {
namespace {

TEST(HostPort, SplitsAtTheLastColonAndStripsV6Brackets) {
  auto a = ParseHostPort("127.0.0.1:8443");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8443);
  auto b = ParseHostPort("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  auto c = ParseHostPort("localhost:65535");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port, 65535);
}

TEST(HostPort, RefusesMissingPartsAndBadPorts) {
  for (const char* bad : {"", ":", "host", "host:", ":80", "[]:80", "h:65536", "h:-1", "h:+1", "h:80x", "h: 80",
                          "h:99999999999"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().reason(), "invalid_host_port") << bad;
    }
  }
}

}  // namespace
}  // namespace vouch
