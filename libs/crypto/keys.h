#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"

namespace vouch::crypto {

enum class KeyType { kEcP256, kEcP384, kRsa2048, kRsa3072 };

Result<EvpPkeyPtr> GenerateKey(KeyType type);
inline Result<EvpPkeyPtr> GenerateP256() { return GenerateKey(KeyType::kEcP256); }

// PKCS#8 PEM. The returned PEM is a secret: keep it in SecretBytes.
Result<SecretBytes> PrivateKeyToPem(EVP_PKEY* key);
Result<EvpPkeyPtr> PrivateKeyFromPem(std::string_view pem);
// PKCS#8 DER, for sealing at rest.
Result<SecretBytes> PrivateKeyToDer(EVP_PKEY* key);
Result<EvpPkeyPtr> PrivateKeyFromDer(std::span<const uint8_t> der);

// SubjectPublicKeyInfo.
Result<std::vector<uint8_t>> PublicKeyToDer(EVP_PKEY* key);
Result<EvpPkeyPtr> PublicKeyFromDer(std::span<const uint8_t> der);
Result<std::string> PublicKeyToPem(EVP_PKEY* key);
Result<EvpPkeyPtr> PublicKeyFromPem(std::string_view pem);

// EC public keys as raw points: 0x04 || X || Y for Encoded, X || Y (no prefix, as in SGX
// quotes) for Raw. `curve_nid` is NID_X9_62_prime256v1 or NID_secp384r1.
Result<std::vector<uint8_t>> EcPublicPointEncoded(EVP_PKEY* key);
Result<EvpPkeyPtr> EcPublicKeyFromRaw(std::span<const uint8_t> xy, int curve_nid);
// A P-256 public key from its uncompressed SEC 1 encoding (0x04 || X || Y, 65 bytes); anything
// else, or a point not on the curve, is InvalidArgument "invalid_public_key".
Result<EvpPkeyPtr> P256PublicKeyFromEncoded(std::span<const uint8_t> point);

// ECDH (SEC 1 section 3.3.1): the shared secret (the X coordinate) of `own`'s private key and
// `peer`'s public key, which must be on the same curve. Feed it to a KDF (HkdfSha256), never use
// it as a key directly.
Result<SecretBytes> EcdhSharedSecret(EVP_PKEY* own, EVP_PKEY* peer);

// A short description for logs and errors: "EC P-256", "RSA 3072".
std::string DescribeKey(EVP_PKEY* key);

}  // namespace vouch::crypto
