// libFuzzer target: image metadata parsing, image references and tar streams (hostile layers).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "oci/image.h"
#include "oci/registry.h"
#include "oci/tar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)vouch::oci::ParseManifest(in);
  (void)vouch::oci::ParseIndex(in);
  (void)vouch::oci::ImageLocation::Parse(in.substr(0, 512));
  std::string scheme;
  (void)vouch::oci::RegistryClient::ParseChallenge(in.substr(0, 1024), &scheme);
  vouch::oci::TarLimits limits;
  limits.max_total_bytes = 1 << 20;
  (void)vouch::oci::ReadTarMemory(in, limits, [](const vouch::oci::TarEntry& e, vouch::oci::EntryData& d) {
    uint8_t buf[4096];
    if (e.type == vouch::oci::TarEntry::Type::kFile) {
      while (true) {
        auto n = d.Read(buf);
        if (!n.ok() || *n == 0) break;
      }
    }
    (void)vouch::oci::ResolveSymlink(e.path, e.link_target);
    return vouch::Status::Ok();
  });
  return 0;
}
