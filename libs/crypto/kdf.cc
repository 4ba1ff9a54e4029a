#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include <charconv>
#include <vector>

#include "base/encoding.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/secret.h"

namespace vouch::crypto {
namespace {

Result<SecretBytes> Scrypt(std::string_view password, std::span<const uint8_t> salt, const ScryptParams& p) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) return OpensslError("fetch SCRYPT");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  uint64_t n = p.n;
  uint32_t r = p.r, par = p.p;
  uint64_t maxmem = 1ull << 30;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()), password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  SecretBytes out(32);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) return OpensslError("scrypt");
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

template <typename T>
bool ParseNum(std::string_view s, T* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<SecretBytes> HkdfSha256(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                               std::span<const uint8_t> info, size_t length) {
  if (length == 0 || length > 255 * 32) {
    return InvalidArgument("HKDF-SHA256 output must be 1..8160 bytes, asked for " + std::to_string(length),
                           "invalid_length");
  }
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  EvpKdfCtxPtr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  if (!ctx) return OpensslError("fetch HKDF");
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers; the KDF only reads them. An empty salt is omitted
  // (RFC 5869: a string of HashLen zeros is used instead).
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(key.data()), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size())};
  if (!salt.empty()) {
    params.push_back(
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()));
  }
  params.push_back(OSSL_PARAM_construct_end());
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1) return OpensslError("HKDF");
  return out;
}

Result<std::string> HashPassword(std::string_view password, const ScryptParams& params) {
  std::vector<uint8_t> salt = RandomBytes(16);
  VOUCH_ASSIGN_OR_RETURN(SecretBytes hash, Scrypt(password, salt, params));
  return "scrypt$" + std::to_string(params.n) + "$" + std::to_string(params.r) + "$" + std::to_string(params.p) +
         "$" + Base64UrlEncode(salt) + "$" + Base64UrlEncode(hash.span());
}

bool VerifyPassword(std::string_view password, std::string_view encoded) {
  auto parts = Split(encoded, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  ScryptParams p;
  if (!ParseNum(parts[1], &p.n) || !ParseNum(parts[2], &p.r) || !ParseNum(parts[3], &p.p)) return false;
  // Refuse absurd parameters from a tampered record instead of burning memory.
  if (p.n < 2 || p.n > (1u << 20) || p.r == 0 || p.r > 32 || p.p == 0 || p.p > 16) return false;
  auto salt = Base64UrlDecode(parts[4]);
  auto want = Base64UrlDecode(parts[5]);
  if (!salt.ok() || !want.ok()) return false;
  auto got = Scrypt(password, *salt, p);
  if (!got.ok()) return false;
  return ConstantTimeEquals(got->span(), *want);
}

}  // namespace vouch::crypto
