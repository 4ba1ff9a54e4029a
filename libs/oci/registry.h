#pragma once

// A client of the OCI distribution API v2 (distribution-spec spec.md) over libcurl, for one
// repository: pulls a manifest (resolving multi-arch indexes) with its config and layers into a
// BlobStore, verifying every digest; pushes blobs (HEAD to skip existing ones, then a monolithic
// POST+PUT upload) and then the manifest.
//
// Authentication: on 401 the WWW-Authenticate challenge decides: Basic sends the credentials,
// Bearer fetches a token from the realm (with the credentials as Basic auth when there are any)
// for the challenge's scope, then the request is retried once. Credentials are never logged.
// Transport: HTTPS with peer verification (optionally a CA file); plain HTTP only for localhost,
// 127.0.0.1, [::1] and registries listed as insecure. Thread-compatible.

#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "oci/blob_store.h"
#include "oci/image.h"
#include "oci/transport.h"

namespace vouch::oci {

class RegistryClient {
 public:
  static Result<std::unique_ptr<RegistryClient>> Create(const ImageLocation& location, const TransportOptions& options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  Result<PulledImage> Pull(BlobStore& store);
  // Returns the manifest digest.
  Result<std::string> Push(const ImageToPush& image, BlobStore& store);

  // Parses `Bearer realm="...",service="...",scope="..."` (exposed for tests and the fuzzer).
  static std::map<std::string, std::string> ParseChallenge(std::string_view header, std::string* scheme);

 private:
  struct Request;
  struct Response {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
  };
  RegistryClient(ImageLocation location, TransportOptions options);
  Result<Response> Do(Request& request);
  Result<Response> Perform(Request& request);
  Status Authenticate(const Response& unauthorized, bool push);
  // The Status for an unexpected answer; `push`: while writing (anything but 401 is push_refused).
  Status ErrorFor(const Response& r, const std::string& what, bool push) const;
  Result<std::string> FetchManifest(const std::string& reference, const std::string& expected_digest,
                                    std::string* content_type);
  Status FetchBlob(const Descriptor& d, BlobStore& store);
  Status UploadBlob(const Descriptor& blob, BlobStore& store);

  ImageLocation location_;
  TransportOptions options_;
  std::string base_;           // "https://host:port/v2/<repo>"
  std::string authorization_;  // "Bearer ..." / "Basic ..."; secret
  void* curl_ = nullptr;       // CURL*, owned
};

}  // namespace vouch::oci
