#pragma once

// OCI / Docker image metadata: descriptors, manifests, indexes and image locations, parsed from
// untrusted JSON with size limits and media-type checks (OCI image-spec v1.1: descriptor.md,
// manifest.md, image-index.md; Docker image manifest v2 schema 2). Pure functions, no I/O;
// thread-safe. Blob contents are handled by blob_store.h, transports by transport.h.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::oci {

// Media types (OCI image-spec "Media Types"; Docker "Image Manifest V2, Schema 2").
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

// Limits on metadata documents (manifests, indexes, configs). Layers are streamed.
inline constexpr size_t kMaxManifestBytes = 4u << 20;
inline constexpr size_t kMaxConfigBytes = 8u << 20;
inline constexpr size_t kMaxLayers = 512;

enum class Compression { kNone, kGzip, kZstd };

// "sha256:<64 lower-case hex>" only; other algorithms are refused.
Status ValidateDigest(std::string_view digest);
// The hex part of a valid digest.
std::string DigestHex(std::string_view digest);
std::string Sha256Digest(std::string_view data);

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;  // e.g. "v8" for arm64; empty matches any
  // "linux/amd64", "linux/arm64/v8".
  static Result<Platform> Parse(std::string_view text);
  std::string ToString() const;
};

struct Descriptor {
  std::string media_type;
  std::string digest;  // validated
  uint64_t size = 0;
  std::optional<Platform> platform;                 // index entries
  std::map<std::string, std::string> annotations;   // e.g. org.opencontainers.image.ref.name
};

// A parsed image manifest (OCI or Docker schema 2). `layers` are in application order.
struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);
bool IsLayerType(std::string_view media_type);
// Compression of a layer media type; kInvalidArgument for an unknown type.
Result<Compression> LayerCompression(std::string_view media_type);

// The media type of a manifest/index document: its "mediaType" field, else `hint` (e.g. a
// registry's Content-Type), else inferred from the fields present.
Result<std::string> DetectDocumentType(std::string_view bytes, std::string_view hint = {});
Result<ImageManifest> ParseManifest(std::string_view bytes, std::string_view expected_type = {});
Result<ImageIndex> ParseIndex(std::string_view bytes);
// Picks the manifest for `platform` from an index; a clear error listing what the index offers
// when there is none.
Result<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& platform);

// Where an image is read from or written to (the converter's --input / --output).
struct ImageLocation {
  enum class Kind { kRegistry, kOciLayout, kDockerArchive };
  Kind kind = Kind::kRegistry;
  // kRegistry
  std::string registry;    // "host[:port]"; "registry-1.docker.io" for docker.io
  std::string repository;  // "library/busybox"
  std::string tag;         // empty when digest is set and no tag was given
  std::string digest;      // "sha256:..." or empty
  // kOciLayout / kDockerArchive
  std::string path;
  std::string layout_tag;  // oci:DIR:tag (the org.opencontainers.image.ref.name annotation)

  // "oci:DIR[:tag]", "docker-archive:FILE", "[docker://]host[:port]/repo[:tag][@sha256:...]".
  static Result<ImageLocation> Parse(std::string_view text);
  std::string ToString() const;
  // "<tag or digest>" for registry URLs.
  std::string Reference() const { return !digest.empty() ? digest : tag; }
};

}  // namespace vouch::oci
