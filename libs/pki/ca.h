#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/signature.h"

namespace vouch::pki {

enum class CaKeyAlgorithm { kEcP256, kEcP384, kRsa3072 };

struct RootCaOptions {
  std::string common_name;   // required, at most 64 characters
  std::string organization;  // optional
  CaKeyAlgorithm key_algorithm = CaKeyAlgorithm::kEcP256;
  std::chrono::seconds validity = std::chrono::hours(24 * (365 * 5 + 1));  // 5 years
  // basicConstraints pathLenConstraint; nullopt = unlimited. A zone CA signs leaves only.
  std::optional<int> path_length = 0;
  // Start of validity; nullopt = now (from the clock).
  std::optional<TimePoint> not_before;
};

// A freshly created CA. The key is the CA's private key: encrypt it before storing it.
struct CaMaterial {
  crypto::X509Ptr cert;
  crypto::EvpPkeyPtr key;
  std::string cert_pem;
  std::vector<uint8_t> cert_der;
};

// A self-signed root CA: X.509 v3, random 128-bit serial, subject = issuer = CN (+ O),
// basicConstraints CA:TRUE (critical, with the path length), keyUsage keyCertSign+cRLSign
// (critical), subjectKeyIdentifier, signed with SHA-256 (SHA-384 for P-384).
// Fails with kInvalidArgument for bad options. Thread-safe.
Result<CaMaterial> CreateRootCa(const RootCaOptions& options, const Clock& clock = SystemClock::Get());

// Signs certificates and CRLs for one CA. Created once per CA and shared: every const method
// is thread-safe (the CA certificate is re-parsed privately and never mutated after Create;
// the key is only read). Holds a reference on the key for its lifetime.
class CaSigner {
 public:
  // Validates that `cert` is a CA certificate (basicConstraints CA:TRUE and, if present,
  // keyUsage keyCertSign), that `key` is its private key, and that the key type is one the
  // CA supports (EC P-256/P-384, RSA >= 2048). Reasons: ca_key_mismatch, not_a_ca,
  // ca_key_type_not_supported. Neither argument is taken over (the key is up-referenced).
  static Result<std::unique_ptr<CaSigner>> Create(X509* cert, EVP_PKEY* key);
  static Result<std::unique_ptr<CaSigner>> Create(const CaMaterial& ca) { return Create(ca.cert.get(), ca.key.get()); }
  // From PEM text (certificate and PKCS#8 private key).
  static Result<std::unique_ptr<CaSigner>> CreateFromPem(std::string_view cert_pem, std::string_view key_pem);

  CaSigner(const CaSigner&) = delete;
  CaSigner& operator=(const CaSigner&) = delete;

  // The CA certificate; do not modify it.
  X509* cert() const { return cert_.get(); }
  const std::string& cert_pem() const { return cert_pem_; }
  // The parsed CA subject, used as the issuer of everything this CA signs. Do not modify.
  const X509_NAME* subject() const { return subject_.get(); }
  // The CA's subjectKeyIdentifier (or the RFC 5280 SHA-1 key id if the cert has none).
  std::span<const uint8_t> key_id() const { return key_id_; }
  // The authorityKeyIdentifier extension (keyIdentifier only), ready to add.
  const X509_EXTENSION* authority_key_id_extension() const { return aki_.get(); }
  TimePoint not_after() const { return not_after_; }
  // DER encodings used to build certificates without OpenSSL's object model: the CA subject
  // Name (the issuer of what it signs), the AlgorithmIdentifier of its signatures, and the
  // value of the authorityKeyIdentifier extension.
  std::span<const uint8_t> subject_der() const { return subject_der_; }
  std::span<const uint8_t> signature_algorithm_der() const { return signature_algorithm_der_; }
  std::span<const uint8_t> authority_key_id_der() const { return aki_der_; }

  // Sets the signature algorithm and signs. Thread-safe.
  Status Sign(X509* cert) const;
  Status Sign(X509_CRL* crl) const;
  // Signs `data` (a DER TBSCertificate) with the algorithm of signature_algorithm_der():
  // returns the signature value (DER ECDSA-Sig-Value or PKCS#1 v1.5). Thread-safe.
  Result<std::vector<uint8_t>> SignData(std::span<const uint8_t> data) const;

 private:
  CaSigner() = default;

  crypto::X509Ptr cert_;
  crypto::EvpPkeyPtr key_;
  crypto::X509NamePtr subject_;
  crypto::X509ExtensionPtr aki_;
  std::vector<uint8_t> key_id_;
  std::vector<uint8_t> subject_der_;
  std::vector<uint8_t> signature_algorithm_der_;
  std::vector<uint8_t> aki_der_;
  std::string cert_pem_;
  const EVP_MD* md_ = nullptr;
  crypto::DigestAlg alg_ = crypto::DigestAlg::kSha256;  // the same digest as md_, for crypto::Sign
  TimePoint not_after_;
};

// 16 random bytes forming a positive serial number: the first byte is in [0x10, 0xff], so the
// value is never zero, its hex form is always 32 characters and its DER INTEGER is 16 or 17
// bytes (17 when the top bit is set and a 0x00 pad is needed). Thread-safe.
std::array<uint8_t, 16> RandomSerial();

}  // namespace vouch::pki
