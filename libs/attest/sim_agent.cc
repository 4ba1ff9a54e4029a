#include "attest/sim_agent.h"

#include <algorithm>
#include <string_view>

#include "crypto/digest.h"

namespace vouch::attest {
namespace {

std::array<uint8_t, 32> Digest32(std::string_view s) {
  auto d = crypto::Sha256(s);
  std::array<uint8_t, 32> out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

std::array<uint8_t, 48> Digest48(std::string_view s) {
  auto d = crypto::Sha384(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  std::array<uint8_t, 48> out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

}  // namespace

const SimAgentIdentity& ShippedSimAgent() {
  static const SimAgentIdentity kIdentity = [] {
    SimAgentIdentity id;
    id.mrenclave = Digest32("vouch-agent-sim-enclave-v1");
    id.mrsigner = Digest32("vouch-agent-sim-signer-v1");
    id.tdx_mrtd = Digest48("vouch-agent-sim-tdx-mrtd-v1");
    id.snp_measurement = Digest48("vouch-agent-sim-snp-measurement-v1");
    return id;
  }();
  return kIdentity;
}

}  // namespace vouch::attest
