#include "crypto/x509_ext.h"

#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace vouch::crypto {

std::optional<std::span<const uint8_t>> ExtensionValue(X509* cert, std::string_view oid) {
  const int n = cert == nullptr ? 0 : X509_get_ext_count(cert);
  for (int i = 0; i < n; ++i) {
    X509_EXTENSION* ext = X509_get_ext(cert, i);
    char buf[128];
    int len = OBJ_obj2txt(buf, sizeof(buf), X509_EXTENSION_get_object(ext), 1);
    if (len <= 0 || static_cast<size_t>(len) >= sizeof(buf)) continue;
    if (oid != std::string_view(buf, static_cast<size_t>(len))) continue;
    ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
    return std::span<const uint8_t>(ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data)));
  }
  return std::nullopt;
}

}  // namespace vouch::crypto
