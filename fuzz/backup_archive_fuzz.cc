// libFuzzer target for the backup archive parser (libs/backup/archive_format.h).
// Seed corpus: fuzz/backup_archive_corpus/ (small archives made by
// fuzz/backup_archive_corpus/make_seeds.py, which follows the documented layout).
// Checks beyond "no crash": an archive that parses has one content per manifest file, each the
// size the manifest says, only acceptable member paths, and re-encodes to the same bytes'
// contents; every refusal carries the archive's reason code. Each input is parsed twice: as is,
// and with its trailer replaced by the right SHA-256, so mutations reach the manifest and content
// checks behind the archive checksum.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "backup/archive_format.h"
#include "crypto/digest.h"

namespace {

void Check(const uint8_t* data, size_t size) {
  using namespace vouch::backup;
  auto archive = ParseArchive(std::span<const uint8_t>(data, size));
  if (!archive.ok()) {
    if (archive.status().reason() != kArchiveCorrupt) std::abort();
    return;
  }
  if (archive->contents.size() != archive->manifest.files.size()) std::abort();
  std::vector<FileEntry> files;
  for (size_t i = 0; i < archive->contents.size(); ++i) {
    const auto& f = archive->manifest.files[i];
    if (archive->contents[i].size() != f.size || !IsValidMemberPath(f.path)) std::abort();
    files.push_back({f.path, f.mode, std::string(archive->contents[i].begin(), archive->contents[i].end())});
  }
  auto again = EncodeArchive(archive->manifest, files);
  if (!again.ok()) std::abort();
  auto reparsed = ParseArchive(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(again->data()), again->size()));
  if (!reparsed.ok() || reparsed->manifest.files.size() != files.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check(data, size);
  if (size >= vouch::backup::kTrailerBytes) {
    std::vector<uint8_t> fixed(data, data + size - vouch::backup::kTrailerBytes);
    auto sum = vouch::crypto::Sha256(std::span<const uint8_t>(fixed));
    fixed.insert(fixed.end(), sum.begin(), sum.end());
    Check(fixed.data(), fixed.size());
  }
  return 0;
}
