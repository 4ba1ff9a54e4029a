// Conversion throughput vs. the physical floor (BENCHMARKS.md "Conversion").
//   bench_convert oci:DIR:TAG RUNTIME WORKDIR [repeats]
// For the same image, in the same process: (a) the floor, one pass that decompresses every layer
// and SHA-256-hashes the decompressed stream (libarchive raw + OpenSSL, one thread), and (b)
// convert::Convert from the layout to a new layout in WORKDIR (digest checks, tar parsing,
// overlay, per-file hashing, manifest, signing, new layer, output). Prints seconds and MB/s of
// uncompressed layer bytes for each, and the ratio.
#include <archive.h>
#include <archive_entry.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "base/encoding.h"
#include "convert/convert.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "oci/blob_store.h"
#include "oci/transport.h"

using namespace vouch;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Decompresses one blob and hashes the output; returns the uncompressed size.
uint64_t DecompressAndHash(const std::string& path) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_none(a);
  archive_read_support_format_raw(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), archive_error_string(a));
    std::exit(1);
  }
  archive_entry* e;
  archive_read_next_header(a, &e);
  crypto::Sha256Hasher h;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n <= 0) break;
    h.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
  }
  auto d = h.Finish();
  (void)d;
  archive_read_free(a);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s oci:DIR:TAG RUNTIME WORKDIR [repeats]\n", argv[0]);
    return 2;
  }
  const std::string input = argv[1], runtime = argv[2], work = argv[3];
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
  auto key = crypto::GenerateP256();
  for (int r = 0; r < repeats; ++r) {
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    // (a) floor
    auto store = *oci::BlobStore::Create(work + "/floor");
    auto img = oci::PullImage(*oci::ImageLocation::Parse(input), {}, *store);
    if (!img.ok()) {
      std::fprintf(stderr, "%s\n", img.status().ToString().c_str());
      return 1;
    }
    uint64_t compressed = 0, uncompressed = 0;
    double t0 = Now();
    for (const auto& l : img->manifest.layers) {
      compressed += l.size;
      uncompressed += DecompressAndHash(store->PathOf(l.digest));
    }
    double floor_s = Now() - t0;
    // (b) conversion
    convert::ConvertOptions o;
    o.input = input;
    o.output = "oci:" + work + "/out:bench";
    o.work_dir = work;
    o.runtime_path = runtime;
    o.signing_key = key->get();
    o.base.rw_dirs = convert::DefaultRwDirs();
    o.base.certificates.push_back({});
    double t1 = Now();
    auto res = convert::Convert(o);
    double conv_s = Now() - t1;
    if (!res.ok()) {
      std::fprintf(stderr, "%s\n", res.status().ToString().c_str());
      return 1;
    }
    const double mb = static_cast<double>(uncompressed) / 1e6;
    std::printf("run %d: layers %.1f MB compressed, %.1f MB uncompressed, %zu protected files | floor %.2f s (%.0f MB/s) | "
                "convert %.2f s (%.0f MB/s) | ratio %.2f\n",
                r + 1, static_cast<double>(compressed) / 1e6, mb, res->protected_files, floor_s, mb / floor_s, conv_s,
                mb / conv_s, conv_s / floor_s);
    std::fflush(stdout);
  }
  std::filesystem::remove_all(work);
  return 0;
}
