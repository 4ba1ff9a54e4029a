// libFuzzer target: the PCK certificate SGX extension parser (OpenSSL ASN.1 underneath), fed both
// the raw extension DER and whole DER certificates.
#include <cstddef>
#include <cstdint>
#include <span>

#include <openssl/x509.h>

#include "attest/pck_extension.h"
#include "crypto/ossl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ext = vouch::attest::ParsePckSgxExtensionDer(std::span<const uint8_t>(data, size));
  if (ext.ok() && static_cast<int>(ext->sgx_type) > 2) __builtin_trap();
  const unsigned char* p = data;
  vouch::crypto::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(size)));
  if (cert) (void)vouch::attest::ParsePckSgxExtension(cert.get());
  vouch::crypto::DrainOpensslErrors();
  return 0;
}
