#pragma once

// The enclave identity of the vouch-agent that ships with this build, in the INSECURE sim TEE
// (docs/sim.md, docs/agent.md "Node identity"). One place for the agent (which quotes with it)
// and vouchd (which accepts it in new sim zones).

#include <array>
#include <cstdint>

namespace vouch::attest {

struct SimAgentIdentity {
  std::array<uint8_t, 32> mrenclave{};  // SHA-256("vouch-agent-sim-enclave-v1")
  std::array<uint8_t, 32> mrsigner{};   // SHA-256("vouch-agent-sim-signer-v1")
  uint16_t isvprodid = 0;
  uint16_t isvsvn = 0;
  // The same agent in a sim confidential VM (issue 14): the TD's MRTD (RTMR0..3 all zero) and
  // the SEV-SNP launch MEASUREMENT.
  std::array<uint8_t, 48> tdx_mrtd{};                  // SHA-384("vouch-agent-sim-tdx-mrtd-v1")
  std::array<std::array<uint8_t, 48>, 4> tdx_rtmr{};   // zero
  std::array<uint8_t, 48> snp_measurement{};           // SHA-384("vouch-agent-sim-snp-measurement-v1")
};

const SimAgentIdentity& ShippedSimAgent();

}  // namespace vouch::attest
