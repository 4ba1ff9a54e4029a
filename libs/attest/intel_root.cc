#include "attest/intel_root.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "crypto/digest.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

constexpr char kIntelSgxRootCaPem[] = R"(-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
)";

struct Root {
  crypto::X509Ptr cert;
  std::vector<uint8_t> der;
};

const Root& Instance() {
  static const Root root = [] {
    Root r;
    auto cert = crypto::CertFromPem(kIntelSgxRootCaPem);
    if (!cert.ok()) {
      std::fprintf(stderr, "vouch: embedded Intel SGX Root CA does not parse\n");
      std::abort();
    }
    auto der = crypto::CertToDer(cert->get());
    if (!der.ok() || crypto::Sha256(*der) != kIntelSgxRootCaSha256) {
      std::fprintf(stderr, "vouch: embedded Intel SGX Root CA fingerprint mismatch\n");
      std::abort();
    }
    r.cert = std::move(*cert);
    r.der = std::move(*der);
    return r;
  }();
  return root;
}

}  // namespace

std::string_view IntelSgxRootCaPem() { return kIntelSgxRootCaPem; }
X509* IntelSgxRootCa() { return Instance().cert.get(); }
std::span<const uint8_t> IntelSgxRootCaDer() { return Instance().der; }

}  // namespace vouch::attest
