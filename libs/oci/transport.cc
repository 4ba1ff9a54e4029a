#include "oci/transport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "oci/reasons.h"
#include "oci/registry.h"
#include "oci/tar.h"

namespace vouch::oci {
namespace {

using json = nlohmann::json;

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

Status CopyFile(const std::string& from, const std::string& to, const TransferHooks& hooks) {
  if (::link(from.c_str(), to.c_str()) == 0) {
    struct stat st {};
    if (::stat(to.c_str(), &st) == 0) hooks.Bytes(static_cast<uint64_t>(st.st_size));
    return Status::Ok();
  }
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Unavailable("opening " + from + ": " + std::strerror(errno), "io_error");
  std::string tmp = to + ".tmp";
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return Unavailable("creating " + tmp + ": " + std::strerror(errno), "io_error");
  }
  std::vector<char> buf(1 << 20);
  Status st;
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { st = Unavailable("reading " + from, "io_error"); break; }
    if (n == 0) break;
    if (hooks.Cancelled()) { st = CancelledStatus(); break; }
    hooks.Bytes(static_cast<uint64_t>(n));
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) { st = Unavailable("writing " + tmp + ": " + std::strerror(errno), "io_error"); break; }
      off += w;
    }
    if (!st.ok()) break;
  }
  ::close(in);
  if (::fsync(out) != 0 && st.ok()) st = Unavailable("fsync " + tmp, "io_error");
  ::close(out);
  if (st.ok() && ::rename(tmp.c_str(), to.c_str()) != 0) st = Unavailable("renaming " + tmp, "io_error");
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Result<std::string> FetchLayoutBlob(const std::string& dir, const Descriptor& d, BlobStore& store, size_t max) {
  const std::string path = dir + "/blobs/sha256/" + DigestHex(d.digest);
  VOUCH_RETURN_IF_ERROR(store.AddExternal(path, d.digest, d.size));
  return store.ReadSmall(d.digest, max);
}

}  // namespace

Status CancelledStatus() { return Aborted("cancelled", std::string(kCancelled)); }

Result<PulledImage> ResolveManifest(std::string bytes, std::string media_type_hint, const Platform& platform,
                                    const std::function<Result<std::string>(const Descriptor&)>& fetch) {
  VOUCH_ASSIGN_OR_RETURN(std::string type, DetectDocumentType(bytes, media_type_hint));
  if (IsIndexType(type)) {
    VOUCH_ASSIGN_OR_RETURN(ImageIndex index, ParseIndex(bytes));
    VOUCH_ASSIGN_OR_RETURN(Descriptor chosen, SelectPlatform(index, platform));
    VOUCH_ASSIGN_OR_RETURN(bytes, fetch(chosen));
    VOUCH_ASSIGN_OR_RETURN(type, DetectDocumentType(bytes, chosen.media_type));
    if (!IsManifestType(type)) {
      return InvalidArgument("index entry for " + platform.ToString() + " is not an image manifest (" + type + ")",
                             "unsupported_media_type");
    }
  }
  PulledImage img;
  VOUCH_ASSIGN_OR_RETURN(img.manifest, ParseManifest(bytes, type));
  img.manifest_digest = Sha256Digest(bytes);
  img.manifest_bytes = std::move(bytes);
  return img;
}

Result<PulledImage> PullImage(const ImageLocation& location, const TransportOptions& options, BlobStore& store) {
  switch (location.kind) {
    case ImageLocation::Kind::kOciLayout:
      return PullOciLayout(location, options, store);
    case ImageLocation::Kind::kDockerArchive:
      return PullDockerArchive(location, store);
    case ImageLocation::Kind::kRegistry:
      break;
  }
  VOUCH_ASSIGN_OR_RETURN(auto client, RegistryClient::Create(location, options));
  return client->Pull(store);
}

Result<std::string> PushImage(const ImageLocation& location, const ImageToPush& image, const TransportOptions& options,
                              BlobStore& store) {
  switch (location.kind) {
    case ImageLocation::Kind::kOciLayout:
      return PushOciLayout(location, image, store, options.hooks);
    case ImageLocation::Kind::kDockerArchive:
      return PushDockerArchive(location, image, store);
    case ImageLocation::Kind::kRegistry:
      break;
  }
  VOUCH_ASSIGN_OR_RETURN(auto client, RegistryClient::Create(location, options));
  return client->Push(image, store);
}

Result<Credentials> CredentialsFromAuthFile(const std::string& path, const std::string& registry) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, 1 << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + " is not a JSON object", "invalid_auth_file");
  Credentials c;
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return c;
  for (const std::string& key : {registry, "https://" + registry, "http://" + registry,
                                 registry == "registry-1.docker.io" ? std::string("https://index.docker.io/v1/")
                                                                    : std::string()}) {
    if (key.empty()) continue;
    auto it = auths->find(key);
    if (it == auths->end() || !it->is_object()) continue;
    if (auto a = it->find("auth"); a != it->end() && a->is_string()) {
      auto decoded = Base64Decode(a->get<std::string>());
      if (!decoded.ok()) return InvalidArgument(path + ": auth for " + registry + " is not base64", "invalid_auth_file");
      std::string up = ToString(*decoded);
      size_t colon = up.find(':');
      if (colon == std::string::npos) {
        return InvalidArgument(path + ": auth for " + registry + " is not user:password", "invalid_auth_file");
      }
      c.username = up.substr(0, colon);
      c.password = up.substr(colon + 1);
      return c;
    }
    if (auto u = it->find("username"); u != it->end() && u->is_string()) c.username = u->get<std::string>();
    if (auto p = it->find("password"); p != it->end() && p->is_string()) c.password = p->get<std::string>();
    return c;
  }
  return c;
}

// --- OCI image layout (image-spec image-layout.md) ----------------------------------------------

Result<PulledImage> PullOciLayout(const ImageLocation& location, const TransportOptions& options, BlobStore& store) {
  const std::string& dir = location.path;
  VOUCH_ASSIGN_OR_RETURN(std::string layout, ReadWholeFile(dir + "/oci-layout", 4096));
  json lj = json::parse(layout, nullptr, false);
  if (lj.is_discarded() || !lj.is_object() || !lj.contains("imageLayoutVersion")) {
    return InvalidArgument(dir + " is not an OCI image layout (oci-layout file malformed)", "invalid_image");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string index_bytes, ReadWholeFile(dir + "/index.json", kMaxManifestBytes));
  VOUCH_ASSIGN_OR_RETURN(ImageIndex index, ParseIndex(index_bytes));
  const Descriptor* chosen = nullptr;
  std::string tags;
  for (const Descriptor& d : index.manifests) {
    auto it = d.annotations.find(std::string(kRefNameAnnotation));
    std::string name = it == d.annotations.end() ? std::string() : it->second;
    if (!tags.empty()) tags += ", ";
    tags += name.empty() ? "(untagged)" : name;
    if (location.layout_tag.empty() || name == location.layout_tag) {
      if (chosen != nullptr && location.layout_tag.empty()) {
        return InvalidArgument(dir + " holds several images (" + tags + "...); name one as oci:DIR:TAG",
                               "ambiguous_image");
      }
      chosen = &d;
    }
  }
  if (chosen == nullptr) {
    return NotFound(dir + " has no image tagged \"" + location.layout_tag + "\" (it has: " +
                        (tags.empty() ? std::string("none") : tags) + ")",
                    std::string(kImageNotFound));
  }
  if (chosen->size > kMaxManifestBytes) return InvalidArgument("manifest too large", "image_too_large");
  auto fetch = [&](const Descriptor& d) -> Result<std::string> {
    if (d.size > kMaxManifestBytes) return InvalidArgument("manifest too large", "image_too_large");
    return FetchLayoutBlob(dir, d, store, kMaxManifestBytes);
  };
  VOUCH_ASSIGN_OR_RETURN(std::string top, fetch(*chosen));
  VOUCH_ASSIGN_OR_RETURN(PulledImage img, ResolveManifest(std::move(top), chosen->media_type, options.platform, fetch));
  const TransferHooks& hooks = options.hooks;
  if (hooks.on_manifest) hooks.on_manifest(img.manifest);
  VOUCH_ASSIGN_OR_RETURN(img.config_bytes, FetchLayoutBlob(dir, img.manifest.config, store, kMaxConfigBytes));
  hooks.Bytes(img.manifest.config.size);
  if (hooks.on_blob) hooks.on_blob(img.manifest.config);
  for (const Descriptor& l : img.manifest.layers) {
    if (hooks.Cancelled()) return CancelledStatus();
    if (l.size > options.max_blob_bytes) return InvalidArgument("layer " + l.digest + " is too large", "layer_too_large");
    VOUCH_RETURN_IF_ERROR(store.AddExternal(dir + "/blobs/sha256/" + DigestHex(l.digest), l.digest, l.size));
    hooks.Bytes(l.size);
    if (hooks.on_blob) hooks.on_blob(l);
  }
  return img;
}

Result<std::string> PushOciLayout(const ImageLocation& location, const ImageToPush& image, BlobStore& store,
                                  const TransferHooks& hooks) {
  const std::string& dir = location.path;
  VOUCH_RETURN_IF_ERROR(MakeDirs(dir + "/blobs/sha256", 0755));
  std::vector<const Descriptor*> blobs;
  for (const Descriptor& l : image.manifest.layers) blobs.push_back(&l);
  blobs.push_back(&image.manifest.config);
  for (const Descriptor* d : blobs) {
    if (hooks.Cancelled()) return CancelledStatus();
    const std::string to = dir + "/blobs/sha256/" + DigestHex(d->digest);
    if (FileExists(to)) {
      hooks.Bytes(d->size);
    } else {
      std::string from = store.PathOf(d->digest);
      if (from.empty()) return Internal("blob " + d->digest + " missing from the store");
      VOUCH_RETURN_IF_ERROR(CopyFile(from, to, hooks));
    }
    if (hooks.on_blob) hooks.on_blob(*d);
  }
  if (hooks.Cancelled()) return CancelledStatus();
  const std::string manifest_digest = Sha256Digest(image.manifest_bytes);
  VOUCH_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/blobs/sha256/" + DigestHex(manifest_digest), image.manifest_bytes, 0644));
  json index = {{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", json::array()}};
  if (FileExists(dir + "/index.json")) {
    VOUCH_ASSIGN_OR_RETURN(std::string old, ReadWholeFile(dir + "/index.json", kMaxManifestBytes));
    json oj = json::parse(old, nullptr, false);
    if (oj.is_discarded() || !oj.is_object() || !oj.contains("manifests") || !oj["manifests"].is_array()) {
      return InvalidArgument(dir + "/index.json exists and is not an image index", "invalid_image");
    }
    for (const json& m : oj["manifests"]) {
      std::string name = m.is_object() && m.contains("annotations") && m["annotations"].is_object()
                             ? m["annotations"].value(std::string(kRefNameAnnotation), std::string())
                             : std::string();
      if (name != location.layout_tag || location.layout_tag.empty()) {
        if (!location.layout_tag.empty() || !name.empty()) index["manifests"].push_back(m);
      }
    }
  }
  json entry = {{"mediaType", image.manifest_media_type},
                {"digest", manifest_digest},
                {"size", image.manifest_bytes.size()}};
  if (!location.layout_tag.empty()) entry["annotations"] = {{std::string(kRefNameAnnotation), location.layout_tag}};
  index["manifests"].push_back(entry);
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/index.json", index.dump(), 0644));
  return manifest_digest;
}

// --- docker save archives -----------------------------------------------------------------------

Result<PulledImage> PullDockerArchive(const ImageLocation& location, BlobStore& store) {
  std::map<std::string, std::string> files;     // name in archive -> digest
  std::map<std::string, std::string> symlinks;  // name -> resolved target name
  std::string manifest_json;
  std::vector<uint8_t> buf(1 << 20);
  TarLimits limits;
  Status st = ReadTarFile(location.path, limits, [&](const TarEntry& e, EntryData& data) -> Status {
    if (e.type == TarEntry::Type::kSymlink) {
      VOUCH_ASSIGN_OR_RETURN(symlinks[e.path], ResolveSymlink(e.path, e.link_target));
      return Status::Ok();
    }
    if (e.type != TarEntry::Type::kFile) return Status::Ok();
    if (e.path == "manifest.json") {
      if (e.size > kMaxManifestBytes) return InvalidArgument("manifest.json too large", "image_too_large");
      while (true) {
        VOUCH_ASSIGN_OR_RETURN(size_t n, data.Read(buf));
        if (n == 0) break;
        manifest_json.append(reinterpret_cast<const char*>(buf.data()), n);
      }
      return Status::Ok();
    }
    VOUCH_ASSIGN_OR_RETURN(auto w, store.NewWriter("", e.size));
    while (true) {
      VOUCH_ASSIGN_OR_RETURN(size_t n, data.Read(buf));
      if (n == 0) break;
      VOUCH_RETURN_IF_ERROR(w->Write(std::span<const uint8_t>(buf.data(), n)));
    }
    VOUCH_ASSIGN_OR_RETURN(files[e.path], w->Commit());
    return Status::Ok();
  });
  if (!st.ok()) return st.WithContext("reading docker archive " + location.path);
  if (manifest_json.empty()) {
    return InvalidArgument(location.path + " has no manifest.json (not a docker save archive)", "invalid_image");
  }
  json mj = json::parse(manifest_json, nullptr, false);
  if (mj.is_discarded() || !mj.is_array() || mj.empty() || !mj[0].is_object()) {
    return InvalidArgument("docker archive manifest.json is not a non-empty array", "invalid_image");
  }
  if (mj.size() > 1) {
    return InvalidArgument("docker archive holds " + std::to_string(mj.size()) + " images; save one at a time",
                           "ambiguous_image");
  }
  const json& m = mj[0];
  auto lookup = [&](const json& name_j, const std::string& what) -> Result<std::string> {
    if (!name_j.is_string()) return InvalidArgument("docker archive: " + what + " name is not a string", "invalid_image");
    VOUCH_ASSIGN_OR_RETURN(std::string name, NormalizeEntryPath(name_j.get<std::string>()));
    for (int hops = 0; hops < 8 && symlinks.count(name); ++hops) name = symlinks[name];
    auto it = files.find(name);
    if (it == files.end()) return InvalidArgument("docker archive: " + what + " " + name + " is missing", "invalid_image");
    // Names like blobs/sha256/<hex> or <hex>.json carry the digest: check it.
    std::string base = name.substr(name.rfind('/') + 1);
    if (base.size() > 5 && base.substr(base.size() - 5) == ".json") base = base.substr(0, base.size() - 5);
    if (name.rfind("blobs/sha256/", 0) == 0 || (base.size() == 64 && ValidateDigest("sha256:" + base).ok() &&
                                                 name.find('/') == std::string::npos)) {
      if (it->second != "sha256:" + base) {
        return DataLoss("docker archive: " + name + " hashes to " + it->second, "digest_mismatch");
      }
    }
    return it->second;
  };
  PulledImage img;
  img.manifest.media_type = std::string(kOciManifest);
  VOUCH_ASSIGN_OR_RETURN(std::string config_digest, lookup(m.value("Config", json()), "config"));
  VOUCH_ASSIGN_OR_RETURN(img.config_bytes, store.ReadSmall(config_digest, kMaxConfigBytes));
  json cj = json::parse(img.config_bytes, nullptr, false);
  if (cj.is_discarded() || !cj.is_object()) return InvalidArgument("docker archive config is not JSON", "invalid_image");
  img.manifest.config = {std::string(kOciConfig), config_digest, img.config_bytes.size(), std::nullopt, {}};
  auto layers = m.find("Layers");
  if (layers == m.end() || !layers->is_array()) return InvalidArgument("docker archive has no Layers", "invalid_image");
  if (layers->size() > kMaxLayers) return InvalidArgument("docker archive has too many layers", "image_too_large");
  json diff_ids = cj.contains("rootfs") && cj["rootfs"].is_object() ? cj["rootfs"].value("diff_ids", json::array())
                                                                    : json::array();
  if (!diff_ids.is_array() || diff_ids.size() != layers->size()) {
    return InvalidArgument("docker archive config lists " + std::to_string(diff_ids.size()) + " diff_ids for " +
                               std::to_string(layers->size()) + " layers",
                           "invalid_image");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(std::string d, lookup((*layers)[i], "layer"));
    VOUCH_ASSIGN_OR_RETURN(uint64_t size, store.SizeOf(d));
    // Detect compression from the magic bytes (docker save writes plain tar, newer ones may not).
    std::string head;
    {
      int fd = ::open(store.PathOf(d).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        char b[4] = {};
        ssize_t n = ::read(fd, b, sizeof(b));
        if (n > 0) head.assign(b, static_cast<size_t>(n));
        ::close(fd);
      }
    }
    std::string_view type = kOciLayerTar;
    if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') type = kOciLayerGzip;
    else if (head.size() >= 4 && head == std::string("\x28\xb5\x2f\xfd", 4)) type = kOciLayerZstd;
    if (type == kOciLayerTar && diff_ids[i].is_string() && diff_ids[i].get<std::string>() != d) {
      return DataLoss("docker archive layer " + std::to_string(i) + " hashes to " + d + " but the config says " +
                          diff_ids[i].get<std::string>().substr(0, 80),
                      "digest_mismatch");
    }
    img.manifest.layers.push_back({std::string(type), d, size, std::nullopt, {}});
  }
  json om = {{"schemaVersion", 2},
             {"mediaType", kOciManifest},
             {"config", {{"mediaType", kOciConfig}, {"digest", config_digest}, {"size", img.config_bytes.size()}}},
             {"layers", json::array()}};
  for (const Descriptor& l : img.manifest.layers) {
    om["layers"].push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
  }
  img.manifest_bytes = om.dump();
  img.manifest_digest = Sha256Digest(img.manifest_bytes);
  return img;
}

Result<std::string> PushDockerArchive(const ImageLocation& location, const ImageToPush& image, BlobStore& store) {
  const std::string tmp = location.path + ".tmp-" + std::to_string(::getpid());
  VOUCH_ASSIGN_OR_RETURN(auto w, TarWriter::Create(tmp, Compression::kNone));
  auto blob_name = [](const std::string& d) { return "blobs/sha256/" + DigestHex(d); };
  Status st = w->AddDirectory("blobs", 0755);
  if (st.ok()) st = w->AddDirectory("blobs/sha256", 0755);
  json layers = json::array();
  std::vector<std::string> written;
  auto add_blob = [&](const std::string& d) -> Status {
    for (const std::string& x : written) {
      if (x == d) return Status::Ok();
    }
    written.push_back(d);
    std::string from = store.PathOf(d);
    if (from.empty()) return Internal("blob " + d + " missing from the store");
    return w->AddFileFromDisk(blob_name(d), 0644, from);
  };
  if (st.ok()) st = add_blob(image.manifest.config.digest);
  for (const Descriptor& l : image.manifest.layers) {
    if (!st.ok()) break;
    st = add_blob(l.digest);
    layers.push_back(blob_name(l.digest));
  }
  const std::string manifest_digest = Sha256Digest(image.manifest_bytes);
  if (st.ok()) st = w->AddFile(blob_name(manifest_digest), 0644, image.manifest_bytes);
  json manifest = json::array(
      {{{"Config", blob_name(image.manifest.config.digest)}, {"RepoTags", json::array()}, {"Layers", layers}}});
  json index = {{"schemaVersion", 2},
                {"mediaType", kOciIndex},
                {"manifests", json::array({{{"mediaType", image.manifest_media_type},
                                            {"digest", manifest_digest},
                                            {"size", image.manifest_bytes.size()}}})}};
  if (st.ok()) st = w->AddFile("oci-layout", 0644, R"({"imageLayoutVersion":"1.0.0"})");
  if (st.ok()) st = w->AddFile("index.json", 0644, index.dump());
  if (st.ok()) st = w->AddFile("manifest.json", 0644, manifest.dump());
  if (st.ok()) st = w->Close();
  if (st.ok() && ::rename(tmp.c_str(), location.path.c_str()) != 0) {
    st = Unavailable("renaming " + tmp + ": " + std::strerror(errno), "io_error");
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return manifest_digest;
}

}  // namespace vouch::oci
