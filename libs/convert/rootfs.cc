#include "convert/rootfs.h"

#include <vector>

namespace vouch::convert {

using oci::TarEntry;

void RootFs::RemoveTree(const std::string& path, bool include_self) {
  // Everything below `path` was put there by lower layers or by this one; OCI says whiteouts and
  // opaque markers apply to lower layers only, so entries of the current layer survive.
  const std::string prefix = path.empty() ? std::string() : path + "/";
  for (auto it = nodes_.lower_bound(prefix); it != nodes_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    if (it->second.layer < layer_) {
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  if (include_self) {
    auto self = nodes_.find(path);
    if (self != nodes_.end() && self->second.layer < layer_) nodes_.erase(self);
  }
}

Status RootFs::Apply(const TarEntry& e, oci::EntryData& data) {
  if (e.path.empty()) return Status::Ok();  // the root directory
  const size_t slash = e.path.rfind('/');
  const std::string parent = slash == std::string::npos ? std::string() : e.path.substr(0, slash);
  const std::string base = slash == std::string::npos ? e.path : e.path.substr(slash + 1);

  // No entry may be written through a symlink of the merged tree.
  for (size_t pos = e.path.find('/'); pos != std::string::npos; pos = e.path.find('/', pos + 1)) {
    auto it = nodes_.find(e.path.substr(0, pos));
    if (it == nodes_.end()) continue;
    if (it->second.type == TarEntry::Type::kSymlink) {
      return InvalidArgument("layer entry " + e.path + " passes through the symlink " + it->first,
                             "hostile_layer");
    }
    if (it->second.type != TarEntry::Type::kDir) {
      // A lower file is replaced by an implicit directory.
      nodes_.erase(it);
    }
  }

  if (base.rfind(".wh.", 0) == 0) {
    if (base == ".wh..wh..opq") {
      RemoveTree(parent, /*include_self=*/false);
    } else {
      const std::string victim = (parent.empty() ? std::string() : parent + "/") + base.substr(4);
      if (base.size() == 4) return InvalidArgument("whiteout " + e.path + " names nothing", "hostile_layer");
      RemoveTree(victim, /*include_self=*/true);
    }
    return Status::Ok();
  }

  FsNode node;
  node.type = e.type;
  node.mode = e.mode;
  node.uid = e.uid;
  node.gid = e.gid;
  node.layer = layer_;
  switch (e.type) {
    case TarEntry::Type::kDir: {
      auto it = nodes_.find(e.path);
      if (it != nodes_.end() && it->second.type == TarEntry::Type::kDir) {
        it->second = node;  // metadata update; keeps the children
        return Status::Ok();
      }
      break;
    }
    case TarEntry::Type::kFile: {
      crypto::Sha256Hasher h;
      std::vector<uint8_t> buf(256 * 1024);
      uint64_t total = 0;
      while (true) {
        VOUCH_ASSIGN_OR_RETURN(size_t n, data.Read(buf));
        if (n == 0) break;
        h.Update(std::span<const uint8_t>(buf.data(), n));
        total += n;
      }
      if (total != e.size) {
        return DataLoss("layer entry " + e.path + " has " + std::to_string(total) + " bytes, header says " +
                            std::to_string(e.size),
                        "corrupt_layer");
      }
      node.size = total;
      node.sha256 = h.Finish();
      content_bytes_ += total;
      break;
    }
    case TarEntry::Type::kSymlink:
      node.link_target = e.link_target;
      break;
    case TarEntry::Type::kHardlink: {
      auto it = nodes_.find(e.link_target);
      if (it == nodes_.end() || it->second.type == TarEntry::Type::kDir) {
        return InvalidArgument("hard link " + e.path + " points at " + e.link_target +
                                   ", which is not a file present in the image",
                               "hostile_layer");
      }
      node = it->second;
      node.layer = layer_;
      // A hard link to a symlink is a symlink at the new path: its relative target must stay
      // inside the root from there too.
      if (node.type == TarEntry::Type::kSymlink) {
        auto resolved = oci::ResolveSymlink(e.path, node.link_target);
        if (!resolved.ok()) return resolved.status().WithContext("hard link " + e.path + " to a symlink");
      }
      break;
    }
    case TarEntry::Type::kFifo:
      break;
  }
  // A non-directory replaces whatever was there, including a whole directory tree.
  auto existing = nodes_.find(e.path);
  if (existing != nodes_.end() && existing->second.type == TarEntry::Type::kDir) {
    const std::string prefix = e.path + "/";
    for (auto it = nodes_.lower_bound(prefix); it != nodes_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
      it = nodes_.erase(it);
    }
  }
  nodes_[e.path] = std::move(node);
  return Status::Ok();
}

Status RootFs::ApplyLayerFile(const std::string& path, const oci::TarLimits& limits, std::string* diff_id) {
  ++layer_;
  return oci::ReadTarFile(
      path, limits, [this](const TarEntry& e, oci::EntryData& d) { return Apply(e, d); }, diff_id);
}

Status RootFs::ApplyLayerMemory(std::string_view bytes, const oci::TarLimits& limits, std::string* diff_id) {
  ++layer_;
  return oci::ReadTarMemory(
      bytes, limits, [this](const TarEntry& e, oci::EntryData& d) { return Apply(e, d); }, diff_id);
}

}  // namespace vouch::convert
