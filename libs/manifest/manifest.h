#pragma once

// The enclave manifest that `vouch convert` embeds in a converted image and `vouch-rte` enforces:
// what to run (entrypoint, args, env), the enclave identity fields (isvprodid, isvsvn, debug),
// certificate requests, heartbeats, and every integrity-protected file with its SHA-256.
//
// The canonical form (docs/formats/manifest.md) is compact JSON with sorted keys and ASCII-only
// escapes; mrenclave = SHA-256(canonical bytes), mrsigner = SHA-256(signer's SubjectPublicKeyInfo
// DER). Parse() accepts only bytes that are already canonical, so two parties that agree on the
// bytes agree on the meaning. Pure functions; thread-safe; used by the converter and the runtime.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/digest.h"
#include "crypto/ossl.h"

namespace vouch::manifest {

inline constexpr std::string_view kFormat = "vouch-manifest/2";
// Format 1 listed neither directories nor the resolved program: a runtime cannot tell an added
// file from a listed one with it, so it is refused (convert the image again).
inline constexpr std::string_view kFormatV1 = "vouch-manifest/1";
// Where the converter puts things in the image.
inline constexpr std::string_view kRuntimePath = "/vouch/vouch-rte";
inline constexpr std::string_view kManifestPath = "/vouch/manifest.json";
inline constexpr std::string_view kSignaturePath = "/vouch/manifest.sig";
inline constexpr std::string_view kSignerPath = "/vouch/signer.pem";
inline constexpr size_t kMaxManifestBytes = 256u << 20;

struct CertificateRequest {
  std::string subject;                 // e.g. "CN=web"; empty: CN = first DNS name or the app
  std::vector<std::string> dns_names;  // empty: the app's domains (the manager decides)
  std::string key_type = "ec-p256";    // ec-p256 | ec-p384 | rsa-2048 | rsa-3072
  std::string key_path = "/run/vouch/certs/key.pem";
  std::string cert_path = "/run/vouch/certs/cert.pem";
  std::string ca_path = "/run/vouch/certs/ca.pem";
};

struct FileEntry {
  enum class Type { kFile, kSymlink, kDir };
  Type type = Type::kFile;
  std::string path;    // absolute, normalised ("/bin/busybox")
  std::string sha256;  // kFile: lower-case hex
  uint64_t size = 0;   // kFile
  uint32_t mode = 0;   // kFile, kDir: permission bits
  std::string target;  // kSymlink: as stored
};

struct EnclaveManifest {
  std::string app;                      // informational
  std::vector<std::string> entrypoint;  // argv prefix; entrypoint + args must be non-empty
  // The program executed (execv, no PATH search): entrypoint[0] resolved by the converter through
  // the image's PATH and symlinks to an absolute path, a listed executable file.
  std::string exec_path;
  std::vector<std::string> args;
  bool allow_cmdline_args = false;      // run-time arguments replace `args` when true
  std::vector<std::string> env;         // "NAME=value", fixed
  std::vector<std::string> mutable_env;  // names the run-time environment may set
  std::string workdir;
  std::string user;
  uint64_t memory_size_bytes = 0;       // recorded for real TEE backends
  uint32_t threads = 0;
  uint32_t isvprodid = 0;               // 0..65535
  uint32_t isvsvn = 0;                  // 0..65535
  bool debug = false;
  std::vector<CertificateRequest> certificates;
  bool heartbeat = true;
  uint32_t heartbeat_interval_seconds = 30;
  std::vector<std::string> ro_dirs;     // integrity-protected trees
  std::vector<std::string> rw_dirs;     // excluded from protection
  std::string agent_socket = "/run/vouch/agent.sock";
  std::string manager_url;
  std::string zone_ca_pem;              // written to each certificate's ca_path before issuance
  // Every protected file, symlink and directory (the root "/" itself is not listed); sorted by
  // path, unique. Under the protected trees nothing else may exist at run time.
  std::vector<FileEntry> files;
};

// The canonical bytes. Fails only for strings that are not valid UTF-8.
Result<std::string> ToCanonical(const EnclaveManifest& m);
// Parses and validates; refuses bytes that are not exactly ToCanonical() of the result.
Result<EnclaveManifest> Parse(std::string_view canonical);

crypto::Sha256Digest Mrenclave(std::string_view canonical);
Result<crypto::Sha256Digest> Mrsigner(EVP_PKEY* signer);

// The signing keys the converter accepts: EC P-256 or RSA 3072 (PKCS#1 v1.5, SHA-256).
Status CheckSigningKey(EVP_PKEY* key);
Result<std::vector<uint8_t>> Sign(EVP_PKEY* key, std::string_view canonical);
Status VerifySignature(EVP_PKEY* signer, std::string_view canonical, std::span<const uint8_t> signature);

// The binary search of a sorted `files` list; null when `path` is not listed.
const FileEntry* FindEntry(const EnclaveManifest& m, std::string_view path);

// The directories that hold the credential files (key, certificate, CA) of `m`'s certificate
// requests, without duplicates: vouch-rte creates them fresh (docs/convert.md).
std::vector<std::string> CredentialDirs(const EnclaveManifest& m);
std::string ParentDir(std::string_view path);

// True when `path` (absolute) is `dir` or below it; "/" contains everything.
bool PathUnder(std::string_view path, std::string_view dir);
// Whether `path` is integrity-protected under the ro/rw lists (the most specific entry wins).
bool IsProtected(std::string_view path, const std::vector<std::string>& ro_dirs,
                 const std::vector<std::string>& rw_dirs);

}  // namespace vouch::manifest
