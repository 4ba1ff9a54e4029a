#pragma once

// The PKI library's stable reason codes (Status::reason() of its errors: bad CSRs, names, CA
// material). The text is a contract; the Status kind is given beside each.

#include <string_view>

namespace vouch::pki {

inline constexpr std::string_view kCaKeyMismatch = "ca_key_mismatch";  // InvalidArgument
inline constexpr std::string_view kCaKeyTypeNotSupported = "ca_key_type_not_supported";  // InvalidArgument
inline constexpr std::string_view kCsrTooLarge = "csr_too_large";  // InvalidArgument
inline constexpr std::string_view kInvalidArgument = "invalid_argument";  // InvalidArgument
inline constexpr std::string_view kInvalidCommonName = "invalid_common_name";  // InvalidArgument
inline constexpr std::string_view kInvalidDnsName = "invalid_dns_name";  // InvalidArgument
inline constexpr std::string_view kInvalidIpAddress = "invalid_ip_address";  // InvalidArgument
inline constexpr std::string_view kInvalidKey = "invalid_key";  // InvalidArgument
inline constexpr std::string_view kInvalidMeasurementExtension = "invalid_measurement_extension";  // InvalidArgument
inline constexpr std::string_view kInvalidSerial = "invalid_serial";  // InvalidArgument
inline constexpr std::string_view kInvalidUri = "invalid_uri";  // InvalidArgument
inline constexpr std::string_view kMeasurementRequired = "measurement_required";  // InvalidArgument
inline constexpr std::string_view kNotACa = "not_a_ca";  // InvalidArgument
inline constexpr std::string_view kCaExpired = "ca_expired";  // FailedPrecondition

}  // namespace vouch::pki
