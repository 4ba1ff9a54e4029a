#include "api/ca_adapter.h"

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "pki/ca.h"
#include "pki/certificate.h"
#include "pki/crl.h"
#include "pki/csr.h"
#include "pki/service.h"

namespace vouch::api {

Result<ZoneCaMaterial> CreateZoneCa(const std::string& zone_name, TimePoint now) {
  pki::RootCaOptions options;
  options.common_name = "vouch zone " + zone_name + " root CA";
  options.organization = "vouch";
  options.not_before = now - std::chrono::minutes(5);
  VOUCH_ASSIGN_OR_RETURN(pki::CaMaterial ca, pki::CreateRootCa(options));
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::PrivateKeyToDer(ca.key.get()));
  return ZoneCaMaterial{ca.cert_pem, std::move(key)};
}

Result<ZoneCaMaterial> CreateNodeCa(TimePoint now) {
  pki::RootCaOptions options;
  options.common_name = "vouch node CA";
  options.organization = "vouch";
  options.not_before = now - std::chrono::minutes(5);
  VOUCH_ASSIGN_OR_RETURN(pki::CaMaterial ca, pki::CreateRootCa(options));
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::PrivateKeyToDer(ca.key.get()));
  return ZoneCaMaterial{ca.cert_pem, std::move(key)};
}

Result<IssuedCert> IssueNodeCert(const pki::CaSigner& ca, const NodeCertRequest& req) {
  pki::IssueRequest issue;
  issue.profile = pki::CertificateProfile::kNodeClient;
  issue.spki_der = req.spki_der;
  issue.common_name = req.node_id;
  issue.uris = {req.spiffe_uri};
  issue.not_before = req.not_before;
  issue.validity = req.validity;
  VOUCH_ASSIGN_OR_RETURN(pki::IssuedCertificate cert, pki::IssueCertificate(ca, issue));
  return IssuedCert{cert.serial_hex, cert.pem, cert.not_before, cert.not_after};
}

Result<std::vector<uint8_t>> CsrKeyDigest(std::string_view csr_pem, std::vector<std::string>* dns_names) {
  VOUCH_ASSIGN_OR_RETURN(pki::Csr csr, pki::ParseCsr(csr_pem));
  if (dns_names != nullptr) *dns_names = csr.dns_names;
  auto d = crypto::Sha256(csr.spki_der);
  return std::vector<uint8_t>(d.begin(), d.end());
}

Result<std::shared_ptr<pki::CaSigner>> LoadZoneSigner(const std::string& cert_pem, const crypto::SecretBytes& key_der) {
  VOUCH_ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertFromPem(cert_pem));
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr key, crypto::PrivateKeyFromDer(key_der.span()));
  VOUCH_ASSIGN_OR_RETURN(auto signer, pki::CaSigner::Create(cert.get(), key.get()));
  return std::shared_ptr<pki::CaSigner>(std::move(signer));
}

Result<CaSummary> DescribeCa(const std::string& cert_pem) {
  VOUCH_ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertFromPem(cert_pem));
  VOUCH_ASSIGN_OR_RETURN(auto der, crypto::CertToDer(cert.get()));
  return CaSummary{crypto::NameToString(X509_get_subject_name(cert.get())), crypto::NotBefore(cert.get()),
                   crypto::NotAfter(cert.get()), HexEncode(crypto::Sha256(der))};
}

Result<CsrInfo> InspectCsr(std::string_view csr_pem) {
  VOUCH_ASSIGN_OR_RETURN(pki::Csr csr, pki::ParseCsr(csr_pem));
  return CsrInfo{csr.common_name, csr.dns_names, std::string(pki::PublicKeyTypeName(csr.key_type))};
}

Result<CheckedCsr> CheckCsr(std::string_view csr_pem) {
  VOUCH_ASSIGN_OR_RETURN(pki::Csr csr, pki::ParseCsr(csr_pem));
  CheckedCsr out;
  auto d = crypto::Sha256(csr.spki_der);
  out.key_digest.assign(d.begin(), d.end());
  out.dns_names = csr.dns_names;
  out.csr = std::make_shared<const pki::Csr>(std::move(csr));
  return out;
}

Result<IssuedCert> IssueWorkloadCert(const pki::CaSigner& ca, const WorkloadCertRequest& req) {
  pki::Csr parsed;
  if (!req.checked_csr) {
    VOUCH_ASSIGN_OR_RETURN(parsed, pki::ParseCsr(req.csr_pem));
  }
  const pki::Csr& csr = req.checked_csr ? *req.checked_csr : parsed;
  pki::IssueRequest issue = pki::IssueRequest::ForCsr(csr, pki::CertificateProfile::kWorkload);
  issue.common_name = req.common_name.size() <= 64 ? req.common_name : "";
  issue.dns_names = req.dns_names;
  issue.uris = {req.spiffe_uri};
  issue.not_before = req.not_before;
  issue.validity = std::chrono::duration_cast<std::chrono::seconds>(req.not_after - req.not_before);
  pki::Measurement m;
  m.platform = req.platform;
  VOUCH_ASSIGN_OR_RETURN(m.mrenclave, HexDecode(req.mrenclave_hex));
  VOUCH_ASSIGN_OR_RETURN(m.mrsigner, HexDecode(req.mrsigner_hex));
  m.isvprodid = static_cast<uint64_t>(req.isvprodid);
  m.isvsvn = static_cast<uint64_t>(req.isvsvn);
  issue.measurement = m;
  VOUCH_ASSIGN_OR_RETURN(pki::IssuedCertificate cert, pki::IssueCertificate(ca, issue));
  return IssuedCert{cert.serial_hex, cert.pem, cert.not_before, cert.not_after};
}

}  // namespace vouch::api

namespace vouch::api {

Result<std::vector<uint8_t>> BuildZoneCrl(const pki::CaSigner& ca, const std::vector<RevokedEntry>& revoked,
                                          int64_t crl_number, TimePoint this_update, TimePoint next_update) {
  std::vector<pki::RevokedCertificate> entries;
  entries.reserve(revoked.size());
  for (const auto& r : revoked) entries.push_back({r.serial_hex, r.revoked_at, pki::RevocationReason::kUnspecified});
  VOUCH_ASSIGN_OR_RETURN(pki::Crl crl, pki::BuildCrl(ca, entries, this_update, next_update,
                                                     static_cast<uint64_t>(crl_number)));
  return std::move(crl.der);
}

Result<ServiceTlsMaterial> CreateServiceTls(const std::vector<std::string>& dns_names,
                                            const std::vector<std::string>& ip_addresses, TimePoint now) {
  pki::ServiceCertificateOptions options;
  options.dns_names = dns_names;
  options.ip_addresses = ip_addresses;
  FixedClock clock(now);
  // The service CA key is not kept: it exists only to sign this one server certificate, and
  // discarding it means it can never be stolen. Re-run init (or pass --tls-cert) to rotate.
  VOUCH_ASSIGN_OR_RETURN(pki::ServiceCertificates certs, pki::CreateServiceCertificates(options, clock));
  return ServiceTlsMaterial{certs.ca_cert_pem, certs.server_chain_pem, std::move(certs.server_key_pem)};
}

}  // namespace vouch::api
