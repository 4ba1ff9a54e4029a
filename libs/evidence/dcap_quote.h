#pragma once

// Intel DCAP ECDSA quotes: SGX quote v3, TDX quote v4 and v5 (ATTESTATION-FORMATS.md §1-2;
// byte layouts with offsets in docs/formats/sgx-quote.md and docs/formats/tdx-quote.md).
//
// A pure parser: bytes in, an owning typed value out. No crypto (signatures are decoded, not
// verified: that is attest/dcap_verifier), no I/O. Thread-safe (no state); never throws.
//
// Validation order: size, then version / key type / TEE type / QE vendor, then the declared
// lengths of the signature data, QE authentication data and certification data. Every failure
// is InvalidArgument with one of the stable reasons below. Bytes after the signature data are
// tolerated (as Intel QVL does) and counted in `trailing_bytes`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "evidence/sgx_report.h"

namespace vouch::evidence {

// Stable parse-failure reasons (Status::reason()).
inline constexpr std::string_view kQuoteTruncated = "quote_truncated";
inline constexpr std::string_view kUnsupportedQuoteVersion = "unsupported_quote_version";
inline constexpr std::string_view kUnsupportedAttKeyType = "unsupported_att_key_type";
inline constexpr std::string_view kUnsupportedTeeType = "unsupported_tee_type";
inline constexpr std::string_view kQeVendorMismatch = "qe_vendor_mismatch";
inline constexpr std::string_view kUnsupportedBodyType = "unsupported_body_type";
inline constexpr std::string_view kSigDataOverrun = "sig_data_overrun";
inline constexpr std::string_view kSigDataTooShort = "sig_data_too_short";
inline constexpr std::string_view kAuthDataOverrun = "auth_data_overrun";
inline constexpr std::string_view kCertDataOverrun = "cert_data_overrun";
inline constexpr std::string_view kUnsupportedCertDataType = "unsupported_cert_data_type";

inline constexpr size_t kQuoteHeaderSize = 48;
inline constexpr size_t kTdReport10Size = 584;
inline constexpr size_t kTdReport15Size = 648;
inline constexpr size_t kQuoteSignatureSize = 64;
inline constexpr size_t kAttestationKeySize = 64;

inline constexpr uint16_t kAttKeyTypeEcdsaP256 = 2;
inline constexpr uint32_t kTeeTypeSgx = 0x00000000;
inline constexpr uint32_t kTeeTypeTdx = 0x00000081;
// Intel's quoting enclave vendor id (QVL rejects every other).
inline constexpr std::array<uint8_t, 16> kIntelQeVendorId = {0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9,
                                                             0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07};

// Certification data types (ATTESTATION-FORMATS.md §1.3).
enum class CertDataType : uint16_t {
  kPpidCleartext = 1,
  kPpidRsa2048 = 2,
  kPpidRsa3072 = 3,
  kPckLeaf = 4,
  kPckChain = 5,
  kQeReportCertData = 6,
  kPlatformManifest = 7,
};

// Offsets pinned by dcap_quote_test.cc and the docs/formats tables.
namespace quote_offsets {
inline constexpr size_t kVersion = 0;
inline constexpr size_t kAttKeyType = 2;
inline constexpr size_t kTeeType = 4;
inline constexpr size_t kQeSvn = 8;
inline constexpr size_t kPceSvn = 10;
inline constexpr size_t kQeVendorId = 12;
inline constexpr size_t kUserData = 28;
inline constexpr size_t kBody = 48;             // v3, v4
inline constexpr size_t kV3SigDataLen = 432;    // 48 + 384
inline constexpr size_t kV4SigDataLen = 632;    // 48 + 584
inline constexpr size_t kV5BodyType = 48;       // u16
inline constexpr size_t kV5BodySize = 50;       // u32
inline constexpr size_t kV5Body = 54;
// Relative to the start of the signature data (after the u32 length).
inline constexpr size_t kSigQuoteSignature = 0;
inline constexpr size_t kSigAttestationKey = 64;
inline constexpr size_t kSigV3QeReport = 128;
inline constexpr size_t kSigV3QeReportSignature = 512;
inline constexpr size_t kSigV3QeAuthDataSize = 576;
inline constexpr size_t kSigV4CertDataType = 128;
inline constexpr size_t kSigV4CertDataSize = 130;
inline constexpr size_t kSigV4CertData = 134;
}  // namespace quote_offsets

// TD report offsets relative to the body start.
namespace td_report_offsets {
inline constexpr size_t kTeeTcbSvn = 0;
inline constexpr size_t kMrSeam = 16;
inline constexpr size_t kMrSignerSeam = 64;
inline constexpr size_t kSeamAttributes = 112;
inline constexpr size_t kTdAttributes = 120;
inline constexpr size_t kXfam = 128;
inline constexpr size_t kMrTd = 136;
inline constexpr size_t kMrConfigId = 184;
inline constexpr size_t kMrOwner = 232;
inline constexpr size_t kMrOwnerConfig = 280;
inline constexpr size_t kRtmr0 = 328;
inline constexpr size_t kReportData = 520;
inline constexpr size_t kTeeTcbSvn2 = 584;   // 1.5 only
inline constexpr size_t kMrServiceTd = 600;  // 1.5 only
}  // namespace td_report_offsets

struct QuoteHeader {
  uint16_t version = 0;
  uint16_t att_key_type = 0;
  uint32_t tee_type = 0;
  uint16_t qe_svn = 0;
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> qe_vendor_id{};
  std::array<uint8_t, 20> user_data{};
};

enum class QuoteBodyType : uint16_t { kSgxReport = 1, kTdReport10 = 2, kTdReport15 = 3 };

using Mr48 = std::array<uint8_t, 48>;

// TD report 1.0 (584 bytes) or 1.5 (648 bytes).
struct TdReport {
  std::array<uint8_t, 16> tee_tcb_svn{};
  Mr48 mr_seam{};
  Mr48 mr_signer_seam{};
  std::array<uint8_t, 8> seam_attributes{};
  std::array<uint8_t, 8> td_attributes{};
  std::array<uint8_t, 8> xfam{};
  Mr48 mr_td{};
  Mr48 mr_config_id{};
  Mr48 mr_owner{};
  Mr48 mr_owner_config{};
  std::array<Mr48, 4> rtmr{};
  std::array<uint8_t, 64> report_data{};
  bool v15 = false;
  std::array<uint8_t, 16> tee_tcb_svn2{};  // 1.5 only
  Mr48 mr_servicetd{};                     // 1.5 only

  bool debug() const { return (td_attributes[0] & 0x01) != 0; }
};

// Certification data as typed in the quote. `data` is a copy of the bytes (for type 5 the
// concatenated PEM chain, possibly with a trailing NUL).
struct CertificationData {
  uint16_t type = 0;
  std::vector<uint8_t> data;
};

// One parsed quote (v3 SGX, v4 SGX/TDX, v5). Owns all its bytes.
struct DcapQuote {
  QuoteHeader header;
  QuoteBodyType body_type = QuoteBodyType::kSgxReport;
  std::optional<SgxReportBody> sgx_report;  // body_type kSgxReport
  std::optional<TdReport> td_report;        // body_type kTdReport10/15
  // The bytes the quote signature covers: header ‖ [v5 descriptor ‖] body.
  std::vector<uint8_t> signed_data;
  uint32_t sig_data_len = 0;
  std::array<uint8_t, kQuoteSignatureSize> signature{};        // r ‖ s, big-endian
  std::array<uint8_t, kAttestationKeySize> attestation_key{};  // x ‖ y, big-endian
  SgxReportBody qe_report;
  std::array<uint8_t, 64> qe_report_signature{};
  std::vector<uint8_t> qe_auth_data;
  // Type of the certification data directly in the signature data (1-5 in v3, 6 in v4/v5).
  uint16_t outer_cert_data_type = 0;
  // The PCK certification data: the outer one in v3, the one inside the type-6 wrapper in v4/v5.
  CertificationData cert_data;
  size_t trailing_bytes = 0;

  bool is_tdx() const { return header.tee_type == kTeeTypeTdx; }
  // The report data of the attested body (SGX or TD).
  std::span<const uint8_t, 64> report_data() const;
};

// Spec names: one owning type serves all three layouts (they share header and signature data).
using SgxQuoteV3 = DcapQuote;
using TdxQuoteV4 = DcapQuote;
using TdxQuoteV5 = DcapQuote;

// Any supported version: 3 (SGX), 4 (SGX or TDX), 5 (SGX or TDX, with body descriptor).
Result<DcapQuote> ParseDcapQuote(std::span<const uint8_t> bytes);
// As ParseDcapQuote but also requires the version (and TEE type) named.
Result<DcapQuote> ParseSgxQuoteV3(std::span<const uint8_t> bytes);
Result<DcapQuote> ParseTdxQuoteV4(std::span<const uint8_t> bytes);
Result<DcapQuote> ParseTdxQuoteV5(std::span<const uint8_t> bytes);
// True when the first bytes look like an Intel quote header (u16 version 3/4/5, u16 key type 2).
bool LooksLikeDcapQuote(std::span<const uint8_t> bytes);

}  // namespace vouch::evidence
