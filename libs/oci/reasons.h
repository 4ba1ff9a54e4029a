#pragma once

// Stable reason codes of the failures a user of the converter hits, decided in this library
// (Status::reason()). vouchd's conversion jobs report them as the job's error code
// (docs/convert.md "Server-side conversion", "Errors"); never change a value.

#include <string_view>

namespace vouch::oci {

// The registry (or its token service) could not be reached, or answered a read with 5xx.
inline constexpr std::string_view kRegistryUnreachable = "registry_unreachable";
// The registry or its token service refused the credentials (or asked for some and had none).
inline constexpr std::string_view kRegistryAuthFailed = "registry_auth_failed";
// No such repository, tag or digest (or no such tag in an OCI layout).
inline constexpr std::string_view kImageNotFound = "image_not_found";
// A multi-arch index without the requested platform.
inline constexpr std::string_view kPlatformNotFound = "platform_not_found";
// The output registry refused a blob upload or the manifest (other than for credentials).
inline constexpr std::string_view kPushRefused = "push_refused";
// The scratch file system is full (ENOSPC, EDQUOT) while blobs were written.
inline constexpr std::string_view kScratchExhausted = "scratch_exhausted";
// TransferHooks::cancelled said stop.
inline constexpr std::string_view kCancelled = "cancelled";

}  // namespace vouch::oci
