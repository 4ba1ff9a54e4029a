#pragma once

// The converter: reads an image (oci/transport.h), computes its overlay file tree (rootfs.h),
// writes the enclave manifest of every integrity-protected file (manifest/manifest.h), signs it,
// adds one layer holding vouch-rte, the manifest, its signature and the signer's public key, sets
// the entrypoint to the runtime (keeping env, workdir, user, ports, labels), and writes the new
// image. Nothing is written to the output until the input was read and checked completely.
// Thread-compatible; blocking.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "manifest/manifest.h"
#include "oci/tar.h"
#include "oci/transport.h"

namespace vouch::convert {

// Where a conversion is (vouchd's jobs show it live): the phase, then layers and bytes done of
// the total known so far. pulling: layer blobs read and verified (bytes: compressed, as moved);
// converting: layers applied to the file tree (bytes: compressed input consumed); pushing: blobs
// written, the new layer and config included (bytes: as moved, present blobs counted whole).
struct Progress {
  std::string_view phase;  // "pulling", "converting", "pushing"
  uint64_t layers_done = 0;
  uint64_t layers_total = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
};
inline constexpr std::string_view kPhasePulling = "pulling";
inline constexpr std::string_view kPhaseConverting = "converting";
inline constexpr std::string_view kPhasePushing = "pushing";

// Cooperative cancellation: Cancel() from any thread; the conversion polls it between blobs and
// layers and inside long copies (oci::TransferHooks, oci::TarLimits::on_progress) and then fails
// with kAborted "cancelled" (oci::kCancelled), having written nothing to the output when it
// stopped before the push.
class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct ConvertOptions {
  std::string input;   // image location (oci/image.h ImageLocation::Parse)
  std::string output;
  oci::TransportOptions input_transport;
  oci::TransportOptions output_transport;
  oci::TarLimits limits;
  std::string work_dir;       // scratch space for blobs; must exist
  std::string runtime_path;   // the vouch-rte binary to embed
  EVP_PKEY* signing_key = nullptr;  // EC P-256 or RSA 3072; not owned

  // Manifest contents. Unset optionals take the image's own values.
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> args;
  std::vector<std::string> env;  // NAME=value, added to / overriding the image's Env
  manifest::EnclaveManifest base;  // every other manifest field (files, entrypoint, args, env ignored)

  // Optional. Called on every phase change and as bytes move: often (every blob chunk), so it
  // must be cheap (vouchd rate-limits what it writes). Runs on the converting thread.
  std::function<void(const Progress&)> on_progress;
  // Optional; not owned. Also stops transfers of the transports' own hooks.
  const CancelToken* cancel = nullptr;
};

struct ConvertResult {
  std::string output;          // the output location as written
  std::string digest;          // manifest digest of the output image
  std::string input_digest;    // manifest digest of the input image
  std::string mrenclave;       // hex
  std::string mrsigner;        // hex
  uint32_t isvprodid = 0;
  uint32_t isvsvn = 0;
  bool debug = false;
  size_t protected_files = 0;  // manifest entries: files, symlinks and directories
  std::string exec_path;       // the program vouch-rte executes (resolved entrypoint)
  uint64_t layer_bytes = 0;    // compressed input layer bytes
  uint64_t content_bytes = 0;  // uncompressed file content hashed
  std::string manifest;        // canonical manifest bytes
};

Result<ConvertResult> Convert(const ConvertOptions& options);

// The stable code of a conversion failure for users (vouchd's job error codes, docs/convert.md
// "Errors"): the oci reason where it is one of oci/reasons.h (registry_unreachable,
// registry_auth_failed, image_not_found, platform_not_found, push_refused, scratch_exhausted,
// cancelled); "image_rejected" for a hostile, oversized, corrupt or unusable image (and options
// the image does not allow, e.g. an entrypoint it lacks); "conversion_failed" otherwise.
inline constexpr std::string_view kImageRejected = "image_rejected";
inline constexpr std::string_view kConversionFailed = "conversion_failed";
std::string_view FailureCode(const Status& status);

// Default directories, as the commercial converters have them: everything is protected except
// the files container runtimes write and the scratch trees.
std::vector<std::string> DefaultRoDirs();
std::vector<std::string> DefaultRwDirs();

}  // namespace vouch::convert
