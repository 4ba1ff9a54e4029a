#include "pki/service.h"

#include "crypto/keys.h"
#include "pki/ca.h"
#include "pki/certificate.h"

namespace vouch::pki {

Result<ServiceCertificates> CreateServiceCertificates(const ServiceCertificateOptions& options, const Clock& clock) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) {
    return InvalidArgument("the service certificate needs at least one DNS name or IP address");
  }
  RootCaOptions ca_options;
  ca_options.common_name = options.ca_common_name;
  ca_options.organization = options.organization;
  ca_options.validity = options.ca_validity;
  VOUCH_ASSIGN_OR_RETURN(CaMaterial ca, CreateRootCa(ca_options, clock));
  VOUCH_ASSIGN_OR_RETURN(std::unique_ptr<CaSigner> signer, CaSigner::Create(ca));

  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr server_key, crypto::GenerateP256());
  IssueRequest req;
  req.profile = CertificateProfile::kServer;
  VOUCH_ASSIGN_OR_RETURN(req.spki_der, crypto::PublicKeyToDer(server_key.get()));
  req.common_name = !options.dns_names.empty() ? options.dns_names.front() : options.ip_addresses.front();
  req.dns_names = options.dns_names;
  req.ip_addresses = options.ip_addresses;
  req.validity = options.server_validity;
  VOUCH_ASSIGN_OR_RETURN(IssuedCertificate server, IssueCertificate(*signer, req, clock));

  ServiceCertificates out;
  out.ca_cert_pem = ca.cert_pem;
  VOUCH_ASSIGN_OR_RETURN(out.ca_key_pem, crypto::PrivateKeyToPem(ca.key.get()));
  VOUCH_ASSIGN_OR_RETURN(out.server_key_pem, crypto::PrivateKeyToPem(server_key.get()));
  out.server_chain_pem = server.pem + ca.cert_pem;
  out.server_cert_pem = std::move(server.pem);
  return out;
}

}  // namespace vouch::pki
