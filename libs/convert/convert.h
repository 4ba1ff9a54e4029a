#pragma once

// The converter: reads an image (oci/transport.h), computes its overlay file tree (rootfs.h),
// writes the enclave manifest of every integrity-protected file (manifest/manifest.h), signs it,
// adds one layer holding vouch-rte, the manifest, its signature and the signer's public key, sets
// the entrypoint to the runtime (keeping env, workdir, user, ports, labels), and writes the new
// image. Nothing is written to the output until the input was read and checked completely.
// Thread-compatible; blocking.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "manifest/manifest.h"
#include "oci/tar.h"
#include "oci/transport.h"

namespace vouch::convert {

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

// Default directories, as the commercial converters have them: everything is protected except
// the files container runtimes write and the scratch trees.
std::vector<std::string> DefaultRoDirs();
std::vector<std::string> DefaultRwDirs();

}  // namespace vouch::convert
