#pragma once

// vouch-rte's sequence (docs/convert.md "The runtime"): load and verify the signed manifest,
// verify every protected file, make the workload key in memory, get the certificate through the
// node agent (retrying with backoff while it is refused, saying why), write key, chain and CA
// where the manifest says, start the application with the manifest's argv and env, forward
// signals and reap zombies as PID 1, renew the certificate before expiry (same paths, replaced
// atomically) and send heartbeats; return the application's exit status.
//
// The agent is reached through AgentLink so the sequence is testable without one.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"
#include "manifest/manifest.h"

namespace vouch::rte {

struct Identity {
  std::string mrenclave;  // hex
  std::string mrsigner;   // hex
  uint32_t isvprodid = 0;
  uint32_t isvsvn = 0;
  bool debug = false;
};

struct IssuedCredentials {
  crypto::EvpPkeyPtr key;
  crypto::SecretBytes key_pem;
  std::string cert_pem;  // leaf first
  std::string ca_pem;
  std::string instance_id;
  std::string not_after;  // RFC 3339
  // The heartbeat MAC key K of this certificate (docs/formats/heartbeat-key.md); empty when the
  // manager named no heartbeat key or the key cannot do ECDH with it (heartbeats are signed).
  crypto::SecretBytes heartbeat_key;
};

class AgentLink {
 public:
  virtual ~AgentLink() = default;
  // One attempt. `key` null: make a new key of `request.key_type`; else renew with it.
  virtual Result<IssuedCredentials> RequestCertificate(const manifest::CertificateRequest& request,
                                                       const Identity& identity, EVP_PKEY* key,
                                                       const std::string& instance_id) = 0;
  // MAC'd under `mac_key` (K) when it is not empty, else signed by `key`.
  virtual Status SendHeartbeat(EVP_PKEY* key, std::span<const uint8_t> mac_key, const std::string& instance_id,
                               int64_t seq, const std::string& status) = 0;
  // Tells the agent this start was refused (POST /v1/refusal): `code` a snake_case reason,
  // `path` the offending path (may be empty), `mrenclave` hex (may be empty). The agent queues
  // it for vouchd's audit log.
  virtual Status ReportRefusal(const std::string& code, const std::string& path, const std::string& message,
                               const std::string& mrenclave) {
    (void)code, (void)path, (void)message, (void)mrenclave;
    return Unimplemented("this agent link cannot report refusals");
  }
};

struct RuntimeOptions {
  std::string root = "/";                     // where the image's files are (tests use a directory)
  std::vector<std::string> cmdline_args;      // argv[1..] given to vouch-rte
  std::vector<std::string> process_env;       // the environment vouch-rte got
  // Connects to the agent socket named in the manifest.
  std::function<Result<std::unique_ptr<AgentLink>>(const std::string& socket)> connect;
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
};

// Returns the process exit code; failures before the application starts are logged on stderr
// ("vouch-rte: ...") and give 1 (integrity, unlisted entry, unsafe credentials path; reported to
// the agent as a refusal) or 111 (no certificate) or 128+signal. The application is executed
// from Join(root, manifest.exec_path).
int Run(const RuntimeOptions& options);

// The application's argv and environment from the manifest and what vouch-rte was given.
Result<std::vector<std::string>> ChildArgv(const manifest::EnclaveManifest& m, const std::vector<std::string>& cmdline);
std::vector<std::string> ChildEnv(const manifest::EnclaveManifest& m, const std::vector<std::string>& process_env);

// The key, chain and CA are written through rte/credentials.h (no-follow, exclusive create,
// rename within the directory handle). Not fsynced: the files are the container's run-time
// state, made again at every start (a fresh key and certificate), and three file plus three
// directory fsyncs were ~5 ms of every start.

}  // namespace vouch::rte
