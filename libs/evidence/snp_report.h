#pragma once

// AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP firmware ABI specification, table "ATTESTATION_REPORT
// Structure"; layout and offsets in docs/formats/sev-snp-report.md). A pure parser: bytes in,
// typed, owning value out. No crypto (the signature is only decoded, not verified), no I/O.
// Thread-safe (no state); never throws.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.h"

namespace vouch::evidence {

inline constexpr size_t kSnpReportSize = 0x4A0;        // 1184
inline constexpr size_t kSnpSignedSize = 0x2A0;        // bytes 0x000..0x29F are signed
inline constexpr size_t kSnpSignatureOffset = 0x2A0;
inline constexpr size_t kSnpSignatureComponentSize = 72;  // r and s, little-endian
inline constexpr uint32_t kSnpSignatureAlgoEcdsaP384Sha384 = 1;

// Field offsets (pinned by snp_report_test.cc and docs/formats/sev-snp-report.md).
namespace snp_offsets {
inline constexpr size_t kVersion = 0x000;
inline constexpr size_t kGuestSvn = 0x004;
inline constexpr size_t kPolicy = 0x008;
inline constexpr size_t kFamilyId = 0x010;
inline constexpr size_t kImageId = 0x020;
inline constexpr size_t kVmpl = 0x030;
inline constexpr size_t kSignatureAlgo = 0x034;
inline constexpr size_t kCurrentTcb = 0x038;
inline constexpr size_t kPlatformInfo = 0x040;
inline constexpr size_t kKeyInfo = 0x048;  // author_key_en, mask_chip_key, signing_key
inline constexpr size_t kReserved0 = 0x04C;
inline constexpr size_t kReportData = 0x050;
inline constexpr size_t kMeasurement = 0x090;
inline constexpr size_t kHostData = 0x0C0;
inline constexpr size_t kIdKeyDigest = 0x0E0;
inline constexpr size_t kAuthorKeyDigest = 0x110;
inline constexpr size_t kReportId = 0x140;
inline constexpr size_t kReportIdMa = 0x160;
inline constexpr size_t kReportedTcb = 0x180;
inline constexpr size_t kCpuidFamId = 0x188;  // v3+
inline constexpr size_t kCpuidModId = 0x189;  // v3+
inline constexpr size_t kCpuidStep = 0x18A;   // v3+
inline constexpr size_t kReserved1 = 0x18B;   // ..0x19F (0x188.. in v2)
inline constexpr size_t kChipId = 0x1A0;
inline constexpr size_t kCommittedTcb = 0x1E0;
inline constexpr size_t kCurrentBuild = 0x1E8;
inline constexpr size_t kCurrentMinor = 0x1E9;
inline constexpr size_t kCurrentMajor = 0x1EA;
inline constexpr size_t kCommittedBuild = 0x1EC;
inline constexpr size_t kCommittedMinor = 0x1ED;
inline constexpr size_t kCommittedMajor = 0x1EE;
inline constexpr size_t kLaunchTcb = 0x1F0;
inline constexpr size_t kLaunchMitVector = 0x1F8;   // v5
inline constexpr size_t kCurrentMitVector = 0x200;  // v5
inline constexpr size_t kReserved4 = 0x208;         // ..0x29F (0x1F8.. before v5)
inline constexpr size_t kSignatureR = 0x2A0;
inline constexpr size_t kSignatureS = 0x2E8;
inline constexpr size_t kSignatureReserved = 0x330;  // ..0x49F
}  // namespace snp_offsets

// AMD processor lines with SEV-SNP; they differ in TCB_VERSION layout and in their AMD roots.
enum class SnpProduct { kUnknown, kMilan, kGenoa, kTurin };
// "Milan", "Genoa", "Turin", "unknown".
std::string_view SnpProductName(SnpProduct product);
// From the report's CPUID fields (v3+): family 0x19 model 0x00-0x0F Milan, 0x10-0x1F and
// 0xA0-0xAF Genoa (incl. Bergamo/Siena); family 0x1A model 0x00-0x1F Turin; else kUnknown.
SnpProduct SnpProductFromCpuid(uint8_t family, uint8_t model);
// From a VCEK/VLEK productName extension ("Milan-B0", "Genoa", "Turin-C1"): the part before '-'.
SnpProduct SnpProductFromName(std::string_view product_name);

// TCB_VERSION (64-bit) decoded with a product's layout:
//   Milan/Genoa: byte 0 bootloader, 1 tee, 2-5 reserved, 6 snp, 7 microcode;
//   Turin:       byte 0 fmc, 1 bootloader, 2 tee, 3 snp, 4-6 reserved, 7 microcode.
struct SnpTcbVersion {
  uint64_t raw = 0;
  uint8_t bootloader = 0;
  uint8_t tee = 0;
  uint8_t snp = 0;
  uint8_t microcode = 0;
  std::optional<uint8_t> fmc;  // Turin only

  static SnpTcbVersion Decode(uint64_t raw, SnpProduct product);
  bool operator==(const SnpTcbVersion&) const = default;
};

// Guest policy bits (ABI spec "GUEST_POLICY").
struct SnpGuestPolicy {
  uint64_t raw = 0;
  uint8_t abi_minor = 0;       // bits 0-7
  uint8_t abi_major = 0;       // bits 8-15
  bool smt = false;            // 16
  bool reserved_one = false;   // 17, must be 1 for a launch to succeed
  bool migrate_ma = false;     // 18
  bool debug = false;          // 19
  bool single_socket = false;  // 20
  bool cxl_allow = false;      // 21
  bool mem_aes_256_xts = false;     // 22
  bool rapl_dis = false;            // 23
  bool ciphertext_hiding = false;   // 24
  bool page_swap_disable = false;   // 25
  static SnpGuestPolicy Decode(uint64_t raw);
};

// PLATFORM_INFO bits.
struct SnpPlatformInfo {
  uint64_t raw = 0;
  bool smt_enabled = false;           // bit 0
  bool tsme_enabled = false;          // bit 1
  bool ecc_enabled = false;           // bit 2
  bool rapl_disabled = false;         // bit 3
  bool ciphertext_hiding_enabled = false;  // bit 4
  bool alias_check_complete = false;  // bit 5
  static SnpPlatformInfo Decode(uint64_t raw);
};

enum class SnpSigningKey : uint8_t { kVcek = 0, kVlek = 1, kNone = 7 };
std::string_view SnpSigningKeyName(SnpSigningKey key);  // "vcek", "vlek", "none"

// A parsed report. Owns copies of every field; TCB fields are kept raw (their layout depends on
// the product, which a v2 report does not state) and decoded with SnpTcbVersion::Decode.
struct SnpAttestationReport {
  uint32_t version = 0;
  uint32_t guest_svn = 0;
  SnpGuestPolicy policy;
  std::array<uint8_t, 16> family_id{};
  std::array<uint8_t, 16> image_id{};
  uint32_t vmpl = 0;
  uint32_t signature_algo = 0;
  uint64_t current_tcb = 0;
  SnpPlatformInfo platform_info;
  uint32_t key_info = 0;  // raw word at 0x48
  bool author_key_en = false;
  bool mask_chip_key = false;
  SnpSigningKey signing_key = SnpSigningKey::kVcek;
  std::array<uint8_t, 64> report_data{};
  std::array<uint8_t, 48> measurement{};
  std::array<uint8_t, 32> host_data{};
  std::array<uint8_t, 48> id_key_digest{};
  std::array<uint8_t, 48> author_key_digest{};
  std::array<uint8_t, 32> report_id{};
  std::array<uint8_t, 32> report_id_ma{};
  uint64_t reported_tcb = 0;
  // v3+ only (nullopt for v2).
  std::optional<uint8_t> cpuid_fam_id;
  std::optional<uint8_t> cpuid_mod_id;
  std::optional<uint8_t> cpuid_step;
  std::array<uint8_t, 64> chip_id{};
  uint64_t committed_tcb = 0;
  uint8_t current_build = 0, current_minor = 0, current_major = 0;
  uint8_t committed_build = 0, committed_minor = 0, committed_major = 0;
  uint64_t launch_tcb = 0;
  // v5 only.
  std::optional<uint64_t> launch_mit_vector;
  std::optional<uint64_t> current_mit_vector;
  // Signature (ECDSA P-384): r and s exactly as stored, little-endian, 72 bytes each.
  std::array<uint8_t, 72> signature_r{};
  std::array<uint8_t, 72> signature_s{};

  // Product from the CPUID fields (kUnknown for v2 or an unknown family/model).
  SnpProduct ProductFromCpuid() const;
};

// Parses exactly kSnpReportSize bytes. Validates in order: size ("snp_report_size"), version
// 2, 3 or 5 ("unsupported_snp_version"), signing_key value 0, 1 or 7 ("snp_invalid_signing_key"),
// reserved fields zero ("snp_reserved_nonzero", naming the offset). All failures are
// InvalidArgument. The signed part is `bytes.first(kSnpSignedSize)` of the input.
Result<SnpAttestationReport> ParseSnpReport(std::span<const uint8_t> bytes);

}  // namespace vouch::evidence
