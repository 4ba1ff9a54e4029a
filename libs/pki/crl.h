#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pki/ca.h"

namespace vouch::pki {

// CRLReason (RFC 5280 §5.3.1). kUnspecified is encoded by omitting the reasonCode extension.
enum class RevocationReason {
  kUnspecified = 0,
  kKeyCompromise = 1,
  kCaCompromise = 2,
  kAffiliationChanged = 3,
  kSuperseded = 4,
  kCessationOfOperation = 5,
  kCertificateHold = 6,
  kRemoveFromCrl = 8,
  kPrivilegeWithdrawn = 9,
  kAaCompromise = 10,
};

struct RevokedCertificate {
  std::string serial_hex;  // as IssuedCertificate::serial_hex (any case, no "0x")
  TimePoint revoked_at;
  RevocationReason reason = RevocationReason::kUnspecified;
};

struct Crl {
  std::vector<uint8_t> der;
  std::string pem;
};

// A v2 CRL signed by `ca`: issuer = the CA subject, thisUpdate/nextUpdate, the revoked
// entries sorted by serial (each with a reasonCode unless unspecified), and the
// authorityKeyIdentifier and cRLNumber extensions. Fails with kInvalidArgument
// (invalid_serial) for a serial that is not hex, and when next_update <= this_update.
// Thread-safe.
Result<Crl> BuildCrl(const CaSigner& ca, std::span<const RevokedCertificate> revoked, TimePoint this_update,
                     TimePoint next_update, uint64_t crl_number);

}  // namespace vouch::pki
