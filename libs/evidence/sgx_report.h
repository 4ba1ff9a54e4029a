#pragma once

// The SGX REPORT body (`sgx_report_body_t`, Intel SDM Vol. 3D "REPORT" / ATTESTATION-FORMATS.md
// §1.2; offsets in docs/formats/sgx-quote.md) and the full 432-byte SGX REPORT that EREPORT
// produces (body ‖ KEYID[32] ‖ MAC[16]). The body appears in SGX quotes (ISV enclave report, QE
// report); the full REPORT is what local attestation exchanges.
//
// Pure parsing and encoding: bytes in, owning typed values out. No crypto, no I/O. Thread-safe
// (no state); never throws.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"

namespace vouch::evidence {

inline constexpr size_t kSgxReportBodySize = 384;
inline constexpr size_t kSgxReportSize = 432;  // body + key_id + mac
inline constexpr size_t kSgxReportKeyIdSize = 32;
inline constexpr size_t kSgxReportMacSize = 16;

// Field offsets inside the 384-byte body (pinned by sgx_report_test.cc, docs/formats/sgx-quote.md).
namespace sgx_report_offsets {
inline constexpr size_t kCpuSvn = 0;
inline constexpr size_t kMiscSelect = 16;
inline constexpr size_t kReserved1 = 20;
inline constexpr size_t kIsvExtProdId = 32;
inline constexpr size_t kAttributes = 48;  // flags u64 then xfrm u64
inline constexpr size_t kMrEnclave = 64;
inline constexpr size_t kReserved2 = 96;
inline constexpr size_t kMrSigner = 128;
inline constexpr size_t kReserved3 = 160;
inline constexpr size_t kConfigId = 192;
inline constexpr size_t kIsvProdId = 256;
inline constexpr size_t kIsvSvn = 258;
inline constexpr size_t kConfigSvn = 260;
inline constexpr size_t kReserved4 = 262;
inline constexpr size_t kIsvFamilyId = 304;
inline constexpr size_t kReportData = 320;
// In the full REPORT:
inline constexpr size_t kKeyId = 384;
inline constexpr size_t kMac = 416;
}  // namespace sgx_report_offsets

// SECS.ATTRIBUTES.FLAGS bits.
inline constexpr uint64_t kSgxFlagInit = 1u << 0;
inline constexpr uint64_t kSgxFlagDebug = 1u << 1;
inline constexpr uint64_t kSgxFlagMode64Bit = 1u << 2;
inline constexpr uint64_t kSgxFlagProvisionKey = 1u << 4;
inline constexpr uint64_t kSgxFlagEinitTokenKey = 1u << 5;
inline constexpr uint64_t kSgxFlagKss = 1u << 7;

// One 384-byte report body. `raw` keeps the exact bytes (what signatures and MACs cover).
struct SgxReportBody {
  std::array<uint8_t, 16> cpu_svn{};
  uint32_t misc_select = 0;
  std::array<uint8_t, 16> isv_ext_prod_id{};
  uint64_t attribute_flags = 0;
  uint64_t attribute_xfrm = 0;
  std::array<uint8_t, 32> mr_enclave{};
  std::array<uint8_t, 32> mr_signer{};
  std::array<uint8_t, 64> config_id{};
  uint16_t isv_prod_id = 0;
  uint16_t isv_svn = 0;
  uint16_t config_svn = 0;
  std::array<uint8_t, 16> isv_family_id{};
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, kSgxReportBodySize> raw{};

  bool debug() const { return (attribute_flags & kSgxFlagDebug) != 0; }
  // The 16 attribute bytes as they appear in the body (flags LE ‖ xfrm LE).
  std::array<uint8_t, 16> AttributesBytes() const;
};

// A full SGX REPORT (EREPORT output).
struct SgxReport {
  SgxReportBody body;
  std::array<uint8_t, kSgxReportKeyIdSize> key_id{};
  std::array<uint8_t, kSgxReportMacSize> mac{};
};

// Parses exactly 384 bytes ("sgx_report_body_size" otherwise). Reserved bytes are not checked
// (real QE reports are zero there, but QVL does not require it).
Result<SgxReportBody> ParseSgxReportBody(std::span<const uint8_t> bytes);
// Parses exactly 432 bytes ("sgx_report_size" otherwise).
Result<SgxReport> ParseSgxReport(std::span<const uint8_t> bytes);

// Encodes the typed fields (not `raw`) into the 384-byte layout; reserved bytes are zero.
std::array<uint8_t, kSgxReportBodySize> EncodeSgxReportBody(const SgxReportBody& body);
// body ‖ key_id ‖ mac; the body is encoded from its typed fields.
std::array<uint8_t, kSgxReportSize> EncodeSgxReport(const SgxReport& report);

}  // namespace vouch::evidence
