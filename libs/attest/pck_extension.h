#pragma once

// The Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1, ATTESTATION-FORMATS.md
// §3): a SEQUENCE of (OID, value) pairs carrying PPID, the TCB (16 component SVNs, PCESVN,
// CPUSVN), PCE-ID, FMSPC, SGX type and, for platform certificates, platform instance id and
// configuration. Decoded with OpenSSL's ASN.1 parser (hence in attest, not evidence).
//
// Thread-safe (no state); never throws. Failures are InvalidArgument with reason
// "malformed_pck_extension" (or "missing_pck_extension" when the certificate has none).

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include <openssl/x509.h>

#include "base/result.h"

namespace vouch::attest {

inline constexpr char kSgxExtensionOid[] = "1.2.840.113741.1.13.1";

enum class SgxType : uint8_t { kStandard = 0, kScalable = 1, kScalableWithIntegrity = 2 };

struct PckSgxExtension {
  std::array<uint8_t, 16> ppid{};
  std::array<uint8_t, 16> comp_svns{};  // SGX TCB comp 01..16 SVN
  uint16_t pcesvn = 0;
  std::array<uint8_t, 16> cpusvn{};
  std::array<uint8_t, 2> pce_id{};
  std::array<uint8_t, 6> fmspc{};
  SgxType sgx_type = SgxType::kStandard;
  std::optional<std::array<uint8_t, 16>> platform_instance_id;
  std::optional<bool> dynamic_platform;
  std::optional<bool> cached_keys;
  std::optional<bool> smt_enabled;
};

// Decodes the DER content of the extension (the bytes inside its OCTET STRING).
Result<PckSgxExtension> ParsePckSgxExtensionDer(std::span<const uint8_t> der);
// Finds the extension in `cert` and decodes it.
Result<PckSgxExtension> ParsePckSgxExtension(X509* cert);

}  // namespace vouch::attest
