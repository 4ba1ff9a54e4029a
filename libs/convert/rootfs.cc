#include "convert/rootfs.h"

#include <deque>
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

namespace {

std::deque<std::string> Components(std::string_view path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// `abs` with every symlink followed: the tree path ("usr/bin/app") of what it names, or
// NotFound / the escape error.
Result<std::string> FollowInTree(const std::map<std::string, FsNode>& nodes, std::string_view abs) {
  std::deque<std::string> todo = Components(abs);
  std::vector<std::string> done;
  int links = 0;
  auto joined = [&] {
    std::string p;
    for (const std::string& c : done) p += (p.empty() ? "" : "/") + c;
    return p;
  };
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (done.empty()) {
        return InvalidArgument("the entrypoint \"" + std::string(abs) + "\" resolves above the image's root",
                               "entrypoint_escapes_root");
      }
      done.pop_back();
      continue;
    }
    done.push_back(std::move(c));
    const std::string cur = joined();
    auto it = nodes.find(cur);
    if (it == nodes.end()) return NotFound("/" + cur + " does not exist", "entrypoint_not_found");
    if (it->second.type == oci::TarEntry::Type::kSymlink) {
      if (++links > 40) return InvalidArgument("too many symlinks resolving " + std::string(abs), "entrypoint_not_found");
      const std::string& target = it->second.link_target;
      done.pop_back();
      if (!target.empty() && target.front() == '/') done.clear();
      std::deque<std::string> more = Components(target);
      todo.insert(todo.begin(), more.begin(), more.end());
    } else if (it->second.type != oci::TarEntry::Type::kDir && !todo.empty()) {
      return NotFound("/" + cur + " is not a directory", "entrypoint_not_found");
    }
  }
  return joined();
}

}  // namespace

Result<std::string> ResolveProgram(const RootFs& fs, std::string_view name, std::string_view path_env,
                                   std::string_view workdir) {
  if (name.empty()) return InvalidArgument("the entrypoint is empty", "entrypoint_not_found");
  std::vector<std::string> candidates;
  if (name.find('/') != std::string_view::npos) {
    std::string wd = workdir.empty() ? std::string("/") : std::string(workdir);
    candidates.push_back(name.front() == '/' ? std::string(name) : wd + "/" + std::string(name));
  } else {
    // Relative PATH entries would depend on the working directory: skipped, as is an empty one.
    std::string_view p = path_env.empty() ? kDefaultPath : path_env;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find(':', i);
      if (j == std::string_view::npos) j = p.size();
      std::string_view dir = p.substr(i, j - i);
      if (!dir.empty() && dir.front() == '/') candidates.push_back(std::string(dir) + "/" + std::string(name));
      i = j + 1;
    }
  }
  for (const std::string& c : candidates) {
    auto resolved = FollowInTree(fs.nodes(), c);
    if (!resolved.ok()) {
      if (resolved.status().code() == StatusCode::kNotFound) continue;
      return resolved.status();
    }
    auto it = fs.nodes().find(*resolved);
    if (it == fs.nodes().end() || it->second.type != oci::TarEntry::Type::kFile || (it->second.mode & 0111) == 0) {
      continue;
    }
    return "/" + *resolved;
  }
  return NotFound("the entrypoint \"" + std::string(name) + "\" is not an executable file in the image" +
                      (name.find('/') != std::string_view::npos
                           ? std::string()
                           : " on its PATH (" + std::string(path_env.empty() ? kDefaultPath : path_env) + ")"),
                  "entrypoint_not_found");
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
