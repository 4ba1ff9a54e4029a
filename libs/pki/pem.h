#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace vouch::pki {

// "-----BEGIN <label>-----\n<base64, 64 columns>\n-----END <label>-----\n" (RFC 7468), e.g.
// DerToPem("X509 CRL", der). The one PEM encoder of DER that vouch builds itself.
std::string DerToPem(std::string_view label, std::span<const uint8_t> der);

}  // namespace vouch::pki
