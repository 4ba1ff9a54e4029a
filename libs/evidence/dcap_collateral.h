#pragma once

// Intel PCS collateral JSON: TCB Info (v2 SGX, v3 SGX/TDX) and Enclave Identity v2 (QE, TD_QE)
// (ATTESTATION-FORMATS.md §4; fields in docs/formats/dcap-collateral.md).
//
// The signature of each document covers the EXACT bytes of the `tcbInfo` / `enclaveIdentity`
// value as served. The parsers therefore locate that value's text in the input and keep it
// verbatim in `signed_body` (never re-serialised); the typed fields are decoded from that same
// text, so what is verified is what is interpreted. A top-level member that appears twice is
// rejected.
//
// Pure parsing (nlohmann-json, parse without exceptions). No crypto, no I/O. Thread-safe (no
// state); never throws. Failures are InvalidArgument with reason "malformed_tcb_info",
// "unsupported_tcb_info_version", "malformed_qe_identity" or "unsupported_qe_identity_version".

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace vouch::evidence {

inline constexpr std::string_view kMalformedTcbInfo = "malformed_tcb_info";
inline constexpr std::string_view kUnsupportedTcbInfoVersion = "unsupported_tcb_info_version";
inline constexpr std::string_view kMalformedQeIdentity = "malformed_qe_identity";
inline constexpr std::string_view kUnsupportedQeIdentityVersion = "unsupported_qe_identity_version";

// The TCB status strings Intel uses in tcbLevels (and QVL's result names).
bool IsKnownTcbStatus(std::string_view status);

// One level of TCB Info `tcbLevels` (newest first in the document).
struct TcbLevel {
  std::array<uint8_t, 16> sgx_svns{};  // sgxtcbcomp01svn..16 (v2) / sgxtcbcomponents[i].svn (v3)
  uint16_t pcesvn = 0;
  std::optional<std::array<uint8_t, 16>> tdx_svns;  // tdxtcbcomponents (TDX TCB Info)
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

// A level of a TDX module identity or of an enclave identity: matched on ISVSVN.
struct IsvSvnLevel {
  uint16_t isvsvn = 0;
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;                     // "TDX_01", ...; empty for the plain `tdxModule`
  std::array<uint8_t, 48> mrsigner{};
  std::array<uint8_t, 8> attributes{};
  std::array<uint8_t, 8> attributes_mask{};
  std::vector<IsvSvnLevel> tcb_levels;  // empty for the plain `tdxModule`
};

struct TcbInfo {
  int version = 0;        // 2 or 3
  std::string id;         // "SGX" / "TDX" (v3); "" for v2
  std::string issue_date;
  std::string next_update;
  TimePoint issue_time;
  TimePoint next_update_time;
  std::array<uint8_t, 6> fmspc{};
  std::array<uint8_t, 2> pce_id{};
  int tcb_type = 0;
  int64_t tcb_evaluation_data_number = 0;
  std::optional<TdxModuleIdentity> tdx_module;
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> tcb_levels;
  // Exact served text of the `tcbInfo` value: the bytes the signature covers.
  std::string signed_body;
  std::array<uint8_t, 64> signature{};  // r ‖ s, big-endian

  bool is_tdx() const { return id == "TDX"; }
};

struct EnclaveIdentity {
  std::string id;  // "QE", "TD_QE", "QVE"
  int version = 0; // 2
  std::string issue_date;
  std::string next_update;
  TimePoint issue_time;
  TimePoint next_update_time;
  int64_t tcb_evaluation_data_number = 0;
  std::array<uint8_t, 4> miscselect{};       // bytes in report order
  std::array<uint8_t, 4> miscselect_mask{};
  std::array<uint8_t, 16> attributes{};
  std::array<uint8_t, 16> attributes_mask{};
  std::array<uint8_t, 32> mrsigner{};
  uint16_t isvprodid = 0;
  std::vector<IsvSvnLevel> tcb_levels;
  std::string signed_body;  // exact served text of the `enclaveIdentity` value
  std::array<uint8_t, 64> signature{};
};

// `{"tcbInfo":{...},"signature":"<128 hex>"}`.
Result<TcbInfo> ParseTcbInfo(std::string_view json_text);
// `{"enclaveIdentity":{...},"signature":"<128 hex>"}`.
Result<EnclaveIdentity> ParseEnclaveIdentity(std::string_view json_text);

// The exact text of the value of top-level member `key` in a JSON object, or nullopt when the
// text is not an object, the member is missing, or it occurs more than once. Scans without
// building a DOM; strings and nesting are honoured.
std::optional<std::string_view> FindTopLevelJsonMember(std::string_view json_text, std::string_view key);

}  // namespace vouch::evidence
