#include "pki/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vouch::pki {
namespace {

TEST(IsValidDnsName, AcceptsHostNamesAndOneLeadingWildcardInEitherCase) {
  for (const char* ok : {"a", "example.com", "web.example.com", "x-1.example.com", "*.example.com", "*.svc.example.com",
                         "Web.Example.COM", "*.EXAMPLE.com", "0.example.com"}) {
    EXPECT_TRUE(IsValidDnsName(ok)) << ok;
  }
  std::string label63(63, 'a');
  EXPECT_TRUE(IsValidDnsName(label63 + ".com"));
  std::string long253;
  while (long253.size() + 4 <= 253) long253 += "abc.";
  long253 += std::string(253 - long253.size(), 'x');
  ASSERT_EQ(long253.size(), 253u);
  EXPECT_TRUE(IsValidDnsName(long253));
}

TEST(IsValidDnsName, RefusesEverythingElse) {
  std::string label64(64, 'a');
  for (const std::string& bad :
       {std::string(), std::string("."), std::string("example.com."), std::string(".example.com"),
        std::string("a..b"), std::string("-a.com"), std::string("a-.com"), std::string("a_b.com"),
        std::string("bad domain"), std::string("*"), std::string("*."), std::string("a.*.com"),
        std::string("**.com"), std::string("*.*.com"), std::string("*example.com"), std::string("é.com"),
        std::string("a.com\n"), std::string("a\0b.com", 7), label64 + ".com", std::string(254, 'a')}) {
    EXPECT_FALSE(IsValidDnsName(bad)) << bad;
  }
}

TEST(NormalizeDnsName, LowerCasesValidNamesAndRefusesInvalidOnesWithTheGivenReason) {
  auto n = NormalizeDnsName("*.Svc.EXAMPLE.com");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, "*.svc.example.com");
  auto bad = NormalizeDnsName("bad domain");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().reason(), "invalid_domain");
  EXPECT_EQ(NormalizeDnsName("a..b", "invalid_dns_name").status().reason(), "invalid_dns_name");
}

TEST(DomainAllowed, ExactOrOneLabelUnderAWildcardIgnoringCase) {
  std::vector<std::string> allowed = {"web.example.com", "*.svc.example.com"};
  EXPECT_TRUE(DomainAllowed("web.example.com", allowed));
  EXPECT_TRUE(DomainAllowed("WEB.example.com", allowed));
  EXPECT_TRUE(DomainAllowed("a.svc.example.com", allowed));
  EXPECT_TRUE(DomainAllowed("A.SVC.example.com", allowed));
  EXPECT_FALSE(DomainAllowed("svc.example.com", allowed));      // the wildcard's own base
  EXPECT_FALSE(DomainAllowed("a.b.svc.example.com", allowed));  // two labels
  EXPECT_FALSE(DomainAllowed("asvc.example.com", allowed));     // not on a label boundary
  EXPECT_FALSE(DomainAllowed("example.com", allowed));
  EXPECT_FALSE(DomainAllowed("web.example.com.evil.org", allowed));
  EXPECT_FALSE(DomainAllowed("x.svc.example.com", std::vector<std::string>{}));
  // A wildcard request is allowed only by the same wildcard.
  EXPECT_TRUE(DomainAllowed("*.svc.example.com", allowed));
  EXPECT_FALSE(DomainAllowed("*.example.com", allowed));
  EXPECT_FALSE(DomainAllowed("*.svc.example.com", std::vector<std::string>{"*.example.com"}));
}

TEST(DomainsOverlap, ExactAndWildcardInBothDirections) {
  EXPECT_TRUE(DomainsOverlap("a.example.com", "a.example.com"));
  EXPECT_TRUE(DomainsOverlap("A.example.com", "a.EXAMPLE.com"));
  EXPECT_TRUE(DomainsOverlap("*.example.com", "a.example.com"));
  EXPECT_TRUE(DomainsOverlap("a.example.com", "*.example.com"));
  EXPECT_TRUE(DomainsOverlap("*.example.com", "*.example.com"));
  EXPECT_FALSE(DomainsOverlap("*.example.com", "example.com"));
  EXPECT_FALSE(DomainsOverlap("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(DomainsOverlap("*.example.com", "*.b.example.com"));
  EXPECT_FALSE(DomainsOverlap("a.example.com", "b.example.com"));
}

}  // namespace
}  // namespace vouch::pki
