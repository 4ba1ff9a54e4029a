#pragma once

// The manager's narrow view of the PKI library: everything the manager needs from a CA, in
// the manager's terms. Keeps handler code independent of PKI details.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::pki {
class CaSigner;
struct Csr;
}

namespace vouch::api {

struct ZoneCaMaterial {
  std::string cert_pem;
  crypto::SecretBytes key_der;  // PKCS#8, to be sealed at rest
};

Result<ZoneCaMaterial> CreateZoneCa(const std::string& zone_name, TimePoint now);
Result<std::shared_ptr<pki::CaSigner>> LoadZoneSigner(const std::string& cert_pem, const crypto::SecretBytes& key_der);

struct CaSummary {
  std::string subject;
  TimePoint not_before;
  TimePoint not_after;
  std::string sha256;  // of the DER
};
Result<CaSummary> DescribeCa(const std::string& cert_pem);

struct CsrInfo {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::string key_type;
};
Result<CsrInfo> InspectCsr(std::string_view csr_pem);

// A CSR parsed and fully validated once (structure, key type, self-signature), so that issuing
// from it does not parse and verify it again.
struct CheckedCsr {
  std::shared_ptr<const pki::Csr> csr;
  std::vector<uint8_t> key_digest;     // SHA-256 of its SubjectPublicKeyInfo
  std::vector<std::string> dns_names;  // requested DNS names
};
Result<CheckedCsr> CheckCsr(std::string_view csr_pem);

struct WorkloadCertRequest {
  std::string csr_pem;
  std::shared_ptr<const pki::Csr> checked_csr;  // if set: used instead of parsing csr_pem again
  std::string common_name;
  std::vector<std::string> dns_names;
  std::string spiffe_uri;
  TimePoint not_before;
  TimePoint not_after;
  // Measurement extension.
  std::string platform = "sgx";
  std::string mrenclave_hex;
  std::string mrsigner_hex;
  int64_t isvprodid = 0;
  int64_t isvsvn = 0;
};

struct IssuedCert {
  std::string serial_hex;
  std::string pem;
  TimePoint not_before;
  TimePoint not_after;
};
Result<IssuedCert> IssueWorkloadCert(const pki::CaSigner& ca, const WorkloadCertRequest& req);

// The installation's node CA: signs node agents' mTLS client certificates (docs/agent.md).
Result<ZoneCaMaterial> CreateNodeCa(TimePoint now);
struct NodeCertRequest {
  std::vector<uint8_t> spki_der;
  std::string node_id;
  std::string spiffe_uri;  // spiffe://<zone>/node/<id>
  TimePoint not_before;
  std::chrono::seconds validity{0};
};
Result<IssuedCert> IssueNodeCert(const pki::CaSigner& ca, const NodeCertRequest& req);
// SHA-256 of a CSR's SubjectPublicKeyInfo, after full CSR validation (signature, key type).
Result<std::vector<uint8_t>> CsrKeyDigest(std::string_view csr_pem, std::vector<std::string>* dns_names);

struct RevokedEntry {
  std::string serial_hex;
  TimePoint revoked_at;
};
Result<std::vector<uint8_t>> BuildZoneCrl(const pki::CaSigner& ca, const std::vector<RevokedEntry>& revoked,
                                          int64_t crl_number, TimePoint this_update, TimePoint next_update);

}  // namespace vouch::api

namespace vouch::api {

// The manager's own HTTPS identity: a "vouch service CA" and a server certificate for
// `dns_names` and `ip_addresses`, signed by it.
struct ServiceTlsMaterial {
  std::string ca_cert_pem;
  std::string server_chain_pem;     // server certificate then the service CA
  crypto::SecretBytes server_key_pem;
};
Result<ServiceTlsMaterial> CreateServiceTls(const std::vector<std::string>& dns_names,
                                            const std::vector<std::string>& ip_addresses, TimePoint now);

}  // namespace vouch::api
