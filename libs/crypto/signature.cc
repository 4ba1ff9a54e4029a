#include "crypto/signature.h"

#include <algorithm>

namespace vouch::crypto {
namespace {
const EVP_MD* Md(DigestAlg alg) { return alg == DigestAlg::kSha384 ? EVP_sha384() : EVP_sha256(); }
}  // namespace

Result<std::vector<uint8_t>> Sign(EVP_PKEY* key, std::span<const uint8_t> data, DigestAlg alg) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, Md(alg), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return OpensslError("sign");
  }
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) return OpensslError("sign");
  sig.resize(len);
  return sig;
}

bool Verify(EVP_PKEY* key, std::span<const uint8_t> data, std::span<const uint8_t> signature, DigestAlg alg) {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, Md(alg), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size()) == 1;
  DrainOpensslErrors();
  return ok;
}

Result<std::vector<uint8_t>> EcdsaRawToDer(std::span<const uint8_t> r, std::span<const uint8_t> s, bool big_endian) {
  std::vector<uint8_t> rb(r.begin(), r.end()), sb(s.begin(), s.end());
  if (!big_endian) {
    std::reverse(rb.begin(), rb.end());
    std::reverse(sb.begin(), sb.end());
  }
  BIGNUM* bn_r = BN_bin2bn(rb.data(), static_cast<int>(rb.size()), nullptr);
  BIGNUM* bn_s = BN_bin2bn(sb.data(), static_cast<int>(sb.size()), nullptr);
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!bn_r || !bn_s || !sig || ECDSA_SIG_set0(sig.get(), bn_r, bn_s) != 1) {
    BN_free(bn_r);
    BN_free(bn_s);
    return OpensslError("build ECDSA signature");
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return OpensslError("encode ECDSA signature");
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<std::vector<uint8_t>> EcdsaDerToRaw(std::span<const uint8_t> der, size_t component_len) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return OpensslError("parse ECDSA signature", StatusCode::kInvalidArgument, "invalid_signature");
  std::vector<uint8_t> out(2 * component_len);
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  if (BN_bn2binpad(r, out.data(), static_cast<int>(component_len)) < 0 ||
      BN_bn2binpad(s, out.data() + component_len, static_cast<int>(component_len)) < 0) {
    return OpensslError("ECDSA component too large", StatusCode::kInvalidArgument, "invalid_signature");
  }
  return out;
}

bool VerifyEcdsaRaw(EVP_PKEY* key, std::span<const uint8_t> data, std::span<const uint8_t> rs, DigestAlg alg) {
  if (rs.empty() || rs.size() % 2 != 0) return false;
  size_t half = rs.size() / 2;
  auto der = EcdsaRawToDer(rs.subspan(0, half), rs.subspan(half), true);
  if (!der.ok()) return false;
  return Verify(key, data, *der, alg);
}

}  // namespace vouch::crypto
