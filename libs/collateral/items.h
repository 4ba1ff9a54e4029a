#pragma once

// Verification of one collateral item before it is stored (docs/collateral.md, "What is verified
// before storing"). Internal to libs/collateral. Pure: no I/O, no store; thread-safe.

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/ossl.h"

namespace vouch::collateral::internal {

struct Candidate {
  std::string kind;
  std::string key;               // may be "" when the body names it (TCB Info FMSPC, PCK CA type)
  std::string body;              // bytes as served
  std::string issuer_chain_pem;  // signer first, root last ("" where the kind has none)
};

struct CheckContext {
  bool allow_sim = true;
  // Sim roots known (from stored chains or the same folder): candidates for a root CA CRL.
  std::vector<X509*> sim_roots;
  // For amd_vcek / amd_crl: the product's ASK and ARK when not AMD's built-in ones (a sim chain).
  X509* amd_ask = nullptr;
  X509* amd_ark = nullptr;
};

struct Checked {
  std::string key;  // normalised
  std::string root;  // "intel", "amd", "sim:<16 hex>"
  bool sim = false;
  TimePoint issue_date;
  TimePoint next_update;
  std::optional<int64_t> tcb_evaluation_data_number;
  std::string content_type;
  std::string issuer_chain_pem;  // as it will be stored
};

// Verifies `c`: parse, issuer chain to a trusted root, signature, item identity (kind, key).
// Time is not checked (expired items are stored as such). Errors carry the reasons of service.h
// (kMalformed, kBadIssuerChain, kBadSignature, kWrongItem, kSimNotAllowed).
Result<Checked> CheckCandidate(const Candidate& c, const CheckContext& ctx);

// "intel" (the pinned Intel SGX Root CA), "amd" (a built-in ARK), "sim:<16 hex of SHA-256(DER)>"
// for a sim root, "other:<16 hex>" otherwise.
std::string RootLabel(X509* root);

// The PEM text of certificates.
std::string ChainPem(const std::vector<X509*>& certs);

}  // namespace vouch::collateral::internal

namespace vouch::collateral::internal {

// What a VCEK says about itself (AMD KDS extensions, OID arc 1.3.6.1.4.1.3704.1).
struct VcekFacts {
  std::string product;            // "Milan", "Genoa", "Turin" (the productName before '-')
  std::vector<uint8_t> hwid;      // 64 bytes (Turin: 8)
  uint8_t bl = 0, tee = 0, snp = 0, ucode = 0;
  std::optional<uint8_t> fmc;     // Turin
  uint64_t TcbRaw() const;        // TCB_VERSION in the product's layout
};
Result<VcekFacts> ReadVcekFacts(X509* cert);

}  // namespace vouch::collateral::internal
