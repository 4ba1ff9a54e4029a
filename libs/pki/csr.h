#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::pki {

// Subject public key types a CSR may carry. Anything else (Ed25519, DSA, other curves) is
// rejected with reason "csr_key_type_not_allowed".
enum class PublicKeyType { kEcP256, kEcP384, kRsa };

std::string_view PublicKeyTypeName(PublicKeyType type);  // "EC P-256", "EC P-384", "RSA"

// What ParseCsr accepts. The default accepts P-256, P-384 and RSA of 2048 bits or more.
struct CsrPolicy {
  bool allow_ec_p256 = true;
  bool allow_ec_p384 = true;
  bool allow_rsa = true;
  int min_rsa_bits = 2048;
  int max_rsa_bits = 8192;
  size_t max_input_bytes = 64 * 1024;   // PEM or DER, before decoding
  size_t max_subject_bytes = 4 * 1024;  // the DER subject Name
  // Check the self-signature (proof of possession of the key). Turn it off only where another
  // party verifies the same CSR before anything is issued: the node agent, which only needs the
  // CSR's key to check a REPORT's binding and forwards the CSR to vouchd, which verifies it
  // (docs/agent.md). Everything else (structure, key type, the EC point's encoding and length) is
  // still checked; whether an EC point lies on its curve is then left to that other party, since
  // no key object is built (nothing is computed with the key here).
  bool verify_signature = true;
};

// A certification request (RFC 2986) whose self-signature has been verified (unless the policy
// turned that off). A plain value:
// no OpenSSL objects, copyable, safe to pass between threads.
struct Csr {
  std::string subject;           // RFC 2253 one-line form, e.g. "CN=api,O=acme"
  std::string common_name;       // first CN of the subject, "" if none
  std::vector<std::string> dns_names;     // requested subjectAltName dNSName entries
  std::vector<std::string> uris;          // requested subjectAltName URI entries
  std::vector<std::string> ip_addresses;  // requested iPAddress entries, textual form
  std::vector<uint8_t> spki_der;          // SubjectPublicKeyInfo DER, exactly as in the CSR
  PublicKeyType key_type = PublicKeyType::kEcP256;
  int key_bits = 0;                       // 256, 384 or the RSA modulus size
};

// Parses a PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or DER CSR, checks its
// structure, key type and self-signature. Failures are kInvalidArgument with one of the
// reasons: csr_too_large, invalid_csr (not PEM/DER, truncated, trailing data, bad version),
// csr_subject_too_large, csr_key_type_not_allowed, csr_key_too_small, invalid_csr_key
// (a key that does not decode, e.g. an EC point off the curve),
// csr_signature_algorithm_not_allowed, csr_signature_invalid.
//
// The fast path: the CSR is walked with a strict DER reader, the EC public key is built from
// its raw point (no generic SubjectPublicKeyInfo decoder) and the SPKI bytes are kept for the
// certificate. Thread-safe; never throws.
Result<Csr> ParseCsr(std::string_view pem_or_der, const CsrPolicy& policy = {});

}  // namespace vouch::pki
