#pragma once

// An emulated configfs-tsm (docs/tsm.md): a FUSE file system that reproduces the kernel's report
// ABI (drivers/virt/coco/guest/report.c, TEE-SERVICES.md §3) over an evidence generator, so that
// the agent's real client (tsm/report.h) runs against it unchanged (`vouch sim tsm`, tests).
//
// Layout under the mount point: `report/`; `mkdir report/NAME` makes an entry (ENXIO when no
// provider is registered) showing the attributes its provider shows — tdx_guest: generation,
// provider, inblob, outblob; sev_guest: also auxblob, privlevel, privlevel_floor —, `rmdir` frees
// it. Every successful write (inblob on close, privlevel) bumps `generation`; the first read of
// outblob/auxblob after a change calls the generator once, and both blobs of that generation
// come from that one call; a read with no inblob written fails EINVAL, as does an inblob that is
// not exactly 64 bytes (the providers' rule) and an inblob write past 64 bytes (EFBIG, configfs'
// cb_max_size). One open file reads one snapshot (configfs reads a binary attribute once per
// open). One provider at a time: registering a second one is refused (tsm_report_register's
// EBUSY).
//
// libfuse3 is loaded with dlopen on first Mount (libs/tsm/README.md): programs that link this
// library but never mount (vouch, vouch-agent) do not load it.
//
// Thread safety: all methods may be called from any thread; the file system runs on its own
// thread. The generator runs on that thread, one call at a time.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tsm/report.h"

namespace vouch::tsm {

struct Blobs {
  std::vector<uint8_t> outblob;
  std::vector<uint8_t> auxblob;  // sev_guest: the certificate table (may be empty)
};

// The provider's report_new: evidence for `inblob` at `privlevel` (0 where there is none).
using EvidenceFn = std::function<Result<Blobs>(
    std::string_view provider, std::span<const uint8_t, kInblobSize> inblob, uint32_t privlevel)>;

struct FuseTsmOptions {
  std::string mountpoint;  // an existing empty directory
  // The registered provider ("tdx_guest", "sev_guest"); empty: none (mkdir fails ENXIO).
  std::string provider;
  EvidenceFn evidence;
  uint32_t privlevel_floor = 0;  // sev_guest: the VMPCK id
  size_t max_entries = 1024;     // mkdir past this: ENOSPC
  // Test knob: the first N inblob writes are each followed at once by another writer's (the
  // inblob with every byte inverted, one more generation), as a second process in the guest
  // would do between the client's write and its read.
  int interfere = 0;
};

class FuseTsm {
 public:
  // Loads libfuse3, mounts and starts serving. FailedPrecondition "fuse_unavailable" when
  // libfuse3.so.3 or /dev/fuse is missing; Unavailable "mount_failed" when the mount fails.
  static Result<std::unique_ptr<FuseTsm>> Mount(FuseTsmOptions options);
  ~FuseTsm();  // Unmount()
  FuseTsm(const FuseTsm&) = delete;
  FuseTsm& operator=(const FuseTsm&) = delete;

  // Registers the provider (after a mount with none). FailedPrecondition "tsm_provider_busy"
  // when one is registered already.
  Status RegisterProvider(std::string provider, EvidenceFn evidence, uint32_t privlevel_floor = 0);
  // Unmounts (lazily if busy) and stops the file system thread. Idempotent.
  void Unmount();

  const std::string& mountpoint() const;

  // How many times the generator ran (tests: once per generation read).
  uint64_t reports_generated() const;
  // Report entries that exist now (tests: cleanup).
  size_t entries() const;

  struct State;  // fuse_tsm.cc

 private:
  FuseTsm();
  std::unique_ptr<State> state_;
};

}  // namespace vouch::tsm
