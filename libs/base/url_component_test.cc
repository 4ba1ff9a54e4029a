#include "base/url_component.h"

#include <gtest/gtest.h>

namespace vouch {
namespace {

TEST(UrlComponent, EncodesAsEncodeUriComponent) {
  EXPECT_EQ(UrlEncodeComponent("AZaz09-_.!~*'()"), "AZaz09-_.!~*'()");
  EXPECT_EQ(UrlEncodeComponent("-----BEGIN CERTIFICATE-----\nMI+/=\n"),
            "-----BEGIN%20CERTIFICATE-----%0AMI%2B%2F%3D%0A");
  EXPECT_EQ(UrlEncodeComponent(std::string("\x00\xff", 2)), "%00%FF");
  EXPECT_EQ(UrlEncodeComponent(""), "");
}

TEST(UrlComponent, DecodesLenientlyAndRoundTrips) {
  EXPECT_EQ(UrlDecodeComponent("%2b%2B%41"), "++A");
  EXPECT_EQ(UrlDecodeComponent("a+b"), "a+b");         // '+' is not a space in a header
  EXPECT_EQ(UrlDecodeComponent("100%"), "100%");       // a lone '%' stays
  EXPECT_EQ(UrlDecodeComponent("%4"), "%4");           // cut short
  EXPECT_EQ(UrlDecodeComponent("%zz%41"), "%zzA");     // not hex
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(UrlDecodeComponent(UrlEncodeComponent(all)), all);
}

}  // namespace
}  // namespace vouch
