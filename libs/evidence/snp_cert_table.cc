#include "evidence/snp_cert_table.h"

#include <algorithm>
#include <string>

#include "base/byte_reader.h"
#include "evidence/snp_report.h"

namespace vouch::evidence {
namespace {

Status Bad(std::string_view reason, std::string message) {
  return InvalidArgument("SNP certificate table: " + std::move(message), std::string(reason));
}

bool IsZero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

std::string_view SnpCertKindName(SnpCertKind kind) {
  switch (kind) {
    case SnpCertKind::kVcek: return "vcek";
    case SnpCertKind::kVlek: return "vlek";
    case SnpCertKind::kAsk: return "ask";
    case SnpCertKind::kArk: return "ark";
    case SnpCertKind::kOther: break;
  }
  return "other";
}

SnpCertKind SnpCertKindOf(const SnpGuid& guid) {
  if (guid == kSnpGuidVcek) return SnpCertKind::kVcek;
  if (guid == kSnpGuidVlek) return SnpCertKind::kVlek;
  if (guid == kSnpGuidAsk) return SnpCertKind::kAsk;
  if (guid == kSnpGuidArk) return SnpCertKind::kArk;
  return SnpCertKind::kOther;
}

std::optional<SnpGuid> SnpGuidOf(SnpCertKind kind) {
  switch (kind) {
    case SnpCertKind::kVcek: return kSnpGuidVcek;
    case SnpCertKind::kVlek: return kSnpGuidVlek;
    case SnpCertKind::kAsk: return kSnpGuidAsk;
    case SnpCertKind::kArk: return kSnpGuidArk;
    case SnpCertKind::kOther: break;
  }
  return std::nullopt;
}

std::string FormatSnpGuid(const SnpGuid& guid) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < guid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kDigits[guid[i] >> 4]);
    out.push_back(kDigits[guid[i] & 0xF]);
  }
  return out;
}

const SnpCertEntry* SnpCertTable::Find(SnpCertKind kind) const {
  for (const auto& e : entries) {
    if (e.kind == kind) return &e;
  }
  return nullptr;
}

Result<SnpCertTable> ParseSnpCertTable(std::span<const uint8_t> bytes) {
  SnpCertTable table;
  if (bytes.empty()) return table;
  if (bytes.size() > kSnpCertTableMaxSize) {
    return Bad(kSnpCertTableTooLarge, std::to_string(bytes.size()) + " bytes, at most " +
                                          std::to_string(kSnpCertTableMaxSize) + " accepted");
  }
  // 1. The entry headers, up to and including the terminator.
  ByteReader r(bytes);
  bool terminated = false;
  while (!terminated) {
    Bytes guid_bytes;
    uint32_t offset = 0, length = 0;
    if (!r.ReadBytes(16, &guid_bytes) || !r.ReadU32(&offset) || !r.ReadU32(&length)) {
      return Bad(kSnpCertTableTruncated, "no all-zero terminating entry within its " + std::to_string(bytes.size()) +
                                             " bytes (after " + std::to_string(table.entries.size()) + " entries)");
    }
    if (IsZero(guid_bytes)) {
      if (offset != 0 || length != 0) {
        return Bad(kSnpCertTableBadTerminator, "entry " + std::to_string(table.entries.size()) +
                                                   " has a zero GUID but offset " + std::to_string(offset) +
                                                   " and length " + std::to_string(length) +
                                                   " (a terminator is all zero)");
      }
      terminated = true;
      break;
    }
    if (table.entries.size() == kSnpCertTableMaxEntries) {
      return Bad(kSnpCertTableTooLarge, "more than " + std::to_string(kSnpCertTableMaxEntries) + " entries");
    }
    SnpCertEntry e;
    std::copy(guid_bytes.begin(), guid_bytes.end(), e.guid.begin());
    e.kind = SnpCertKindOf(e.guid);
    e.offset = offset;
    e.length = length;
    table.entries.push_back(std::move(e));
  }
  table.header_size = r.offset();

  // 2. Each entry's data: non-empty, after the headers, inside the input, unique GUID.
  size_t end_of_data = table.header_size;
  for (size_t i = 0; i < table.entries.size(); ++i) {
    SnpCertEntry& e = table.entries[i];
    const std::string name = "entry " + std::to_string(i) + " (" + FormatSnpGuid(e.guid) + ")";
    if (e.length == 0) return Bad(kSnpCertTableEmptyEntry, name + " has length 0");
    const uint64_t begin = e.offset;
    const uint64_t end = begin + e.length;  // no overflow: both < 2^32
    if (begin < table.header_size || end > bytes.size()) {
      return Bad(kSnpCertTableEntryOutOfRange, name + " spans bytes " + std::to_string(begin) + ".." +
                                                   std::to_string(end) + ", outside " +
                                                   std::to_string(table.header_size) + ".." +
                                                   std::to_string(bytes.size()));
    }
    for (size_t j = 0; j < i; ++j) {
      const SnpCertEntry& o = table.entries[j];
      if (o.guid == e.guid) return Bad(kSnpCertTableDuplicateGuid, name + " repeats the GUID of entry " + std::to_string(j));
      const uint64_t ob = o.offset, oe = static_cast<uint64_t>(o.offset) + o.length;
      if (begin < oe && ob < end) {
        return Bad(kSnpCertTableOverlap, name + " overlaps entry " + std::to_string(j));
      }
    }
    auto data = bytes.subspan(static_cast<size_t>(begin), e.length);
    e.data.assign(data.begin(), data.end());
    end_of_data = std::max(end_of_data, static_cast<size_t>(end));
  }
  table.trailing_bytes = bytes.size() - end_of_data;
  return table;
}

Result<std::vector<uint8_t>> BuildSnpCertTable(std::span<const SnpCertTableInput> certs) {
  if (certs.size() > kSnpCertTableMaxEntries) {
    return Bad(kSnpCertTableTooLarge, std::to_string(certs.size()) + " certificates, at most " +
                                          std::to_string(kSnpCertTableMaxEntries));
  }
  const size_t header = (certs.size() + 1) * kSnpCertTableEntrySize;
  size_t total = header;
  for (size_t i = 0; i < certs.size(); ++i) {
    if (IsZero(certs[i].guid)) return Bad(kSnpCertTableBadTerminator, "certificate " + std::to_string(i) + " has a zero GUID");
    if (certs[i].data.empty()) return Bad(kSnpCertTableEmptyEntry, "certificate " + std::to_string(i) + " is empty");
    for (size_t j = 0; j < i; ++j) {
      if (certs[j].guid == certs[i].guid) {
        return Bad(kSnpCertTableDuplicateGuid, "GUID " + FormatSnpGuid(certs[i].guid) + " given twice");
      }
    }
    total += certs[i].data.size();
    if (total > kSnpCertTableMaxSize) {
      return Bad(kSnpCertTableTooLarge, "the certificates need more than " + std::to_string(kSnpCertTableMaxSize) + " bytes");
    }
  }
  std::vector<uint8_t> out;
  out.reserve(total);
  size_t offset = header;
  for (const auto& c : certs) {
    out.insert(out.end(), c.guid.begin(), c.guid.end());
    PutU32(out, static_cast<uint32_t>(offset));
    PutU32(out, static_cast<uint32_t>(c.data.size()));
    offset += c.data.size();
  }
  out.resize(header, 0);  // the terminator
  for (const auto& c : certs) out.insert(out.end(), c.data.begin(), c.data.end());
  return out;
}

Result<SnpEvidenceParts> SplitSnpEvidence(std::span<const uint8_t> blob) {
  if (blob.size() < kSnpReportSize) {
    return InvalidArgument("SEV-SNP evidence is " + std::to_string(blob.size()) + " bytes, expected at least " +
                               std::to_string(kSnpReportSize) + " (the report)",
                           std::string(kSnpEvidenceTruncated));
  }
  if (blob.size() - kSnpReportSize > kSnpCertTableMaxSize) {
    return Bad(kSnpCertTableTooLarge, std::to_string(blob.size() - kSnpReportSize) +
                                          " bytes follow the report, at most " + std::to_string(kSnpCertTableMaxSize) +
                                          " accepted");
  }
  SnpEvidenceParts parts;
  parts.report = blob.first(kSnpReportSize);
  parts.cert_table = blob.subspan(kSnpReportSize);
  return parts;
}

}  // namespace vouch::evidence
