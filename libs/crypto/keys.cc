#include "crypto/keys.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace vouch::crypto {
namespace {

Result<std::vector<uint8_t>> BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0) return Internal("BIO_get_mem_data failed");
  return std::vector<uint8_t>(data, data + len);
}

BioPtr MemBio(std::string_view s) { return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size()))); }

}  // namespace

Result<EvpPkeyPtr> GenerateKey(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::kEcP256: key = EVP_EC_gen("P-256"); break;
    case KeyType::kEcP384: key = EVP_EC_gen("P-384"); break;
    case KeyType::kRsa2048: key = EVP_RSA_gen(2048); break;
    case KeyType::kRsa3072: key = EVP_RSA_gen(3072); break;
  }
  if (key == nullptr) return OpensslError("generate key");
  return EvpPkeyPtr(key);
}

Result<SecretBytes> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpensslError("encode private key");
  }
  VOUCH_ASSIGN_OR_RETURN(auto bytes, BioContents(bio.get()));
  SecretBytes out(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return out;
}

Result<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return OpensslError("parse private key PEM", StatusCode::kInvalidArgument, "invalid_key");
  return EvpPkeyPtr(key);
}

Result<SecretBytes> PrivateKeyToDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PrivateKey(key, &der);
  if (len <= 0) return OpensslError("encode private key DER");
  SecretBytes out(std::span<const uint8_t>(der, static_cast<size_t>(len)));
  OPENSSL_clear_free(der, static_cast<size_t>(len));
  return out;
}

Result<EvpPkeyPtr> PrivateKeyFromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  EVP_PKEY* key = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
  if (key == nullptr) return OpensslError("parse private key DER", StatusCode::kInvalidArgument, "invalid_key");
  return EvpPkeyPtr(key);
}

Result<std::vector<uint8_t>> PublicKeyToDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return OpensslError("encode public key");
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<EvpPkeyPtr> PublicKeyFromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (key == nullptr || p != der.data() + der.size()) {
    EVP_PKEY_free(key);
    return OpensslError("parse public key DER", StatusCode::kInvalidArgument, "invalid_key");
  }
  return EvpPkeyPtr(key);
}

Result<std::string> PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return OpensslError("encode public key PEM");
  VOUCH_ASSIGN_OR_RETURN(auto bytes, BioContents(bio.get()));
  return std::string(bytes.begin(), bytes.end());
}

Result<EvpPkeyPtr> PublicKeyFromPem(std::string_view pem) {
  BioPtr bio = MemBio(pem);
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return OpensslError("parse public key PEM", StatusCode::kInvalidArgument, "invalid_key");
  return EvpPkeyPtr(key);
}

Result<std::vector<uint8_t>> EcPublicPointEncoded(EVP_PKEY* key) {
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &len) != 1) {
    return OpensslError("get EC public point");
  }
  std::vector<uint8_t> out(len);
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out.data(), out.size(), &len) != 1) {
    return OpensslError("get EC public point");
  }
  out.resize(len);
  return out;
}

Result<EvpPkeyPtr> EcPublicKeyFromRaw(std::span<const uint8_t> xy, int curve_nid) {
  size_t want = curve_nid == NID_secp384r1 ? 96 : 64;
  if (xy.size() != want) {
    return InvalidArgument("EC public key is " + std::to_string(xy.size()) + " bytes, expected " +
                               std::to_string(want),
                           "invalid_key");
  }
  std::vector<uint8_t> point;
  point.reserve(want + 1);
  point.push_back(0x04);
  point.insert(point.end(), xy.begin(), xy.end());
  const char* group = curve_nid == NID_secp384r1 ? "P-384" : "P-256";
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return OpensslError("build EC params");
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return OpensslError("EC public key from raw point", StatusCode::kInvalidArgument, "invalid_key");
  }
  EvpPkeyPtr out(key);
  // fromdata does not check that the point is on the curve; do it here.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return OpensslError("EC public point is not on the curve", StatusCode::kInvalidArgument, "invalid_key");
  }
  return out;
}

std::string DescribeKey(EVP_PKEY* key) {
  if (key == nullptr) return "no key";
  int id = EVP_PKEY_get_base_id(key);
  int bits = EVP_PKEY_get_bits(key);
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len);
    std::string g(group);
    if (g == "prime256v1") return "EC P-256";
    if (g == "secp384r1") return "EC P-384";
    return "EC " + g;
  }
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) return "RSA " + std::to_string(bits);
  if (id == EVP_PKEY_ED25519) return "Ed25519";
  return "key type " + std::to_string(id);
}

Result<EvpPkeyPtr> P256PublicKeyFromEncoded(std::span<const uint8_t> point) {
  if (point.size() != 65 || point[0] != 0x04) {
    return InvalidArgument("public key must be an uncompressed P-256 point (65 bytes, 0x04 first), got " +
                               std::to_string(point.size()) + " bytes",
                           "invalid_public_key");
  }
  auto key = EcPublicKeyFromRaw(point.subspan(1), NID_X9_62_prime256v1);
  if (!key.ok()) return InvalidArgument("public key is not a P-256 point: " + key.status().message(), "invalid_public_key");
  return key;
}

Result<SecretBytes> EcdhSharedSecret(EVP_PKEY* own, EVP_PKEY* peer) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(own, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    return OpensslError("ECDH");
  }
  SecretBytes shared(len);
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) != 1 || len != shared.size()) return OpensslError("ECDH");
  return shared;
}

}  // namespace vouch::crypto
