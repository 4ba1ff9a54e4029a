// libFuzzer target for the SEV-SNP certificate table parser and the evidence split
// (libs/evidence/snp_cert_table.h). Seed corpus: fuzz/snp_cert_table_corpus/ (the sev-snp sim's
// table with its real VCEK/ASK/ARK DER and a whole sim evidence blob, a small synthetic table, an
// all-zero page, a terminator-only table).
// Checks beyond "no crash": a table that parses has in-range, non-overlapping, non-empty entries
// with distinct GUIDs, and rebuilding it from its entries gives a table that parses to the same
// entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "evidence/snp_cert_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vouch::evidence;
  std::span<const uint8_t> in(data, size);
  auto split = SplitSnpEvidence(in);
  if (split.ok() && split->report.size() + split->cert_table.size() != size) std::abort();
  auto table = ParseSnpCertTable(in);
  if (!table.ok()) {
    if (table.status().reason().empty()) std::abort();
    return 0;
  }
  if (table->entries.size() > kSnpCertTableMaxEntries) std::abort();
  std::vector<SnpCertTableInput> rebuild;
  for (size_t i = 0; i < table->entries.size(); ++i) {
    const SnpCertEntry& e = table->entries[i];
    if (e.length == 0 || e.data.size() != e.length) std::abort();
    if (e.offset < table->header_size || static_cast<uint64_t>(e.offset) + e.length > size) std::abort();
    for (size_t j = 0; j < i; ++j) {
      const SnpCertEntry& o = table->entries[j];
      if (o.guid == e.guid) std::abort();
      if (e.offset < o.offset + static_cast<uint64_t>(o.length) && o.offset < e.offset + static_cast<uint64_t>(e.length)) {
        std::abort();
      }
    }
    rebuild.push_back({e.guid, e.data});
  }
  auto built = BuildSnpCertTable(rebuild);
  if (!built.ok()) std::abort();
  auto again = ParseSnpCertTable(*built);
  if (!again.ok() || again->entries.size() != table->entries.size()) std::abort();
  for (size_t i = 0; i < again->entries.size(); ++i) {
    if (again->entries[i].guid != table->entries[i].guid || again->entries[i].data != table->entries[i].data) {
      std::abort();
    }
  }
  return 0;
}
