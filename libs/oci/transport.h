#pragma once

// Reading an image from, and writing one to, the three places the converter knows (image.h
// ImageLocation): an OCI registry (distribution API v2 over libcurl, see registry.h), an OCI image
// layout directory, and a `docker save` archive. Every blob read is verified against its digest
// and size before it is used; a multi-arch index is resolved to one platform.
//
// Writing happens only after everything was read and checked, so a hostile input never leads to a
// partial push. Functions are thread-compatible (one call at a time per BlobStore).

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "oci/blob_store.h"
#include "oci/image.h"

namespace vouch::oci {

struct Credentials {
  std::string username;
  std::string password;  // secret: never logged
  bool empty() const { return username.empty() && password.empty(); }
};

// Progress and cancellation of one pull or push (vouchd's conversion jobs; docs/convert.md
// "Server-side conversion"). Every hook is optional and must be cheap: on_bytes runs for every
// chunk a transfer moves (about every 16 KiB to 1 MiB).
struct TransferHooks {
  // Pull: the resolved image manifest, before any of its blobs is read.
  std::function<void(const ImageManifest&)> on_manifest;
  // A layer or config blob is complete (read and verified, or written, or found present).
  std::function<void(const Descriptor&)> on_blob;
  // Blob content moved (downloaded, uploaded, copied or hashed in place), in bytes since the last call.
  std::function<void(uint64_t bytes)> on_bytes;
  // Polled between blobs and during transfers; true stops the pull or push with kAborted
  // "cancelled" (oci/reasons.h kCancelled).
  std::function<bool()> cancelled;
  bool Cancelled() const { return cancelled && cancelled(); }
  void Bytes(uint64_t n) const {
    if (on_bytes && n != 0) on_bytes(n);
  }
};

// kAborted "cancelled".
Status CancelledStatus();

struct TransportOptions {
  Platform platform;                          // for multi-arch indexes; default linux/amd64
  Credentials credentials;                    // from flags; else from `auth_file`
  std::string auth_file;                      // Docker config.json ("auths": {host: {auth}}); empty: none
  std::vector<std::string> insecure_registries;  // host[:port] spoken to over plain HTTP
  std::string ca_file;                        // extra trust for HTTPS registries; empty: system store
  uint64_t max_blob_bytes = 64ull << 30;
  TransferHooks hooks;
};

// A fully read image: metadata in memory, config and layers in the BlobStore (verified).
struct PulledImage {
  ImageManifest manifest;
  std::string manifest_bytes;
  std::string manifest_digest;
  std::string config_bytes;
};

Result<PulledImage> PullImage(const ImageLocation& location, const TransportOptions& options, BlobStore& store);

// What to write: a manifest whose config and layers are all in `store`.
struct ImageToPush {
  std::string manifest_bytes;
  std::string manifest_media_type;
  ImageManifest manifest;
};

// Returns the digest of the written manifest.
Result<std::string> PushImage(const ImageLocation& location, const ImageToPush& image, const TransportOptions& options,
                              BlobStore& store);

// Credentials for `registry` from a Docker config.json ("auths" -> "auth" base64 user:password,
// or "username"/"password"); empty credentials when the file has none for it.
Result<Credentials> CredentialsFromAuthFile(const std::string& path, const std::string& registry);

// Internal transports (exposed for tests).
Result<PulledImage> PullOciLayout(const ImageLocation& location, const TransportOptions& options, BlobStore& store);
Result<std::string> PushOciLayout(const ImageLocation& location, const ImageToPush& image, BlobStore& store,
                                  const TransferHooks& hooks = {});
Result<PulledImage> PullDockerArchive(const ImageLocation& location, BlobStore& store);
Result<std::string> PushDockerArchive(const ImageLocation& location, const ImageToPush& image, BlobStore& store);

// Resolves a manifest-or-index document to an image manifest for `platform`; `fetch` returns the
// bytes of a nested manifest by descriptor (already verified).
Result<PulledImage> ResolveManifest(std::string bytes, std::string media_type_hint, const Platform& platform,
                                    const std::function<Result<std::string>(const Descriptor&)>& fetch);

}  // namespace vouch::oci
