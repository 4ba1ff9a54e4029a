#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::pki {

struct ServiceCertificateOptions {
  std::string ca_common_name = "vouch service CA";
  std::string organization = "vouch";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  std::chrono::seconds ca_validity = std::chrono::hours(24 * (365 * 5 + 1));
  std::chrono::seconds server_validity = std::chrono::hours(24 * 397);
};

// vouchd's own HTTPS identity: a dedicated "vouch service CA" (EC P-256, unrelated to any zone
// CA) and a server certificate (profile kServer) for the given names. `vouchd init` writes
// ca_cert_pem to DIR/service-ca.pem. The keys are PKCS#8 PEM; keep them secret.
struct ServiceCertificates {
  std::string ca_cert_pem;
  crypto::SecretBytes ca_key_pem;
  std::string server_cert_pem;
  crypto::SecretBytes server_key_pem;
  std::string server_chain_pem;  // server certificate followed by the CA certificate
};

Result<ServiceCertificates> CreateServiceCertificates(const ServiceCertificateOptions& options = {},
                                                      const Clock& clock = SystemClock::Get());

}  // namespace vouch::pki
