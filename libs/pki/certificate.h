#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pki/ca.h"
#include "pki/csr.h"

namespace vouch::pki {

// Certificate profiles (docs/formats/certificate-profile.md).
enum class CertificateProfile {
  kWorkload,    // attested workloads: EKU serverAuth+clientAuth, SANs DNS + SPIFFE URI, measurement
  kServer,      // vouchd's own HTTPS endpoint: EKU serverAuth, SANs DNS + IP addresses
  kNodeClient,  // node agents' mTLS identity: EKU clientAuth
};

// The build measurement carried by the non-critical extension OID kMeasurementExtensionOid.
struct Measurement {
  std::string platform;            // "sgx", "tdx", "sev-snp", "sim-sgx", ...
  std::vector<uint8_t> mrenclave;  // or the VM launch measurement
  std::vector<uint8_t> mrsigner;
  uint64_t isvprodid = 0;
  uint64_t isvsvn = 0;
  bool operator==(const Measurement&) const = default;
};

// 2.25.<UUID 93b4e2ad-6f1b-4317-a71f-5a571805a7a8 as an integer> (ITU-T X.667 UUID arc).
inline constexpr std::string_view kMeasurementExtensionOid = "2.25.196335726380347236457412149798804760488";

// DER of the extension value: SEQUENCE { platform UTF8String, mrenclave OCTET STRING,
// mrsigner OCTET STRING, isvprodid INTEGER, isvsvn INTEGER }.
std::vector<uint8_t> EncodeMeasurement(const Measurement& m);
Result<Measurement> DecodeMeasurement(std::span<const uint8_t> der);
// The measurement extension of a certificate; kNotFound if it has none.
Result<Measurement> ReadMeasurementExtension(X509* cert);

// "spiffe://<zone>/app/<app>".
std::string SpiffeId(std::string_view zone, std::string_view app);

struct IssueRequest {
  CertificateProfile profile = CertificateProfile::kWorkload;
  // The subject's SubjectPublicKeyInfo DER (Csr::spki_der, or crypto::PublicKeyToDer of a key
  // the caller made). It is copied into the certificate as bytes; its algorithm must be EC
  // P-256/P-384 or RSA. It is not re-validated here: pass keys from ParseCsr or your own.
  std::vector<uint8_t> spki_der;
  // Subject CN, at most 64 characters. Empty: the first DNS name (then the first URI).
  std::string common_name;
  std::vector<std::string> dns_names;     // LDH names, a leading "*." label allowed
  std::vector<std::string> uris;          // e.g. SpiffeId(zone, app)
  std::vector<std::string> ip_addresses;  // IPv4/IPv6 text
  std::optional<Measurement> measurement;  // required for kWorkload
  std::optional<TimePoint> not_before;     // nullopt: now minus one minute (clock skew)
  std::chrono::seconds validity = std::chrono::hours(24);

  // Copies the key from a parsed CSR (its requested names are NOT copied: the caller decides
  // which names the subject may have).
  static IssueRequest ForCsr(const Csr& csr, CertificateProfile profile);
};

struct IssuedCertificate {
  std::string pem;
  std::vector<uint8_t> der;
  std::string serial_hex;  // 32 lower-case hex digits
  TimePoint not_before;
  TimePoint not_after;     // clamped to the CA's notAfter
};

// Builds and signs an X.509 v3 end-entity certificate under `ca`. The subject public key is
// copied as bytes from the request (no key decoding). Fails with kInvalidArgument for bad
// names (invalid_dns_name, invalid_uri, invalid_ip_address, invalid_common_name), a missing
// measurement (measurement_required), a malformed key (invalid_key); kFailedPrecondition
// (ca_expired) when the CA's validity ends before the certificate's would start.
// Thread-safe: any number of threads may issue with one CaSigner.
Result<IssuedCertificate> IssueCertificate(const CaSigner& ca, const IssueRequest& request,
                                           const Clock& clock = SystemClock::Get());

}  // namespace vouch::pki
