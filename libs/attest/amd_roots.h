#pragma once

// The AMD SEV-SNP trust anchors built into vouch: for each product line (Milan, Genoa, Turin)
// the self-signed ARK (AMD Root Key), the ASK (signs VCEKs) and the ASVK (signs VLEKs), as AMD
// KDS serves them (PEM text compiled in from shared/testdata/attestation/roots/amd).
//
// The ARKs are the pins: a chain is trusted only if its root is byte-for-byte (DER) one of
// these ARKs; names are never compared. Parsed once on first use (thread-safe); the returned
// objects are immutable and live for the whole process.

#include <span>
#include <string_view>
#include <vector>

#include <openssl/x509.h>

#include "evidence/snp_report.h"

namespace vouch::attest {

// Which intermediate signs a leaf: the ASK signs VCEKs, the ASVK signs VLEKs.
enum class AmdLeafKind { kVcek, kVlek };
std::string_view AmdLeafKindName(AmdLeafKind kind);  // "vcek", "vlek"

struct AmdRootSet {
  evidence::SnpProduct product = evidence::SnpProduct::kUnknown;
  X509* ark = nullptr;   // owned by the registry, never null in BuiltinAmdRoots()
  X509* ask = nullptr;   // VCEK intermediate (CN SEV-<product>)
  X509* asvk = nullptr;  // VLEK intermediate (CN SEV-VLEK-<product>)
};

// Milan, Genoa, Turin, in that order. Empty only if the embedded PEM failed to parse, which
// amd_roots_test.cc rules out.
const std::vector<AmdRootSet>& BuiltinAmdRoots();

// The built-in set whose ARK has exactly the DER of `ark`, or nullptr.
const AmdRootSet* FindPinnedArk(X509* ark);
// The set of `roots` whose ARK has exactly the DER of `ark`, or nullptr.
const AmdRootSet* FindPinnedArk(X509* ark, std::span<const AmdRootSet> roots);

// The embedded PEM bundle (intermediate then ARK) for a product and leaf kind; "" for kUnknown.
std::string_view BuiltinAmdCertChainPem(evidence::SnpProduct product, AmdLeafKind kind);

namespace internal {
extern const char kAmdMilanVcekChainPem[];
extern const char kAmdGenoaVcekChainPem[];
extern const char kAmdTurinVcekChainPem[];
extern const char kAmdMilanVlekChainPem[];
extern const char kAmdGenoaVlekChainPem[];
extern const char kAmdTurinVlekChainPem[];
}  // namespace internal

}  // namespace vouch::attest
