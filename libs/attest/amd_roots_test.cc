#include "attest/amd_roots.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "crypto/keys.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

using evidence::SnpProduct;

std::string ReadRoot(const std::string& name) {
  std::ifstream in(std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/roots/amd/" + name, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // The Turin files have CRLF line ends, which a raw string literal in the source reads as LF.
  std::erase(text, '\r');
  return text;
}

std::string Lf(std::string_view s) {
  std::string text(s);
  std::erase(text, '\r');
  return text;
}

TEST(AmdRoots, EmbeddedPemIsTheTestdataFilesVerbatim) {
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kMilan, AmdLeafKind::kVcek)), ReadRoot("ask_ark_milan.pem"));
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kGenoa, AmdLeafKind::kVcek)), ReadRoot("ask_ark_genoa.pem"));
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kTurin, AmdLeafKind::kVcek)), ReadRoot("ask_ark_turin_vcek.pem"));
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kMilan, AmdLeafKind::kVlek)), ReadRoot("ask_ark_milan_vlek.pem"));
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kGenoa, AmdLeafKind::kVlek)), ReadRoot("ask_ark_genoa_vlek.pem"));
  EXPECT_EQ(Lf(BuiltinAmdCertChainPem(SnpProduct::kTurin, AmdLeafKind::kVlek)), ReadRoot("ask_ark_turin_vlek.pem"));
  EXPECT_TRUE(BuiltinAmdCertChainPem(SnpProduct::kUnknown, AmdLeafKind::kVcek).empty());
}

TEST(AmdRoots, ThreeProductsEachWithArkAskAndAsvkSignedByTheArk) {
  const auto& roots = BuiltinAmdRoots();
  ASSERT_EQ(roots.size(), 3u);
  const SnpProduct order[] = {SnpProduct::kMilan, SnpProduct::kGenoa, SnpProduct::kTurin};
  for (size_t i = 0; i < roots.size(); ++i) {
    const AmdRootSet& s = roots[i];
    EXPECT_EQ(s.product, order[i]);
    ASSERT_NE(s.ark, nullptr);
    ASSERT_NE(s.ask, nullptr);
    ASSERT_NE(s.asvk, nullptr);
    EVP_PKEY* ark_key = X509_get0_pubkey(s.ark);
    EXPECT_EQ(X509_verify(s.ark, ark_key), 1) << "ARK self-signature, product " << i;
    EXPECT_EQ(X509_verify(s.ask, ark_key), 1) << "ASK by ARK, product " << i;
    EXPECT_EQ(X509_verify(s.asvk, ark_key), 1) << "ASVK by ARK, product " << i;
    EXPECT_EQ(crypto::SubjectCommonName(s.ark), "ARK-" + std::string(evidence::SnpProductName(s.product)));
    EXPECT_EQ(crypto::SubjectCommonName(s.ask), "SEV-" + std::string(evidence::SnpProductName(s.product)));
    EXPECT_EQ(crypto::SubjectCommonName(s.asvk), "SEV-VLEK-" + std::string(evidence::SnpProductName(s.product)));
    EXPECT_EQ(FindPinnedArk(s.ark), &s);
    // An ASK is not a pinned root.
    EXPECT_EQ(FindPinnedArk(s.ask), nullptr);
  }
  EXPECT_EQ(FindPinnedArk(nullptr), nullptr);
}

TEST(AmdRoots, ArkPinIsByDerNotByName) {
  // A self-signed certificate with ARK-Milan's exact subject but another key is not pinned.
  const AmdRootSet& milan = BuiltinAmdRoots().at(0);
  auto key = crypto::GenerateKey(crypto::KeyType::kRsa2048);
  ASSERT_TRUE(key.ok());
  crypto::X509Ptr fake(X509_new());
  ASSERT_TRUE(fake);
  X509_set_version(fake.get(), 2);
  X509_set_subject_name(fake.get(), X509_get_subject_name(milan.ark));
  X509_set_issuer_name(fake.get(), X509_get_subject_name(milan.ark));
  X509_gmtime_adj(X509_getm_notBefore(fake.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(fake.get()), 3600);
  X509_set_pubkey(fake.get(), key->get());
  ASSERT_GT(X509_sign(fake.get(), key->get(), EVP_sha384()), 0);
  EXPECT_EQ(crypto::SubjectCommonName(fake.get()), "ARK-Milan");
  EXPECT_EQ(FindPinnedArk(fake.get()), nullptr);
}

}  // namespace
}  // namespace vouch::attest
