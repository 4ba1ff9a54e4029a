#pragma once

// The SEV-SNP certificate table (AMD GHCB specification 56421, §4.1.8.1 "SNP Extended Guest
// Request"; Linux configfs-tsm `auxblob` of the `sev_guest` provider), and the SEV-SNP evidence
// blob vouch carries on the wire: the 1184-byte ATTESTATION_REPORT followed directly by that
// table (absent when the host supplies no certificates). Layout and the rules below in
// docs/formats/snp-cert-table.md.
//
// Table layout: entries of 24 bytes {GUID[16], offset u32 LE, length u32 LE}, terminated by an
// all-zero entry; offsets are relative to the table start; the certificates (DER) follow the
// terminator. GUIDs are stored in RFC 4122 byte order (the order of the text form, as AMD's
// sev-host tools, go-sev-guest and virtee write them).
//
// A pure, bounds-checked parser and builder: no crypto, no I/O. Thread-safe (no state); never
// throws. Every failure is InvalidArgument with one of the stable reasons below.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::evidence {

// Stable failure reasons (Status::reason()).
inline constexpr std::string_view kSnpCertTableTruncated = "snp_cert_table_truncated";      // no terminator
inline constexpr std::string_view kSnpCertTableTooLarge = "snp_cert_table_too_large";       // size / count limits
inline constexpr std::string_view kSnpCertTableBadTerminator = "snp_cert_table_bad_terminator";  // zero GUID, nonzero offset/length
inline constexpr std::string_view kSnpCertTableEntryOutOfRange = "snp_cert_table_entry_out_of_range";
inline constexpr std::string_view kSnpCertTableEmptyEntry = "snp_cert_table_empty_entry";   // length 0
inline constexpr std::string_view kSnpCertTableOverlap = "snp_cert_table_overlap";
inline constexpr std::string_view kSnpCertTableDuplicateGuid = "snp_cert_table_duplicate_guid";
inline constexpr std::string_view kSnpEvidenceTruncated = "snp_evidence_truncated";  // blob < 1184 bytes

inline constexpr size_t kSnpCertTableEntrySize = 24;
// Limits (far above what a host supplies: 3-4 certificates of ~1.5 KiB): a table larger than
// kSnpCertTableMaxSize bytes or with more than kSnpCertTableMaxEntries entries (terminator not
// counted) is refused with kSnpCertTableTooLarge.
inline constexpr size_t kSnpCertTableMaxEntries = 64;
inline constexpr size_t kSnpCertTableMaxSize = 64 * 1024;

using SnpGuid = std::array<uint8_t, 16>;

// GHCB-defined GUIDs, RFC 4122 byte order.
// VCEK 63da758d-e664-4564-adc5-f4b93be8accd
inline constexpr SnpGuid kSnpGuidVcek = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                         0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
// VLEK a8074bc2-a25a-483e-aae6-39c045a0b8a1
inline constexpr SnpGuid kSnpGuidVlek = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                         0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
// ASK (or ASVK, for a VLEK) 4ab7b379-bbac-4fe4-a02f-05aef327c782
inline constexpr SnpGuid kSnpGuidAsk = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                        0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
// ARK c0b406a4-a803-4952-9743-3fb6014cd0ae
inline constexpr SnpGuid kSnpGuidArk = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                        0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

enum class SnpCertKind { kVcek, kVlek, kAsk, kArk, kOther };
std::string_view SnpCertKindName(SnpCertKind kind);  // "vcek", "vlek", "ask", "ark", "other"
SnpCertKind SnpCertKindOf(const SnpGuid& guid);
// The GUID of a known kind (kOther has none: nullopt).
std::optional<SnpGuid> SnpGuidOf(SnpCertKind kind);
// "63da758d-e664-4564-adc5-f4b93be8accd".
std::string FormatSnpGuid(const SnpGuid& guid);

struct SnpCertEntry {
  SnpGuid guid{};
  SnpCertKind kind = SnpCertKind::kOther;
  uint32_t offset = 0;  // from the table start
  uint32_t length = 0;
  std::vector<uint8_t> data;  // a copy of the certificate bytes (DER as hosts supply them)
};

// A parsed table. Owns its bytes.
struct SnpCertTable {
  std::vector<SnpCertEntry> entries;  // in table order, terminator excluded
  size_t header_size = 0;             // (entries + 1) * 24
  size_t trailing_bytes = 0;          // bytes after the last certificate (page padding)

  // The entry of `kind` (first one; the parser refuses duplicate GUIDs), or null.
  const SnpCertEntry* Find(SnpCertKind kind) const;
};

// Parses a certificate table. Rules (docs/formats/snp-cert-table.md):
//  - an empty input, or one whose first entry is the terminator, is a valid empty table;
//  - input larger than kSnpCertTableMaxSize, or more than kSnpCertTableMaxEntries entries
//    before the terminator -> kSnpCertTableTooLarge;
//  - no all-zero terminator inside the input -> kSnpCertTableTruncated; an entry with a zero
//    GUID but nonzero offset or length -> kSnpCertTableBadTerminator;
//  - every entry: length > 0 (kSnpCertTableEmptyEntry), data inside the input and not inside the
//    entry headers (kSnpCertTableEntryOutOfRange), no two entries' data overlapping
//    (kSnpCertTableOverlap), no GUID twice (kSnpCertTableDuplicateGuid);
//  - unknown GUIDs are kept (kind kOther); gaps between certificates and bytes after the last one
//    are tolerated (hosts hand over page-sized buffers), the latter counted in trailing_bytes.
Result<SnpCertTable> ParseSnpCertTable(std::span<const uint8_t> bytes);

// One certificate to put in a table.
struct SnpCertTableInput {
  SnpGuid guid{};
  std::span<const uint8_t> data;
};
// Builds a table: the entries in the given order, the terminator, then each certificate in the
// same order, back to back (no padding). Refuses an empty certificate, a zero GUID, a duplicate
// GUID, or a result the parser would refuse for its size. An empty input gives a table that
// holds only the terminator (24 zero bytes).
Result<std::vector<uint8_t>> BuildSnpCertTable(std::span<const SnpCertTableInput> certs);

// SEV-SNP evidence as it travels: report ‖ optional certificate table. Views into the input
// (the caller keeps the bytes alive).
struct SnpEvidenceParts {
  std::span<const uint8_t> report;      // exactly kSnpReportSize (1184) bytes
  std::span<const uint8_t> cert_table;  // the rest; empty when no table follows
};
// Splits a blob: fewer than 1184 bytes -> kSnpEvidenceTruncated; more than 1184 +
// kSnpCertTableMaxSize -> kSnpCertTableTooLarge. Neither part is parsed here.
Result<SnpEvidenceParts> SplitSnpEvidence(std::span<const uint8_t> blob);

}  // namespace vouch::evidence
