#pragma once

// Building blocks of the sim TEE vendor (sim_vendor.h), shared with tests that need to forge
// mutated chains, CRLs and collateral: certificates with the SGX extension, CRLs, and Intel-style
// signed JSON. INSECURE by design; never used on a verification path. Thread-safe; no throws.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::attest::sim {

struct CertSpec {
  std::string cn;
  EVP_PKEY* subject_key = nullptr;
  X509* issuer = nullptr;  // null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  uint64_t serial = 1;
  TimePoint not_before;
  TimePoint not_after;
  bool ca = false;
  int pathlen = -1;
  std::vector<uint8_t> sgx_extension;  // DER content of the SGX extension, optional
};

// An X.509 v3 certificate (subject CN + O "vouch sim (INSECURE, not Intel)"), ECDSA-SHA256.
Result<crypto::X509Ptr> MakeCert(const CertSpec& spec);
// A v2 CRL by `issuer`, listing the serials of `revoked`; DER.
Result<std::vector<uint8_t>> MakeCrl(X509* issuer, EVP_PKEY* key, TimePoint this_update, TimePoint next_update,
                                     const std::vector<X509*>& revoked);
// `{"<key>":<body_text>,"signature":"<hex r||s>"}`, signing `body_text` exactly as given.
Result<std::string> SignedJson(const char* key, const std::string& body_text, EVP_PKEY* signer);
// DER of the SGX extension (OID 1.2.840.113741.1.13.1) with the structure of Intel's PCK certificates.
std::vector<uint8_t> SgxExtensionDer(const std::array<uint8_t, 16>& comp_svns, uint16_t pcesvn,
                                     std::span<const uint8_t> cpusvn, std::span<const uint8_t> ppid,
                                     std::span<const uint8_t> pce_id, std::span<const uint8_t> fmspc);

}  // namespace vouch::attest::sim
