// vouch-rte: the runtime inside converted images (PID 1). See libs/rte and docs/convert.md.
// Usage: the image's entrypoint; arguments after it go to the application only when the manifest
// allows them. VOUCH_RTE_ROOT (tests only) points at an unpacked root instead of "/".
#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rte/process.h"
#include "rte/runtime.h"

#include "base/encoding.h"
#include "crypto/keys.h"
#include "workload/workload_client.h"

extern char** environ;

namespace vouch::rte {
namespace {

Result<crypto::KeyType> KeyTypeOf(const std::string& name) {
  if (name == "ec-p256" || name.empty()) return crypto::KeyType::kEcP256;
  if (name == "ec-p384") return crypto::KeyType::kEcP384;
  if (name == "rsa-2048") return crypto::KeyType::kRsa2048;
  if (name == "rsa-3072") return crypto::KeyType::kRsa3072;
  return InvalidArgument("unknown key type " + name);
}

// AgentLink over the workload client library (libs/workload) and the agent's Unix socket.
class WorkloadLink final : public AgentLink {
 public:
  WorkloadLink(std::unique_ptr<workload::WorkloadClient> client, std::string socket_path)
      : client_(std::move(client)), socket_path_(std::move(socket_path)) {}

  Result<IssuedCredentials> RequestCertificate(const manifest::CertificateRequest& request, const Identity& id,
                                               EVP_PKEY* key, const std::string& instance_id) override {
    workload::SimIdentity sim;
    VOUCH_ASSIGN_OR_RETURN(auto mre, HexDecode(id.mrenclave));
    VOUCH_ASSIGN_OR_RETURN(auto mrs, HexDecode(id.mrsigner));
    if (mre.size() != 32 || mrs.size() != 32) return Internal("measurements are not 32 bytes");
    std::copy(mre.begin(), mre.end(), sim.mrenclave.begin());
    std::copy(mrs.begin(), mrs.end(), sim.mrsigner.begin());
    sim.isvprodid = static_cast<uint16_t>(id.isvprodid);
    sim.isvsvn = static_cast<uint16_t>(id.isvsvn);
    sim.debug = id.debug;
    // The report source follows the agent (GET /v1/target-info, workload_auth): on the sim TEE it
    // asks for a sim REPORT; on a confidential VM node (tdx, sev-snp) it sends this manifest
    // identity, which the agent believes only from a known vouch-rte executable (docs/agent.md,
    // "Workloads on a confidential VM"). Any other answer is refused ("tee_unsupported").
    crypto::EvpPkeyPtr fresh;
    if (key == nullptr) {
      VOUCH_ASSIGN_OR_RETURN(crypto::KeyType type, KeyTypeOf(request.key_type));
      VOUCH_ASSIGN_OR_RETURN(fresh, crypto::GenerateKey(type));
      key = fresh.get();
    }
    VOUCH_ASSIGN_OR_RETURN(workload::Credentials c,
                           client_->RequestCertificate(client_->SimReportSource(sim), request.dns_names, instance_id, key));
    IssuedCredentials out;
    out.key = std::move(c.key);
    out.key_pem = std::move(c.key_pem);
    out.cert_pem = std::move(c.cert_pem);
    out.ca_pem = std::move(c.ca_pem);
    out.instance_id = std::move(c.instance_id);
    out.not_after = std::move(c.not_after);
    out.heartbeat_key = std::move(c.heartbeat_key);
    return out;
  }

  Status SendHeartbeat(EVP_PKEY* key, std::span<const uint8_t> mac_key, const std::string& instance_id, int64_t seq,
                       const std::string& status) override {
    return client_->SendHeartbeat(key, mac_key, instance_id, seq, status);
  }

  Status ReportRefusal(const std::string& code, const std::string& path, const std::string& message,
                       const std::string& mrenclave) override {
    VOUCH_ASSIGN_OR_RETURN(auto http, workload::LocalHttp::Create(socket_path_, std::chrono::seconds(5)));
    nlohmann::json body = {{"code", code}, {"message", message.substr(0, 300)}};
    if (!path.empty()) body["path"] = path.substr(0, 1024);
    if (!mrenclave.empty()) body["mrenclave"] = mrenclave;
    auto answer = http->Post("/v1/refusal", body);
    return answer.ok() ? Status::Ok() : answer.status();
  }

 private:
  std::unique_ptr<workload::WorkloadClient> client_;
  std::string socket_path_;
};

}  // namespace
}  // namespace vouch::rte

int main(int argc, char** argv) {
  using namespace vouch;
  // The image's openssl.cnf is not the runtime's business: a configuration file (or a provider
  // module it names) from the image must not change how the runtime checks and signs, and
  // reading it cost ~1 ms of every start.
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  // Before any thread exists: signals stay pending for the supervisor loop.
  rte::BlockSignals();
  rte::RuntimeOptions o;
  if (const char* root = std::getenv("VOUCH_RTE_ROOT"); root != nullptr && *root) o.root = root;
  for (int i = 1; i < argc; ++i) o.cmdline_args.emplace_back(argv[i]);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) o.process_env.emplace_back(*e);
  o.connect = [&o](const std::string& socket) -> Result<std::unique_ptr<rte::AgentLink>> {
    std::string path = o.root == "/" ? socket : o.root + socket;
    if (const char* s = std::getenv("VOUCH_AGENT_SOCKET"); s != nullptr && *s) path = s;
    VOUCH_ASSIGN_OR_RETURN(auto client, workload::WorkloadClient::Create(path));
    return std::unique_ptr<rte::AgentLink>(new rte::WorkloadLink(std::move(client), path));
  };
  return rte::Run(o);
}
