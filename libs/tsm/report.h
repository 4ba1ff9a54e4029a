#pragma once

// The Linux configfs-tsm report client (kernel 6.7+; docs/tsm.md, TEE-SERVICES.md §3): how a
// confidential VM asks its kernel for attestation evidence.
//
// One request = one fresh report directory under `tsm_dir` (random name, mkdir; removed again
// whatever happens), `provider` checked against the caller's expectation, `generation` read,
// the 64-byte inblob (and `privlevel`, where the provider shows it) written, `outblob` (and
// `auxblob`) read, then `generation` read again: it must have advanced by exactly the number of
// writes this request made. Anything else means another writer touched the directory between
// our write and our read (the kernel would then have generated the blobs for *its* inblob), so
// the attempt is discarded and the request starts again in a new directory, at most
// `max_attempts` times. Blobs of two generations are never returned together.
//
// The file operations go through `TsmFs` so that tests can interpose (a concurrent writer);
// `PosixTsmFs()` is the real one. Thread-safe: requests share nothing (each has its directory).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::tsm {

inline constexpr std::string_view kDefaultTsmDir = "/sys/kernel/config/tsm/report";
inline constexpr std::string_view kProviderTdx = "tdx_guest";
inline constexpr std::string_view kProviderSev = "sev_guest";
inline constexpr size_t kInblobSize = 64;         // TDX_REPORTDATA_LEN, SNP_REPORT_USER_DATA_SIZE
inline constexpr size_t kOutblobMax = 32 * 1024;  // TSM_OUTBLOB_MAX
inline constexpr size_t kAuxblobMax = 64 * 1024;  // the SNP certificate table (VCEK, ASK, ARK, ...)
inline constexpr uint32_t kPrivlevelMax = 3;      // TSM_PRIVLEVEL_MAX

// Reason codes of the failures a caller may act on.
inline constexpr std::string_view kNoTsm = "tsm_unavailable";       // no configfs-tsm at the path
inline constexpr std::string_view kNoProvider = "tsm_no_provider";  // mkdir: ENXIO
inline constexpr std::string_view kProviderMismatch = "tsm_provider_mismatch";
inline constexpr std::string_view kGenerationRace = "tsm_generation_race";  // every attempt raced
inline constexpr std::string_view kTsmIo = "tsm_io_error";
inline constexpr std::string_view kInvalidPrivlevel = "tsm_invalid_privlevel";

// The file operations of one request. Each returns 0 or an errno value.
class TsmFs {
 public:
  virtual ~TsmFs() = default;
  virtual int Mkdir(const std::string& path) = 0;
  virtual int Rmdir(const std::string& path) = 0;
  // Reads the whole file; EFBIG when it holds more than `max` bytes.
  virtual int Read(const std::string& path, size_t max, std::vector<uint8_t>* out) = 0;
  // open, write everything, close (configfs commits a binary attribute on close).
  virtual int Write(const std::string& path, std::span<const uint8_t> data) = 0;
  virtual bool Exists(const std::string& path) = 0;
};
TsmFs& PosixTsmFs();

struct ReportRequest {
  std::string tsm_dir = std::string(kDefaultTsmDir);
  std::string provider;                       // expected provider; empty: any
  std::array<uint8_t, kInblobSize> inblob{};  // the report data (exactly 64 bytes)
  // Written where the provider shows `privlevel` (sev_guest): this value, which must be at least
  // `privlevel_floor`; absent: the floor itself. Ignored where there is no such attribute.
  std::optional<uint32_t> privlevel;
  bool want_aux = false;  // read `auxblob` too (where it exists)
  int max_attempts = 3;
};

struct Report {
  std::string provider;  // without the newline
  std::vector<uint8_t> outblob;
  std::vector<uint8_t> auxblob;  // empty if not asked for, absent or empty
  uint64_t generation = 0;       // of the directory the blobs came from
  int attempts = 0;              // 1 unless a concurrent writer forced a retry
};

Result<Report> GetReport(const ReportRequest& request, TsmFs& fs = PosixTsmFs());

// The provider the kernel offers (for `--tee auto`): mkdir of a probe entry, read `provider`,
// rmdir. NotFound kNoTsm when `tsm_dir` does not exist, FailedPrecondition kNoProvider when the
// kernel has no provider (ENXIO).
Result<std::string> DetectProvider(const std::string& tsm_dir = std::string(kDefaultTsmDir),
                                   TsmFs& fs = PosixTsmFs());

}  // namespace vouch::tsm
