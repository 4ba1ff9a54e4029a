#pragma once

// CredentialStore: where vouch-rte writes the workload's key, certificate chain and zone CA
// (docs/convert.md "Credentials"). Each directory holding one of the manifest's credential paths
// is opened component by component from the root with O_DIRECTORY|O_NOFOLLOW (missing ones made,
// the credentials directory itself 0700), so a symlink anywhere on the way is a refusal, never
// followed. A directory that already exists must be owned by this user and hold only regular
// files with the credential names (a previous start of the same container), which are removed:
// anything else in it is a refusal. Files are written into the open directory handle with
// O_CREAT|O_EXCL|O_NOFOLLOW under a temporary name and renamed over the final name within the
// same handle (renewal too), so a reader sees the old or the new file, never a partial one.
// Thread-compatible.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "manifest/manifest.h"

namespace vouch::rte {

inline constexpr std::string_view kCredentialsPathUnsafe = "credentials_path_unsafe";

class CredentialStore {
 public:
  // `root`: where the image's files are ("/" in a container). On a refusal `refused_path`
  // (optional) gets the path it names.
  static Result<std::unique_ptr<CredentialStore>> Open(const manifest::CertificateRequest& request,
                                                       const std::string& root = "/",
                                                       std::string* refused_path = nullptr);
  ~CredentialStore();
  CredentialStore(const CredentialStore&) = delete;
  CredentialStore& operator=(const CredentialStore&) = delete;

  // `path` is one of the request's key, cert or CA paths.
  Status Write(const std::string& path, std::string_view data, unsigned mode);

 private:
  CredentialStore() = default;
  static Result<std::unique_ptr<CredentialStore>> OpenImpl(const manifest::CertificateRequest& request,
                                                           const std::string& root);
  std::map<std::string, int> dirs_;  // absolute directory -> open descriptor
};

}  // namespace vouch::rte
