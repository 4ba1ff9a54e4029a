#include <gtest/gtest.h>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "crypto/x509.h"

namespace vouch::crypto {
namespace {

TEST(Digest, Sha256KnownAnswer) {
  EXPECT_EQ(HexEncode(Sha256(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Hasher h;
  h.Update(std::string_view("a"));
  h.Update(std::string_view("bc"));
  EXPECT_EQ(h.Finish(), Sha256(std::string_view("abc")));
}

TEST(Aead, RoundTripAndTamperDetection) {
  auto key = RandomSecret(32);
  auto sealed = Aes256GcmSeal(key.span(), AsBytes("secret key material"), AsBytes("zone:1"));
  ASSERT_TRUE(sealed.ok());
  auto opened = Aes256GcmOpen(key.span(), *sealed, AsBytes("zone:1"));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->view(), "secret key material");
  EXPECT_FALSE(Aes256GcmOpen(key.span(), *sealed, AsBytes("zone:2")).ok());
  auto flipped = *sealed;
  flipped[14] ^= 1;
  EXPECT_EQ(Aes256GcmOpen(key.span(), flipped, AsBytes("zone:1")).status().reason(), "decrypt_failed");
  EXPECT_FALSE(Aes256GcmOpen(key.span(), std::vector<uint8_t>(10), {}).ok());
}

TEST(Kdf, PasswordHashVerifies) {
  ScryptParams fast{1 << 10, 8, 1};
  auto h = HashPassword("correct horse", fast);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(VerifyPassword("correct horse", *h));
  EXPECT_FALSE(VerifyPassword("correct horsf", *h));
  EXPECT_FALSE(VerifyPassword("correct horse", "scrypt$1$1$1$x$y"));
  EXPECT_FALSE(VerifyPassword("x", "garbage"));
}

TEST(Keys, P256SignVerifyAndRawPoints) {
  auto key = GenerateP256();
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(DescribeKey(key->get()), "EC P-256");
  auto sig = Sign(key->get(), AsBytes("hello"));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Verify(key->get(), AsBytes("hello"), *sig));
  EXPECT_FALSE(Verify(key->get(), AsBytes("hellp"), *sig));
  auto raw = EcdsaDerToRaw(*sig, 32);
  ASSERT_TRUE(raw.ok());
  auto point = EcPublicPointEncoded(key->get());
  ASSERT_TRUE(point.ok());
  ASSERT_EQ(point->size(), 65u);
  auto pub = EcPublicKeyFromRaw(std::span<const uint8_t>(*point).subspan(1), NID_X9_62_prime256v1);
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(VerifyEcdsaRaw(pub->get(), AsBytes("hello"), *raw));
  auto bad_point = *point;
  bad_point[10] ^= 1;
  EXPECT_FALSE(EcPublicKeyFromRaw(std::span<const uint8_t>(bad_point).subspan(1), NID_X9_62_prime256v1).ok());
  auto pem = PrivateKeyToPem(key->get());
  ASSERT_TRUE(pem.ok());
  auto back = PrivateKeyFromPem(pem->view());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(Verify(back->get(), AsBytes("hello"), *sig));
  EXPECT_FALSE(PrivateKeyFromPem("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n").ok());
}

TEST(X509, ParsesIntelRootAndRejectsGarbage) {
  auto pem = ReadWholeFile(std::string(VOUCH_SHARED_DIR) +
                      "/testdata/attestation/roots/intel/Intel_SGX_Provisioning_Certification_RootCA.pem");
  ASSERT_TRUE(pem.ok()) << pem.status().ToString();
  auto certs = CertsFromPem(*pem);
  ASSERT_TRUE(certs.ok());
  ASSERT_EQ(certs->size(), 1u);
  EXPECT_EQ(SubjectCommonName((*certs)[0].get()), "Intel SGX Root CA");
  EXPECT_EQ(SerialHex((*certs)[0].get()), "22650cd65a9d3489f383b49552bf501b392706ac");
  EXPECT_FALSE(CertsFromPem("nothing here").ok());
  EXPECT_FALSE(CertFromDer(std::vector<uint8_t>{0x30, 0x03, 0x01}).ok());
}

TEST(X509, SamePemIsParsedOnceAndSharedByReference) {
  auto pem = ReadWholeFile(std::string(VOUCH_SHARED_DIR) +
                      "/testdata/attestation/roots/intel/Intel_SGX_Provisioning_Certification_RootCA.pem");
  ASSERT_TRUE(pem.ok()) << pem.status().ToString();
  auto a = CertFromPem(*pem);
  auto b = CertFromPem(*pem);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());  // one parsed object, two references
  a->reset();                     // dropping one reference leaves the other usable
  EXPECT_EQ(SubjectCommonName(b->get()), "Intel SGX Root CA");
  // A different text (one base64 character changed) is parsed on its own: never served from
  // the cache, and here rejected or different.
  std::string changed = *pem;
  size_t body = changed.find('\n') + 10;
  changed[body] = changed[body] == 'A' ? 'B' : 'A';
  auto c = CertFromPem(changed);
  if (c.ok()) {
    EXPECT_NE(c->get(), b->get());
  }
}

}  // namespace
TEST(Hkdf, MatchesRfc5869TestCaseOne) {
  std::vector<uint8_t> ikm(22, 0x0b);
  auto salt = HexDecode("000102030405060708090a0b0c").value();
  auto info = HexDecode("f0f1f2f3f4f5f6f7f8f9").value();
  auto okm = HkdfSha256(ikm, salt, info, 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexEncode(okm->span()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, EmptySaltIsRfc5869TestCaseThreeAndLengthIsBounded) {
  std::vector<uint8_t> ikm(22, 0x0b);
  auto okm = HkdfSha256(ikm, {}, {}, 42);
  ASSERT_TRUE(okm.ok()) << okm.status().ToString();
  EXPECT_EQ(HexEncode(okm->span()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 0).status().reason(), "invalid_length");
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, 255 * 32 + 1).status().reason(), "invalid_length");
  EXPECT_TRUE(HkdfSha256(ikm, {}, {}, 255 * 32).ok());
}

TEST(Ecdh, BothSidesAgreeAndOnlyOnTheSameCurve) {
  auto a = GenerateP256().value();
  auto b = GenerateP256().value();
  auto a_pub = P256PublicKeyFromEncoded(EcPublicPointEncoded(a.get()).value()).value();
  auto b_pub = P256PublicKeyFromEncoded(EcPublicPointEncoded(b.get()).value()).value();
  auto ab = EcdhSharedSecret(a.get(), b_pub.get());
  auto ba = EcdhSharedSecret(b.get(), a_pub.get());
  ASSERT_TRUE(ab.ok() && ba.ok());
  EXPECT_EQ(ab->size(), 32u);
  EXPECT_EQ(HexEncode(ab->span()), HexEncode(ba->span()));
  auto c = GenerateP256().value();
  EXPECT_NE(HexEncode(EcdhSharedSecret(c.get(), b_pub.get())->span()), HexEncode(ab->span()));
  auto p384 = GenerateKey(KeyType::kEcP384).value();
  EXPECT_FALSE(EcdhSharedSecret(p384.get(), b_pub.get()).ok());
}

// docs/formats/heartbeat-key.md: fixed keys (private scalars 0x11..11 and 0x22..22) and serial.
// The expected values were computed independently (Python cryptography: ECDH, HKDF, HMAC).
constexpr std::string_view kHbInstanceKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgERERERERERERERER\n"
    "ERERERERERERERERERERERERERGhRANCAAQCF+YX8LZEOSgnj5aZnmmiOk8sFSvf\n"
    "bWzfZuW4AoLU7RlKfevLl3EtLdo8qFqodlpW9F/HWFmWUvKJfGUwbleU\n"
    "-----END PRIVATE KEY-----\n";
constexpr std::string_view kHbZoneKey =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIiIiIiIiIiIiIiIi\n"
    "IiIiIiIiIiIiIiIiIiIiIiIiIiKhRANCAATWWpOXfKo9GwgYUv9Xp55GXxZgV3ME\n"
    "uurVBd06SFic81AYXolTct9iIeo6E3VX5HP922dV8FvVB8PFM/zpyRKF\n"
    "-----END PRIVATE KEY-----\n";

TEST(HeartbeatKey, FixedVectorAndBothSidesAgree) {
  auto inst = PrivateKeyFromPem(kHbInstanceKey).value();
  auto zone = PrivateKeyFromPem(kHbZoneKey).value();
  auto zone_pub = PublicKeyFromDer(PublicKeyToDer(zone.get()).value()).value();
  auto inst_pub = PublicKeyFromDer(PublicKeyToDer(inst.get()).value()).value();
  const std::string serial = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(HexEncode(EcdhSharedSecret(inst.get(), zone_pub.get())->span()),
            "ccfc261f58193c98ca4ad4a53bbac6f0ee29bc4d48438090446908622ca79af6");
  auto workload_side = DeriveHeartbeatKey(inst.get(), zone_pub.get(), serial);
  auto server_side = DeriveHeartbeatKey(zone.get(), inst_pub.get(), serial);
  ASSERT_TRUE(workload_side.ok() && server_side.ok()) << workload_side.status().message();
  EXPECT_EQ(HexEncode(workload_side->span()), "60e7b38125f991a20ad21fcb044c80396b757ed2a84b22e447df8f17c7282b17");
  EXPECT_EQ(HexEncode(server_side->span()), HexEncode(workload_side->span()));
  // Another serial (a renewal with the same key) gives another key.
  EXPECT_NE(HexEncode(DeriveHeartbeatKey(inst.get(), zone_pub.get(), "0123456789abcdef0123456789abcdee")->span()),
            HexEncode(workload_side->span()));
  // Refusals: the serial's spelling is fixed; only P-256 keys.
  EXPECT_EQ(DeriveHeartbeatKey(inst.get(), zone_pub.get(), "0123456789ABCDEF").status().reason(), "invalid_serial");
  EXPECT_EQ(DeriveHeartbeatKey(inst.get(), zone_pub.get(), "").status().reason(), "invalid_serial");
  auto p384 = GenerateKey(KeyType::kEcP384).value();
  EXPECT_EQ(DeriveHeartbeatKey(p384.get(), zone_pub.get(), serial).status().reason(), "invalid_key_type");
  auto rsa = GenerateKey(KeyType::kRsa2048).value();
  EXPECT_EQ(DeriveHeartbeatKey(rsa.get(), zone_pub.get(), serial).status().reason(), "invalid_key_type");
  EXPECT_TRUE(IsP256Key(inst.get()));
  EXPECT_FALSE(IsP256Key(rsa.get()));
}

TEST(Ecdh, EncodedP256PointsAreCheckedBeforeUse) {
  auto a = GenerateP256().value();
  std::vector<uint8_t> point = EcPublicPointEncoded(a.get()).value();
  ASSERT_EQ(point.size(), 65u);
  EXPECT_TRUE(P256PublicKeyFromEncoded(point).ok());
  std::vector<uint8_t> compressed = point;
  compressed[0] = 0x02;
  EXPECT_EQ(P256PublicKeyFromEncoded(compressed).status().reason(), "invalid_public_key");
  EXPECT_EQ(P256PublicKeyFromEncoded(std::span(point).first(64)).status().reason(), "invalid_public_key");
  std::vector<uint8_t> off_curve = point;
  off_curve[64] ^= 1;
  EXPECT_EQ(P256PublicKeyFromEncoded(off_curve).status().reason(), "invalid_public_key");
}

}  // namespace vouch::crypto
