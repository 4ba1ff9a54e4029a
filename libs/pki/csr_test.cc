#include "base/file.h"
#include "pki/csr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "pki/der.h"
#include "testing/csr.h"

namespace vouch::pki {
namespace {

using test::CsrDer;
using test::CsrPem;
using test::CsrSpec;
using test::Key;
using test::MakeCsr;

std::string AsString(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

crypto::EvpPkeyPtr KeyByName(const char* name, int bits = 0) {
  EVP_PKEY* key = bits > 0 ? EVP_PKEY_Q_keygen(nullptr, nullptr, name, static_cast<size_t>(bits))
                           : EVP_PKEY_Q_keygen(nullptr, nullptr, name);
  return crypto::EvpPkeyPtr(key);
}

void ExpectReason(const Result<Csr>& r, const std::string& reason) {
  ASSERT_FALSE(r.ok()) << "expected " << reason;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().reason(), reason) << r.status().ToString();
}

TEST(ParseCsr, AcceptsP256PemAndExtractsFields) {
  auto key = Key(crypto::KeyType::kEcP256);
  CsrSpec spec;
  spec.common_name = "web";
  spec.dns_names = {"web.example.com", "www.example.com"};
  spec.uris = {"spiffe://prod/app/web"};
  auto req = MakeCsr(key.get(), spec);
  ASSERT_TRUE(req);
  auto csr = ParseCsr(CsrPem(req.get()));
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_EQ(csr->common_name, "web");
  EXPECT_EQ(csr->subject, "CN=web");
  EXPECT_EQ(csr->dns_names, (std::vector<std::string>{"web.example.com", "www.example.com"}));
  EXPECT_EQ(csr->uris, (std::vector<std::string>{"spiffe://prod/app/web"}));
  EXPECT_EQ(csr->key_type, PublicKeyType::kEcP256);
  EXPECT_EQ(csr->key_bits, 256);
  auto spki = crypto::PublicKeyToDer(key.get());
  ASSERT_TRUE(spki.ok());
  EXPECT_EQ(csr->spki_der, *spki);
}

TEST(ParseCsr, AcceptsDerP384AndRsa2048) {
  auto p384 = Key(crypto::KeyType::kEcP384);
  CsrSpec spec;
  spec.md = EVP_sha384();
  auto req = MakeCsr(p384.get(), spec);
  auto der = CsrDer(req.get());
  auto csr = ParseCsr(AsString(der));
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_EQ(csr->key_type, PublicKeyType::kEcP384);
  EXPECT_EQ(csr->key_bits, 384);

  auto rsa = Key(crypto::KeyType::kRsa2048);
  auto rsa_csr = ParseCsr(CsrPem(MakeCsr(rsa.get()).get()));
  ASSERT_TRUE(rsa_csr.ok()) << rsa_csr.status().ToString();
  EXPECT_EQ(rsa_csr->key_type, PublicKeyType::kRsa);
  EXPECT_EQ(rsa_csr->key_bits, 2048);
}

TEST(ParseCsr, AcceptsNewCertificateRequestLabelAndSurroundingText) {
  auto key = Key(crypto::KeyType::kEcP256);
  std::string pem = CsrPem(MakeCsr(key.get()).get());
  std::string relabeled = "subject: api\n" + pem;
  for (std::string_view from : {"BEGIN CERTIFICATE REQUEST", "END CERTIFICATE REQUEST"}) {
    size_t at = relabeled.find(from);
    relabeled.replace(at, from.size(), std::string(from.substr(0, from.find(' '))) + " NEW CERTIFICATE REQUEST");
  }
  auto csr = ParseCsr(relabeled);
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_EQ(csr->common_name, "api.example.com");
}

TEST(ParseCsr, RejectsFlippedSignatureByte) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  der.back() ^= 0x01;  // last byte of the ECDSA s value: still valid DER, wrong signature
  ExpectReason(ParseCsr(AsString(der)), "csr_signature_invalid");
  // The PEM form of the same bytes fails the same way.
  std::string pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + Base64Encode(der) + "\n-----END CERTIFICATE REQUEST-----\n";
  ExpectReason(ParseCsr(pem), "csr_signature_invalid");
}

TEST(ParseCsr, SignatureCheckCanBeLeftToAnotherParty) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  der.back() ^= 0x01;
  CsrPolicy no_verify;
  no_verify.verify_signature = false;
  auto csr = ParseCsr(AsString(der), no_verify);
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_EQ(csr->common_name, "api.example.com");
  EXPECT_FALSE(csr->spki_der.empty());
  // Structure and key checks still apply without the signature check.
  std::string s = AsString(der);
  ExpectReason(ParseCsr(s.substr(0, s.size() - 3), no_verify), "invalid_csr");
  ExpectReason(ParseCsr(AsString(der)), "csr_signature_invalid");
}

TEST(ParseCsr, RejectsModifiedSubject) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  std::string s = AsString(der);
  size_t at = s.find("api.example.com");
  ASSERT_NE(at, std::string::npos);
  s[at] = 'x';
  ExpectReason(ParseCsr(s), "csr_signature_invalid");
}

TEST(ParseCsr, RejectsRsaSignatureWithFlippedByte) {
  auto key = Key(crypto::KeyType::kRsa2048);
  auto der = CsrDer(MakeCsr(key.get()).get());
  der[der.size() - 10] ^= 0x80;
  ExpectReason(ParseCsr(AsString(der)), "csr_signature_invalid");
}

TEST(ParseCsr, RejectsEd25519Key) {
  auto key = KeyByName("ED25519");
  ASSERT_TRUE(key);
  CsrSpec spec;
  spec.md = nullptr;
  auto req = MakeCsr(key.get(), spec);
  ASSERT_TRUE(req);
  auto r = ParseCsr(CsrPem(req.get()));
  ExpectReason(r, "csr_key_type_not_allowed");
  EXPECT_NE(r.status().message().find("ED25519"), std::string::npos) << r.status().message();
}

TEST(ParseCsr, RejectsRsa1024AsTooSmall) {
  auto key = KeyByName("RSA", 1024);
  ASSERT_TRUE(key);
  ExpectReason(ParseCsr(CsrPem(MakeCsr(key.get()).get())), "csr_key_too_small");
}

TEST(ParseCsr, RejectsOtherCurves) {
  auto key = crypto::EvpPkeyPtr(EVP_EC_gen("secp256k1"));
  ASSERT_TRUE(key);
  ExpectReason(ParseCsr(CsrPem(MakeCsr(key.get()).get())), "csr_key_type_not_allowed");
}

TEST(ParseCsr, HonoursTheAllowList) {
  auto p384 = Key(crypto::KeyType::kEcP384);
  auto rsa = Key(crypto::KeyType::kRsa2048);
  CsrPolicy only_p256;
  only_p256.allow_ec_p384 = false;
  only_p256.allow_rsa = false;
  ExpectReason(ParseCsr(CsrPem(MakeCsr(p384.get()).get()), only_p256), "csr_key_type_not_allowed");
  ExpectReason(ParseCsr(CsrPem(MakeCsr(rsa.get()).get()), only_p256), "csr_key_type_not_allowed");
  CsrPolicy rsa3072;
  rsa3072.min_rsa_bits = 3072;
  ExpectReason(ParseCsr(CsrPem(MakeCsr(rsa.get()).get()), rsa3072), "csr_key_too_small");
}

TEST(ParseCsr, RejectsGarbagePem) {
  ExpectReason(ParseCsr("hello world"), "invalid_csr");
  ExpectReason(ParseCsr(""), "invalid_csr");
  ExpectReason(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\n!!!not base64!!!\n-----END CERTIFICATE REQUEST-----\n"),
               "invalid_csr");
  ExpectReason(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"), "invalid_csr");
  // Valid base64, but not a CSR.
  ExpectReason(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE REQUEST-----\n"),
               "invalid_csr");
  // A certificate is not a CSR.
  ExpectReason(ParseCsr("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "invalid_csr");
}

TEST(ParseCsr, RejectsEveryTruncationOfTheDer) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  for (size_t len = 0; len < der.size(); ++len) {
    auto r = ParseCsr(std::string(der.begin(), der.begin() + static_cast<long>(len)));
    ASSERT_FALSE(r.ok()) << "length " << len;
    EXPECT_EQ(r.status().reason(), "invalid_csr") << "length " << len << ": " << r.status().ToString();
  }
}

TEST(ParseCsr, RejectsTrailingBytes) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  der.push_back(0);
  ExpectReason(ParseCsr(AsString(der)), "invalid_csr");
}

TEST(ParseCsr, RejectsCsrWithA100KbSubject) {
  auto key = Key(crypto::KeyType::kEcP256);
  CsrSpec spec;
  spec.extra_ou.assign(1700, std::string(60, 'u'));  // ~100 KB of subject
  auto req = MakeCsr(key.get(), spec);
  ASSERT_TRUE(req);
  auto der = CsrDer(req.get());
  ASSERT_GT(der.size(), 100u * 1000);
  auto r = ParseCsr(AsString(der));
  ExpectReason(r, "csr_too_large");
  // With a larger input limit, the subject limit still applies.
  CsrPolicy big_input;
  big_input.max_input_bytes = 1 << 20;
  ExpectReason(ParseCsr(AsString(der), big_input), "csr_subject_too_large");
}

TEST(ParseCsr, RejectsOversizedInputBeforeParsing) {
  std::string huge(70 * 1024, 'A');
  ExpectReason(ParseCsr(huge), "csr_too_large");
}

TEST(ParseCsr, RejectsSignatureAlgorithmThatDoesNotFitTheKey) {
  // Replace ecdsa-with-SHA256 by sha256WithRSAEncryption in the outer AlgorithmIdentifier.
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  const std::vector<uint8_t> ecdsa = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
  auto it = std::search(der.begin(), der.end(), ecdsa.begin(), ecdsa.end());
  ASSERT_NE(it, der.end());
  // Same length trick: ecdsa-with-SHA512 keeps the structure, which is allowed; use SHA-1 (4.1).
  *(it + 10) = 0x04;
  *(it + 11) = 0x01;
  ExpectReason(ParseCsr(AsString(der)), "csr_signature_algorithm_not_allowed");
}

TEST(ParseCsr, RejectsOffCurvePoint) {
  auto key = Key(crypto::KeyType::kEcP256);
  auto der = CsrDer(MakeCsr(key.get()).get());
  auto spki = crypto::PublicKeyToDer(key.get());
  ASSERT_TRUE(spki.ok());
  auto it = std::search(der.begin(), der.end(), spki->begin(), spki->end());
  ASSERT_NE(it, der.end());
  *(it + static_cast<long>(spki->size()) - 1) ^= 0x01;  // last byte of Y
  ExpectReason(ParseCsr(AsString(der)), "invalid_csr_key");
  // Without the signature check no key object is built: the curve check is left to the party
  // that verifies the CSR (vouchd), the point's encoding is still checked.
  CsrPolicy no_verify;
  no_verify.verify_signature = false;
  EXPECT_TRUE(ParseCsr(AsString(der), no_verify).ok());
  auto compressed = der;
  const auto spki_at = it - der.begin();
  ASSERT_EQ(compressed[static_cast<size_t>(spki_at) + spki->size() - 65], 0x04);
  compressed[static_cast<size_t>(spki_at) + spki->size() - 65] = 0x02;  // the uncompressed-point marker
  ExpectReason(ParseCsr(AsString(compressed), no_verify), "invalid_csr_key");
  ExpectReason(ParseCsr(AsString(compressed)), "invalid_csr_key");
}

TEST(ParseCsr, IsSafeToCallFromManyThreads) {
  std::vector<std::string> pems;
  for (auto type : {crypto::KeyType::kEcP256, crypto::KeyType::kEcP384, crypto::KeyType::kEcP256}) {
    auto key = Key(type);
    pems.push_back(CsrPem(MakeCsr(key.get()).get()));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        const std::string& pem = pems[static_cast<size_t>(i + t) % pems.size()];
        auto csr = ParseCsr(pem);
        if (!csr.ok() || csr->common_name != "api.example.com") ++failures;
        std::string bad = pem;
        bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';  // corrupt the base64 body
        if (ParseCsr(bad).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// The fuzz seed corpus doubles as a set of CSRs made by the `openssl req` command line.
TEST(ParseCsr, FuzzCorpusFilesHaveTheExpectedOutcome) {
  auto read = [](const std::string& name) {
    auto text = ReadWholeFile(std::string(VOUCH_SOURCE_DIR) + "/fuzz/csr_corpus/" + name);
    EXPECT_TRUE(text.ok()) << name;
    return text.value_or(std::string());
  };
  auto san = ParseCsr(read("p256_san.der"));
  ASSERT_TRUE(san.ok()) << san.status().ToString();
  EXPECT_EQ(san->common_name, "web.prod.example");
  EXPECT_EQ(san->dns_names, (std::vector<std::string>{"web.prod.example"}));
  EXPECT_EQ(san->uris, (std::vector<std::string>{"spiffe://prod/app/web"}));
  auto pem = ParseCsr(read("p256.pem"));
  ASSERT_TRUE(pem.ok()) << pem.status().ToString();
  EXPECT_EQ(pem->subject, "O=acme,CN=api");  // RFC 2253 lists the last RDN first
  auto p384 = ParseCsr(read("p384_ip.der"));
  ASSERT_TRUE(p384.ok()) << p384.status().ToString();
  EXPECT_EQ(p384->key_type, PublicKeyType::kEcP384);
  EXPECT_EQ(p384->ip_addresses, (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(p384->dns_names, (std::vector<std::string>{"a.example"}));
  auto rsa = ParseCsr(read("rsa2048.der"));
  ASSERT_TRUE(rsa.ok()) << rsa.status().ToString();
  EXPECT_EQ(rsa->key_bits, 2048);
  ExpectReason(ParseCsr(read("ed25519_rejected.der")), "csr_key_type_not_allowed");
  ExpectReason(ParseCsr(read("bad_signature.der")), "csr_signature_invalid");
  ExpectReason(ParseCsr(read("truncated.der")), "invalid_csr");
}

TEST(DerReader, RejectsIndefiniteAndNonMinimalLengths) {
  der::Element e;
  const uint8_t indefinite[] = {0x30, 0x80, 0x00, 0x00};
  EXPECT_FALSE(der::Reader(indefinite).Read(&e));
  const uint8_t long_form_small[] = {0x04, 0x81, 0x01, 0xaa};
  EXPECT_FALSE(der::Reader(long_form_small).Read(&e));
  const uint8_t leading_zero[] = {0x04, 0x82, 0x00, 0x81};
  EXPECT_FALSE(der::Reader(leading_zero).Read(&e));
  const uint8_t ok[] = {0x04, 0x01, 0xaa};
  der::Reader r(ok);
  ASSERT_TRUE(r.Read(der::kTagOctetString, &e));
  EXPECT_EQ(e.contents.size(), 1u);
  EXPECT_TRUE(r.empty());
  uint64_t v = 0;
  const uint8_t neg[] = {0x80};
  EXPECT_FALSE(der::ParseUint64(neg, &v));
  const uint8_t padded[] = {0x00, 0x80};
  ASSERT_TRUE(der::ParseUint64(padded, &v));
  EXPECT_EQ(v, 128u);
  const uint8_t nonminimal[] = {0x00, 0x01};
  EXPECT_FALSE(der::ParseUint64(nonminimal, &v));
}

}  // namespace
}  // namespace vouch::pki
