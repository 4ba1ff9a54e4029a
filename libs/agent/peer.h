#pragma once

// Who is calling the agent's Unix socket, by kernel facts (docs/agent.md, "Workloads on a
// confidential VM"): on a TDX / SEV-SNP node there is no EREPORT, so a workload's claim of its
// manifest identity is believed only from a process whose executable is a vouch-rte the agent
// knows (SHA-256 of /proc/PID/exe, PID from SO_PEERCRED).
//
// The pid-reuse race is closed with a pidfd: the connection's SO_PEERPIDFD (bound to the process
// that called connect(), whatever later happens to its pid), or on kernels without it a
// pidfd_open(pid) made at the check. The check reads the pidfd's pid, hashes /proc/PID/exe, then
// reads the pidfd's pid again: if the process is still there, its pid was never free, so the
// executable hashed was its own. Limits (what a pidfd cannot close) are in docs/agent.md.
//
// Thread-safe.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "base/result.h"

namespace vouch::agent {

inline constexpr std::string_view kPeerUnknown = "peer_unknown";  // no peer credentials
inline constexpr std::string_view kPeerExited = "peer_exited";    // gone before the check ended
inline constexpr std::string_view kPeerNotVouchRte = "peer_not_vouch_rte";  // another executable
inline constexpr std::string_view kRteUnknown = "rte_hash_unknown";  // the agent knows no vouch-rte

using Sha256 = std::array<uint8_t, 32>;

struct PeerProcess {
  int64_t pid = -1;  // SO_PEERCRED, -1: none (TCP)
  int64_t uid = -1;
  int pidfd = -1;  // SO_PEERPIDFD, -1: none
};

// SHA-256 of a file's contents (streamed; at most 1 GiB).
Result<Sha256> Sha256OfFile(const std::string& path);

// The vouch-rte next to this program's executable (/proc/self/exe's directory), if there is one:
// the default of `vouch-agent --rte-sha256`.
std::vector<Sha256> DefaultRteHashes();

// Parses 64 hex digits.
Result<Sha256> ParseSha256Hex(std::string_view hex);

class RteRecognizer {
 public:
  explicit RteRecognizer(std::vector<Sha256> known) : known_(std::move(known)) {}

  // OK when `peer` is a live process whose executable hashes to a known vouch-rte. Refusals are
  // PermissionDenied with kPeerUnknown / kPeerExited / kPeerNotVouchRte / kRteUnknown.
  Status Check(const PeerProcess& peer);

  bool empty() const { return known_.empty(); }

 private:
  Result<Sha256> HashExe(int64_t pid);
  std::vector<Sha256> known_;
  // Hash of an executable by (device, inode, size, mtime, ctime): an exe is hashed once, not on
  // every request; a file changed in place has a new mtime/ctime and is hashed again.
  std::mutex mu_;
  std::map<std::tuple<uint64_t, uint64_t, int64_t, int64_t, int64_t>, Sha256> cache_;
};

}  // namespace vouch::agent
