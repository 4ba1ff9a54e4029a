#include "oci/image.h"

#include "oci/reasons.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::oci {
namespace {

using json = nlohmann::json;

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<json> ParseJsonObject(std::string_view bytes, size_t max, std::string_view what) {
  if (bytes.size() > max) {
    return InvalidArgument(std::string(what) + " is " + std::to_string(bytes.size()) + " bytes, more than the limit " +
                               std::to_string(max),
                           "image_too_large");
  }
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(std::string(what) + " is not a JSON object", "invalid_image");
  }
  return j;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Descriptor> ParseDescriptor(const json& j, std::string_view where) {
  if (!j.is_object()) return InvalidArgument(std::string(where) + ": descriptor is not an object", "invalid_image");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  d.digest = Str(j, "digest");
  Status st = ValidateDigest(d.digest);
  if (!st.ok()) return st.WithContext(where);
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) {
    return InvalidArgument(std::string(where) + ": descriptor size missing or negative", "invalid_image");
  }
  d.size = size->get<uint64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    Platform pl;
    pl.os = Str(*p, "os");
    pl.architecture = Str(*p, "architecture");
    pl.variant = Str(*p, "variant");
    d.platform = pl;
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (auto& [k, v] : a->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  return d;
}

}  // namespace

Status ValidateDigest(std::string_view digest) {
  if (digest.substr(0, 7) != "sha256:") {
    return InvalidArgument("digest \"" + std::string(digest.substr(0, 80)) + "\" is not sha256:<hex>", "invalid_digest");
  }
  std::string_view hex = digest.substr(7);
  if (hex.size() != 64 || !IsLowerHex(hex)) {
    return InvalidArgument("digest \"" + std::string(digest.substr(0, 80)) + "\" does not have 64 lower-case hex digits",
                           "invalid_digest");
  }
  return Status::Ok();
}

std::string DigestHex(std::string_view digest) { return std::string(digest.substr(7)); }

std::string Sha256Digest(std::string_view data) { return "sha256:" + HexEncode(crypto::Sha256(data)); }

Result<Platform> Platform::Parse(std::string_view text) {
  Platform p;
  p.variant.clear();
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return InvalidArgument("platform \"" + std::string(text) + "\" is not os/arch[/variant]", "invalid_platform");
  }
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

std::string Platform::ToString() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

bool IsManifestType(std::string_view t) { return t == kOciManifest || t == kDockerManifest; }
bool IsIndexType(std::string_view t) { return t == kOciIndex || t == kDockerManifestList; }
bool IsLayerType(std::string_view t) { return LayerCompression(t).ok(); }

Result<Compression> LayerCompression(std::string_view t) {
  if (t == kOciLayerTar || t == kDockerLayerTar) return Compression::kNone;
  if (t == kOciLayerGzip || t == kDockerLayerGzip) return Compression::kGzip;
  if (t == kOciLayerZstd) return Compression::kZstd;
  return InvalidArgument("unsupported layer media type \"" + std::string(t.substr(0, 120)) + "\"",
                         "unsupported_media_type");
}

Result<std::string> DetectDocumentType(std::string_view bytes, std::string_view hint) {
  VOUCH_ASSIGN_OR_RETURN(json j, ParseJsonObject(bytes, kMaxManifestBytes, "manifest"));
  std::string t = Str(j, "mediaType");
  if (t.empty()) {
    // The Content-Type of a registry answer may carry parameters ("; charset=utf-8").
    std::string h(hint.substr(0, hint.find(';')));
    if (IsManifestType(h) || IsIndexType(h)) t = h;
  }
  if (t.empty()) {
    // OCI allows mediaType to be absent: an index has "manifests", a manifest has "config".
    if (j.contains("manifests")) t = kOciIndex;
    else if (j.contains("config")) t = kOciManifest;
  }
  if (!IsManifestType(t) && !IsIndexType(t)) {
    return InvalidArgument("document has media type \"" + t.substr(0, 120) +
                               "\", expected an OCI or Docker schema 2 image manifest or index",
                           "unsupported_media_type");
  }
  return t;
}

Result<ImageManifest> ParseManifest(std::string_view bytes, std::string_view expected_type) {
  VOUCH_ASSIGN_OR_RETURN(json j, ParseJsonObject(bytes, kMaxManifestBytes, "image manifest"));
  ImageManifest m;
  VOUCH_ASSIGN_OR_RETURN(m.media_type, DetectDocumentType(bytes, expected_type));
  if (!IsManifestType(m.media_type)) {
    return InvalidArgument("expected an image manifest, got media type \"" + m.media_type + "\"",
                           "unsupported_media_type");
  }
  if (!expected_type.empty()) {
    std::string e(expected_type.substr(0, expected_type.find(';')));
    if (IsManifestType(e) && e != m.media_type) {
      return InvalidArgument("manifest says media type \"" + m.media_type + "\" but was served as \"" + e + "\"",
                             "unsupported_media_type");
    }
  }
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer() || sv->get<int64_t>() != 2) {
    return InvalidArgument("image manifest schemaVersion is not 2", "invalid_image");
  }
  auto cfg = j.find("config");
  if (cfg == j.end()) return InvalidArgument("image manifest has no config", "invalid_image");
  VOUCH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*cfg, "config"));
  if (m.config.media_type != kOciConfig && m.config.media_type != kDockerConfig) {
    return InvalidArgument("config media type \"" + m.config.media_type.substr(0, 120) +
                               "\" is not an image config (not a container image?)",
                           "unsupported_media_type");
  }
  if (m.config.size > kMaxConfigBytes) return InvalidArgument("image config is too large", "image_too_large");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return InvalidArgument("image manifest has no layers array", "invalid_image");
  if (layers->size() > kMaxLayers) {
    return InvalidArgument("image has " + std::to_string(layers->size()) + " layers, more than " +
                               std::to_string(kMaxLayers),
                           "image_too_large");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], "layer " + std::to_string(i)));
    if (!IsLayerType(d.media_type)) {
      return InvalidArgument("layer " + std::to_string(i) + " has unsupported media type \"" +
                                 d.media_type.substr(0, 120) + "\"",
                             "unsupported_media_type");
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<ImageIndex> ParseIndex(std::string_view bytes) {
  VOUCH_ASSIGN_OR_RETURN(json j, ParseJsonObject(bytes, kMaxManifestBytes, "image index"));
  ImageIndex idx;
  VOUCH_ASSIGN_OR_RETURN(idx.media_type, DetectDocumentType(bytes));
  if (!IsIndexType(idx.media_type)) {
    return InvalidArgument("expected an image index, got media type \"" + idx.media_type + "\"",
                           "unsupported_media_type");
  }
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) return InvalidArgument("image index has no manifests array", "invalid_image");
  if (ms->size() > 4096) return InvalidArgument("image index has too many entries", "image_too_large");
  for (size_t i = 0; i < ms->size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*ms)[i], "index entry " + std::to_string(i)));
    idx.manifests.push_back(std::move(d));
  }
  return idx;
}

Result<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& want) {
  std::string offered;
  for (const Descriptor& d : index.manifests) {
    if (!d.platform) continue;
    const Platform& p = *d.platform;
    if (p.os == "unknown") continue;  // attestation manifests (buildx)
    if (!offered.empty()) offered += ", ";
    offered += p.ToString();
    if (p.os == want.os && p.architecture == want.architecture &&
        (want.variant.empty() || p.variant == want.variant) && IsManifestType(d.media_type)) {
      return d;
    }
  }
  return NotFound("image index has no manifest for platform " + want.ToString() + " (it offers: " +
                      (offered.empty() ? std::string("none") : offered) + "); pick one with --platform",
                  std::string(kPlatformNotFound));
}

Result<ImageLocation> ImageLocation::Parse(std::string_view text) {
  ImageLocation loc;
  auto bad = [&](std::string why) {
    return InvalidArgument("image \"" + std::string(text.substr(0, 200)) + "\": " + why, "invalid_image_reference");
  };
  if (text.empty()) return bad("empty");
  if (text.substr(0, 4) == "oci:") {
    loc.kind = Kind::kOciLayout;
    std::string_view rest = text.substr(4);
    // oci:DIR[:tag]; the tag cannot contain '/' so the last ':' separates it when what follows
    // looks like a tag.
    size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.substr(colon + 1).find('/') == std::string_view::npos) {
      loc.layout_tag = std::string(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
    }
    loc.path = std::string(rest);
    if (loc.path.empty()) return bad("no directory after oci:");
    return loc;
  }
  if (text.substr(0, 15) == "docker-archive:") {
    loc.kind = Kind::kDockerArchive;
    loc.path = std::string(text.substr(15));
    if (loc.path.empty()) return bad("no file after docker-archive:");
    return loc;
  }
  if (text.substr(0, 9) == "docker://") text = text.substr(9);
  std::string_view ref = text;
  if (size_t at = ref.find('@'); at != std::string_view::npos) {
    loc.digest = std::string(ref.substr(at + 1));
    if (!ValidateDigest(loc.digest).ok()) return bad("digest is not sha256:<64 hex>");
    ref = ref.substr(0, at);
  }
  size_t slash = ref.find('/');
  std::string_view first = slash == std::string_view::npos ? std::string_view() : ref.substr(0, slash);
  if (!first.empty() && (first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
                         first == "localhost")) {
    loc.registry = std::string(first);
    ref = ref.substr(slash + 1);
  } else {
    loc.registry = "registry-1.docker.io";
  }
  size_t last_slash = ref.rfind('/');
  size_t colon = ref.rfind(':');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    loc.tag = std::string(ref.substr(colon + 1));
    ref = ref.substr(0, colon);
  }
  loc.repository = std::string(ref);
  if (loc.registry == "registry-1.docker.io" && loc.repository.find('/') == std::string::npos) {
    loc.repository = "library/" + loc.repository;
  }
  if (loc.tag.empty() && loc.digest.empty()) loc.tag = "latest";
  // distribution/reference grammar, simplified: lower-case alphanumerics and separators.
  if (loc.repository.empty() || loc.repository.size() > 255) return bad("repository name is empty or too long");
  for (char c : loc.repository) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/')) {
      return bad("repository name may only hold a-z 0-9 . _ - /");
    }
  }
  if (loc.repository.front() == '/' || loc.repository.back() == '/' ||
      loc.repository.find("//") != std::string::npos || loc.repository.find("..") != std::string::npos) {
    return bad("malformed repository path");
  }
  if (loc.tag.size() > 128) return bad("tag longer than 128 characters");
  for (char c : loc.tag) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-')) {
      return bad("tag may only hold A-Z a-z 0-9 . _ -");
    }
  }
  return loc;
}

std::string ImageLocation::ToString() const {
  switch (kind) {
    case Kind::kOciLayout:
      return "oci:" + path + (layout_tag.empty() ? "" : ":" + layout_tag);
    case Kind::kDockerArchive:
      return "docker-archive:" + path;
    case Kind::kRegistry:
      break;
  }
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

}  // namespace vouch::oci
