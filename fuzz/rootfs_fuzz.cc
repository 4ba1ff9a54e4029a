// libFuzzer target: the converter's overlay tree (convert::RootFs) over hostile layers: whiteouts,
// opaque directories, hard links, symlinks, entries written through symlinks. The input is up to
// four tar streams (plain/gzip/zstd) separated by the marker "@@LAYER@@", applied in order.
// Odd layers are read as the converter reads them, also hashing the decompressed stream (the
// diff_id); a diff_id must then be "sha256:" and 64 hex digits. Invariants on what is accepted:
// every path is relative and normalised, hard links are resolved, no entry lies below a symlink,
// and no symlink points above the root.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "convert/rootfs.h"
#include "oci/tar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vouch::oci::TarEntry;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kMarker = "@@LAYER@@";
  vouch::oci::TarLimits limits;
  limits.max_total_bytes = 1 << 20;
  limits.max_entries = 4096;
  vouch::convert::RootFs fs;
  for (int layer = 0; layer < 4 && !in.empty(); ++layer) {
    size_t cut = in.find(kMarker);
    std::string_view one = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + kMarker.size());
    limits.counted_before = fs.content_bytes();
    std::string diff_id;
    if (!fs.ApplyLayerMemory(one, limits, layer % 2 == 1 ? &diff_id : nullptr).ok()) return 0;
    if (layer % 2 == 1 && (diff_id.size() != 71 || diff_id.compare(0, 7, "sha256:") != 0)) __builtin_trap();
  }
  for (const auto& [path, node] : fs.nodes()) {
    auto norm = vouch::oci::NormalizeEntryPath(path);
    if (path.empty() || !norm.ok() || *norm != path) __builtin_trap();
    if (node.type == TarEntry::Type::kHardlink) __builtin_trap();
    if (node.type == TarEntry::Type::kSymlink && !vouch::oci::ResolveSymlink(path, node.link_target).ok()) {
      __builtin_trap();
    }
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      auto parent = fs.nodes().find(path.substr(0, slash));
      if (parent != fs.nodes().end() && parent->second.type == TarEntry::Type::kSymlink) __builtin_trap();
    }
  }
  if (fs.content_bytes() > limits.max_total_bytes) __builtin_trap();
  return 0;
}
