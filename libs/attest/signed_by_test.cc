#include "attest/signed_by.h"

#include <gtest/gtest.h>

#include <chrono>

#include "attest/sim_pki.h"
#include "base/clock.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

struct Ca {
  crypto::EvpPkeyPtr key;
  crypto::X509Ptr cert;
};

Ca MakeCa(const char* cn, X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr) {
  Ca ca;
  auto key = crypto::GenerateP256();
  EXPECT_TRUE(key.ok());
  ca.key = std::move(*key);
  sim::CertSpec spec;
  spec.cn = cn;
  spec.subject_key = ca.key.get();
  spec.issuer = issuer;
  spec.issuer_key = issuer_key != nullptr ? issuer_key : ca.key.get();
  spec.not_before = SystemClock::Get().Now() - std::chrono::hours(1);
  spec.not_after = SystemClock::Get().Now() + std::chrono::hours(1);
  spec.ca = true;
  auto cert = sim::MakeCert(spec);
  EXPECT_TRUE(cert.ok());
  ca.cert = std::move(*cert);
  return ca;
}

TEST(SignedBy, ChildVerifiesUnderItsIssuerOnly) {
  Ca root = MakeCa("root");
  Ca other = MakeCa("other");
  Ca child = MakeCa("child", root.cert.get(), root.key.get());
  EXPECT_TRUE(SignedBy(root.cert.get(), root.cert.get()));
  EXPECT_TRUE(SignedBy(child.cert.get(), root.cert.get()));
  EXPECT_FALSE(SignedBy(child.cert.get(), other.cert.get()));
  EXPECT_FALSE(SignedBy(root.cert.get(), child.cert.get()));
  EXPECT_FALSE(SignedBy(nullptr, root.cert.get()));
  EXPECT_FALSE(SignedBy(child.cert.get(), nullptr));
  EXPECT_TRUE(crypto::DrainOpensslErrors().empty());
}

TEST(CrlSignedBy, NeedsTheIssuersSignatureAndName) {
  Ca root = MakeCa("root");
  Ca other = MakeCa("other");
  auto now = SystemClock::Get().Now();
  auto der = sim::MakeCrl(root.cert.get(), root.key.get(), now, now + std::chrono::hours(1), {});
  ASSERT_TRUE(der.ok());
  auto crl = crypto::CrlFromDerOrPem(*der);
  ASSERT_TRUE(crl.ok());
  EXPECT_TRUE(CrlSignedBy(crl->get(), root.cert.get()));
  EXPECT_FALSE(CrlSignedBy(crl->get(), other.cert.get()));
  // Same key, different subject name: the signature verifies but the names differ.
  sim::CertSpec spec;
  spec.cn = "renamed";
  spec.subject_key = root.key.get();
  spec.issuer_key = root.key.get();
  spec.not_before = now - std::chrono::hours(1);
  spec.not_after = now + std::chrono::hours(1);
  spec.ca = true;
  auto renamed = sim::MakeCert(spec);
  ASSERT_TRUE(renamed.ok());
  EXPECT_FALSE(CrlSignedBy(crl->get(), renamed->get()));
  EXPECT_FALSE(CrlSignedBy(nullptr, root.cert.get()));
  EXPECT_FALSE(CrlSignedBy(crl->get(), nullptr));
  EXPECT_TRUE(crypto::DrainOpensslErrors().empty());
}

}  // namespace
}  // namespace vouch::attest
