#pragma once

// What vouch-rte checks before it starts anything: the embedded manifest is canonical and
// signed by the key next to it, and every integrity-protected file on disk matches its entry
// (type, size, permission bits, SHA-256; symlink targets). Files are opened with O_NOFOLLOW so a
// swapped-in symlink is caught. Thread-compatible; reads the file system under `root`.

#include <string>

#include "base/result.h"
#include "manifest/manifest.h"

namespace vouch::rte {

struct LoadedManifest {
  manifest::EnclaveManifest manifest;
  std::string canonical;
  std::string mrenclave;  // hex
  std::string mrsigner;   // hex
};

// Reads <root>/vouch/{manifest.json,manifest.sig,signer.pem} and checks the signature.
Result<LoadedManifest> LoadManifest(const std::string& root = "/");

// Checks every file of the manifest under `root`. The first mismatch is the error
// (reason "integrity_violation"), naming the file and what differs.
Status VerifyFiles(const manifest::EnclaveManifest& m, const std::string& root = "/");

}  // namespace vouch::rte
