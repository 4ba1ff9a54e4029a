#include "evidence/snp_report.h"

#include <string>

#include "base/byte_reader.h"

namespace vouch::evidence {
namespace {

namespace off = snp_offsets;

std::string Hex(size_t v) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v & 0xF]);
    v >>= 4;
  } while (v != 0);
  while (out.size() < 3) out.insert(out.begin(), '0');
  return "0x" + out;
}

bool Bit(uint64_t v, unsigned bit) { return ((v >> bit) & 1U) != 0; }

// Reads a fixed-size field at the cursor, which must be at `expected_offset` (the layout is
// read strictly in order; the offset check keeps the code and the spec table in step).
template <size_t N>
bool ReadField(ByteReader& r, size_t expected_offset, std::array<uint8_t, N>& out) {
  if (r.offset() != expected_offset) return false;
  Bytes b;
  if (!r.ReadBytes(N, &b)) return false;
  for (size_t i = 0; i < N; ++i) out[i] = b[i];
  return true;
}

// The first nonzero byte in [begin, end) of `bytes`, or end.
size_t FirstNonZero(std::span<const uint8_t> bytes, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (bytes[i] != 0) return i;
  }
  return end;
}

Status ReservedNonZero(size_t at, size_t begin, size_t end) {
  return InvalidArgument("SNP report reserved field " + Hex(begin) + ".." + Hex(end - 1) +
                             " must be zero, byte " + Hex(at) + " is not",
                         "snp_reserved_nonzero");
}

}  // namespace

std::string_view SnpProductName(SnpProduct product) {
  switch (product) {
    case SnpProduct::kMilan: return "Milan";
    case SnpProduct::kGenoa: return "Genoa";
    case SnpProduct::kTurin: return "Turin";
    case SnpProduct::kUnknown: break;
  }
  return "unknown";
}

SnpProduct SnpProductFromCpuid(uint8_t family, uint8_t model) {
  if (family == 0x19) {
    if (model <= 0x0F) return SnpProduct::kMilan;
    if ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF)) return SnpProduct::kGenoa;
    return SnpProduct::kUnknown;
  }
  if (family == 0x1A && model <= 0x1F) return SnpProduct::kTurin;
  return SnpProduct::kUnknown;
}

SnpProduct SnpProductFromName(std::string_view product_name) {
  std::string_view line = product_name.substr(0, product_name.find('-'));
  if (line == "Milan") return SnpProduct::kMilan;
  if (line == "Genoa") return SnpProduct::kGenoa;
  if (line == "Turin") return SnpProduct::kTurin;
  return SnpProduct::kUnknown;
}

SnpTcbVersion SnpTcbVersion::Decode(uint64_t raw, SnpProduct product) {
  auto byte = [raw](unsigned i) { return static_cast<uint8_t>((raw >> (8 * i)) & 0xFF); };
  SnpTcbVersion t;
  t.raw = raw;
  if (product == SnpProduct::kTurin) {
    t.fmc = byte(0);
    t.bootloader = byte(1);
    t.tee = byte(2);
    t.snp = byte(3);
    t.microcode = byte(7);
  } else {
    t.bootloader = byte(0);
    t.tee = byte(1);
    t.snp = byte(6);
    t.microcode = byte(7);
  }
  return t;
}

SnpGuestPolicy SnpGuestPolicy::Decode(uint64_t raw) {
  SnpGuestPolicy p;
  p.raw = raw;
  p.abi_minor = static_cast<uint8_t>(raw & 0xFF);
  p.abi_major = static_cast<uint8_t>((raw >> 8) & 0xFF);
  p.smt = Bit(raw, 16);
  p.reserved_one = Bit(raw, 17);
  p.migrate_ma = Bit(raw, 18);
  p.debug = Bit(raw, 19);
  p.single_socket = Bit(raw, 20);
  p.cxl_allow = Bit(raw, 21);
  p.mem_aes_256_xts = Bit(raw, 22);
  p.rapl_dis = Bit(raw, 23);
  p.ciphertext_hiding = Bit(raw, 24);
  p.page_swap_disable = Bit(raw, 25);
  return p;
}

SnpPlatformInfo SnpPlatformInfo::Decode(uint64_t raw) {
  SnpPlatformInfo p;
  p.raw = raw;
  p.smt_enabled = Bit(raw, 0);
  p.tsme_enabled = Bit(raw, 1);
  p.ecc_enabled = Bit(raw, 2);
  p.rapl_disabled = Bit(raw, 3);
  p.ciphertext_hiding_enabled = Bit(raw, 4);
  p.alias_check_complete = Bit(raw, 5);
  return p;
}

std::string_view SnpSigningKeyName(SnpSigningKey key) {
  switch (key) {
    case SnpSigningKey::kVcek: return "vcek";
    case SnpSigningKey::kVlek: return "vlek";
    case SnpSigningKey::kNone: return "none";
  }
  return "unknown";
}

SnpProduct SnpAttestationReport::ProductFromCpuid() const {
  if (!cpuid_fam_id.has_value() || !cpuid_mod_id.has_value()) return SnpProduct::kUnknown;
  return SnpProductFromCpuid(*cpuid_fam_id, *cpuid_mod_id);
}

Result<SnpAttestationReport> ParseSnpReport(std::span<const uint8_t> bytes) {
  // 1. Size.
  if (bytes.size() != kSnpReportSize) {
    return InvalidArgument("SNP report is " + std::to_string(bytes.size()) + " bytes, expected " +
                               std::to_string(kSnpReportSize),
                           "snp_report_size");
  }
  ByteReader r(bytes);
  SnpAttestationReport rep;
  // 2. Version. v2: ABI 1.51; v3 adds the CPUID fields; v5 the mitigation vectors. (v4 was
  // never published as a report layout; it is rejected rather than guessed.)
  if (!r.ReadU32(&rep.version)) return Internal("SNP report: short read at version");
  if (rep.version != 2 && rep.version != 3 && rep.version != 5) {
    return InvalidArgument("SNP report version is " + std::to_string(rep.version) + ", expected 2, 3 or 5",
                           "unsupported_snp_version");
  }
  // 3. Fields, in layout order.
  uint64_t policy = 0, platform_info = 0;
  uint32_t reserved0 = 0;
  bool ok = r.ReadU32(&rep.guest_svn) && r.ReadU64(&policy) && ReadField(r, off::kFamilyId, rep.family_id) &&
            ReadField(r, off::kImageId, rep.image_id) && r.ReadU32(&rep.vmpl) && r.ReadU32(&rep.signature_algo) &&
            r.ReadU64(&rep.current_tcb) && r.ReadU64(&platform_info) && r.offset() == off::kKeyInfo &&
            r.ReadU32(&rep.key_info) && r.ReadU32(&reserved0) && ReadField(r, off::kReportData, rep.report_data) &&
            ReadField(r, off::kMeasurement, rep.measurement) && ReadField(r, off::kHostData, rep.host_data) &&
            ReadField(r, off::kIdKeyDigest, rep.id_key_digest) &&
            ReadField(r, off::kAuthorKeyDigest, rep.author_key_digest) &&
            ReadField(r, off::kReportId, rep.report_id) && ReadField(r, off::kReportIdMa, rep.report_id_ma) &&
            r.offset() == off::kReportedTcb && r.ReadU64(&rep.reported_tcb);
  uint8_t fam = 0, mod = 0, step = 0;
  ok = ok && r.offset() == off::kCpuidFamId && r.ReadU8(&fam) && r.ReadU8(&mod) && r.ReadU8(&step) &&
       r.Skip(off::kChipId - off::kReserved1) && ReadField(r, off::kChipId, rep.chip_id) &&
       r.offset() == off::kCommittedTcb && r.ReadU64(&rep.committed_tcb) && r.ReadU8(&rep.current_build) &&
       r.ReadU8(&rep.current_minor) && r.ReadU8(&rep.current_major) && r.Skip(1) &&
       r.ReadU8(&rep.committed_build) && r.ReadU8(&rep.committed_minor) && r.ReadU8(&rep.committed_major) &&
       r.Skip(1) && r.offset() == off::kLaunchTcb && r.ReadU64(&rep.launch_tcb);
  uint64_t launch_mit = 0, current_mit = 0;
  ok = ok && r.offset() == off::kLaunchMitVector && r.ReadU64(&launch_mit) && r.ReadU64(&current_mit) &&
       r.Skip(off::kSignatureR - off::kReserved4) && ReadField(r, off::kSignatureR, rep.signature_r) &&
       ReadField(r, off::kSignatureS, rep.signature_s) && r.offset() == off::kSignatureReserved &&
       r.Skip(kSnpReportSize - off::kSignatureReserved) && r.empty();
  if (!ok) return Internal("SNP report: layout walk failed at offset " + Hex(r.offset()));

  rep.policy = SnpGuestPolicy::Decode(policy);
  rep.platform_info = SnpPlatformInfo::Decode(platform_info);
  rep.author_key_en = (rep.key_info & 1U) != 0;
  rep.mask_chip_key = (rep.key_info & 2U) != 0;
  const uint32_t signing_key = (rep.key_info >> 2) & 7U;
  if (signing_key != 0 && signing_key != 1 && signing_key != 7) {
    return InvalidArgument("SNP report signing_key is " + std::to_string(signing_key) + ", expected 0 (VCEK), 1 (VLEK) or 7 (none)",
                           "snp_invalid_signing_key");
  }
  rep.signing_key = static_cast<SnpSigningKey>(signing_key);
  if (rep.version >= 3) {
    rep.cpuid_fam_id = fam;
    rep.cpuid_mod_id = mod;
    rep.cpuid_step = step;
  }
  if (rep.version >= 5) {
    rep.launch_mit_vector = launch_mit;
    rep.current_mit_vector = current_mit;
  }

  // 4. Reserved (must-be-zero) fields. They are signed (except the signature's own padding),
  // so firmware never sets them; a nonzero byte means a layout this parser does not know.
  if ((rep.key_info >> 5) != 0) {
    return InvalidArgument("SNP report key info word at " + Hex(off::kKeyInfo) + " has reserved bits 5-31 set",
                           "snp_reserved_nonzero");
  }
  struct Range {
    size_t begin, end;
  };
  const Range ranges[] = {
      {off::kReserved0, off::kReportData},
      {rep.version >= 3 ? off::kReserved1 : off::kCpuidFamId, off::kChipId},
      {off::kCurrentMajor + 1, off::kCommittedBuild},
      {off::kCommittedMajor + 1, off::kLaunchTcb},
      {rep.version >= 5 ? off::kReserved4 : off::kLaunchMitVector, off::kSignatureR},
      {off::kSignatureReserved, kSnpReportSize},
  };
  for (const Range& range : ranges) {
    size_t at = FirstNonZero(bytes, range.begin, range.end);
    if (at != range.end) return ReservedNonZero(at, range.begin, range.end);
  }
  return rep;
}

}  // namespace vouch::evidence
