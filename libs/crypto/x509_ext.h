#pragma once
// Reading X.509 extensions by OID (AMD's VCEK/VLEK extensions, docs/formats).

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "crypto/ossl.h"

namespace vouch::crypto {

// The value (the bytes inside the extnValue OCTET STRING) of the first extension whose OID, in
// dotted form, is `oid` ("1.3.6.1.4.1.3704.1.4"); nullopt if there is none. The span points into
// `cert` and lives as long as it.
std::optional<std::span<const uint8_t>> ExtensionValue(X509* cert, std::string_view oid);

}  // namespace vouch::crypto
