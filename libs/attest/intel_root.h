#pragma once

// The production DCAP trust anchor: the Intel SGX Root CA (ATTESTATION-FORMATS.md §7), compiled
// in. It is pinned by its exact DER (SHA-256 44A0196B...74D3), never by its name: Intel's QVL
// sample data ships a test root with the same subject and another key.
//
// Parsed once on first use (thread-safe); the returned certificate is immutable and lives for
// the whole process.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include <openssl/x509.h>

namespace vouch::attest {

// SHA-256 of the DER of the Intel SGX Root CA.
inline constexpr std::array<uint8_t, 32> kIntelSgxRootCaSha256 = {
    0x44, 0xA0, 0x19, 0x6B, 0x2B, 0x99, 0xF8, 0x89, 0xB8, 0xE1, 0x49, 0xE9, 0x5B, 0x80, 0x7A, 0x35,
    0x0E, 0x74, 0x24, 0x96, 0x43, 0x99, 0xE8, 0x85, 0xA7, 0xCB, 0xB8, 0xCC, 0xFA, 0xB6, 0x74, 0xD3};

// The PEM text compiled into vouch.
std::string_view IntelSgxRootCaPem();
// The parsed root (never null: the embedded PEM and its fingerprint are checked on first use,
// and the process aborts if they were ever corrupted, since no verification could be trusted).
X509* IntelSgxRootCa();
// The root's DER bytes (owned by the process-wide instance).
std::span<const uint8_t> IntelSgxRootCaDer();

}  // namespace vouch::attest
