#pragma once

// What vouch-rte checks before it starts anything: the embedded manifest is canonical and
// signed by the key next to it, every integrity-protected entry on disk matches its entry
// (type, size, permission bits, SHA-256; symlink targets; directories are directories), and
// nothing else exists under the protected trees (docs/convert.md "What is protected"). Files are
// opened with O_NOFOLLOW so a swapped-in symlink is caught. Thread-compatible; reads the file
// system under `root`.

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "manifest/manifest.h"

namespace vouch::rte {

struct LoadedManifest {
  manifest::EnclaveManifest manifest;
  std::string canonical;
  std::string mrenclave;  // hex
  std::string mrsigner;   // hex
};

// Reason codes of a refused start (also the `code` vouch-rte reports to the agent).
inline constexpr std::string_view kIntegrityViolation = "integrity_violation";
inline constexpr std::string_view kUnlistedEntry = "unlisted_entry";

// Paths the container runtime mounts (runc, Docker): inside a protected tree such a path is
// skipped by the unlisted-entry check only when it is a mount point at run time and the
// manifest lists nothing below it; an ordinary file or directory there is checked like any
// other. Besides these: the manifest's agent socket and the directory holding it.
inline constexpr std::string_view kRuntimeMounts[] = {"/proc", "/sys", "/dev", "/etc/resolv.conf", "/etc/hosts",
                                                      "/etc/hostname", "/etc/mtab"};
std::vector<std::string> RuntimeMountPaths(const manifest::EnclaveManifest& m);

// Reads <root>/vouch/{manifest.json,manifest.sig,signer.pem} and checks the signature.
Result<LoadedManifest> LoadManifest(const std::string& root = "/");

// Checks every entry of the manifest under `root` (files hashed over the cores) and, beside the
// hashing, walks the protected trees for entries the manifest does not list (readdir only).
// The error names the path: an unlisted entry first ("unlisted_entry"), else the first
// mismatch in manifest order ("integrity_violation"). `bad_path` (optional) gets the path.
Status VerifyFiles(const manifest::EnclaveManifest& m, const std::string& root = "/", std::string* bad_path = nullptr);

// The unlisted-entry walk alone. A protected directory is walked when the manifest lists it
// or it is "/" or an ro directory root; below it every entry must be listed, except: rw
// subtrees; runtime mount points (above); the credentials directories (made fresh and checked
// by CredentialStore before anything is written), and unlisted directories on the way to them
// or to the agent socket, whose other entries are still checked.
Status CheckNoUnlistedEntries(const manifest::EnclaveManifest& m, const std::string& root = "/",
                              std::string* bad_path = nullptr);

}  // namespace vouch::rte
