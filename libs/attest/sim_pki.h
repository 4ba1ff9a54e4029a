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

// A certificate extension given as its OID and the DER of its value (the extnValue contents).
struct RawExtension {
  std::string oid;
  std::vector<uint8_t> value;
};

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
  // Subject O; empty: "vouch sim (INSECURE, not Intel)".
  std::string organization;
  // Sign with RSASSA-PSS / SHA-384 / MGF1-SHA-384 / salt 48, as AMD signs ARK, ASK and VCEK
  // certificates (issuer_key must be RSA); otherwise ECDSA-SHA256 (or PKCS#1 for RSA).
  bool rsa_pss_sha384 = false;
  std::vector<RawExtension> extensions;  // added after the standard ones
  // Subject/authority key identifiers, basic constraints, key usage. AMD's VCEKs carry none of
  // them (only AMD's own extensions).
  bool standard_extensions = true;
};

// An X.509 v3 certificate (subject CN + O "vouch sim (INSECURE, not Intel)" unless overridden),
// ECDSA-SHA256 unless spec.rsa_pss_sha384.
Result<crypto::X509Ptr> MakeCert(const CertSpec& spec);
// A v2 CRL by `issuer`, listing the serials of `revoked`; DER.
Result<std::vector<uint8_t>> MakeCrl(X509* issuer, EVP_PKEY* key, TimePoint this_update, TimePoint next_update,
                                     const std::vector<X509*>& revoked, bool rsa_pss_sha384 = false);
// A fresh RSA key of `bits` bits (the AMD-style ARK and ASK are RSA-4096).
Result<crypto::EvpPkeyPtr> GenerateRsa(unsigned bits);
// The VCEK extensions of AMD's "VCEK Certificate and KDS Interface Specification" (OID arc
// 1.3.6.1.4.1.3704.1): .1 structVersion INTEGER 1, .2 productName IA5String, .3.1 blSPL,
// .3.2 teeSPL, .3.3 snpSPL, .3.4-.3.7 spl_4..7 (0), .3.8 ucodeSPL (INTEGERs), .4 hwID (the 64 raw
// bytes, untagged, as KDS writes it).
std::vector<RawExtension> AmdVcekExtensions(const std::string& product_name, uint8_t bl, uint8_t tee, uint8_t snp,
                                            uint8_t ucode, std::span<const uint8_t> hwid);
// `{"<key>":<body_text>,"signature":"<hex r||s>"}`, signing `body_text` exactly as given.
Result<std::string> SignedJson(const char* key, const std::string& body_text, EVP_PKEY* signer);
// DER of the SGX extension (OID 1.2.840.113741.1.13.1) with the structure of Intel's PCK certificates.
std::vector<uint8_t> SgxExtensionDer(const std::array<uint8_t, 16>& comp_svns, uint16_t pcesvn,
                                     std::span<const uint8_t> cpusvn, std::span<const uint8_t> ppid,
                                     std::span<const uint8_t> pce_id, std::span<const uint8_t> fmspc);

}  // namespace vouch::attest::sim
