#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "oci/blob_store.h"
#include "oci/image.h"
#include "oci/registry.h"
#include "oci/tar.h"
#include "oci/transport.h"
#include "testing/temp_dir.h"

namespace vouch::oci {
namespace {

using json = nlohmann::json;

// A tar stream with arbitrary (also hostile) entries, built with libarchive directly.
struct RawEntry {
  std::string path;
  mode_t type = AE_IFREG;
  std::string content;
  std::string link;  // symlink target or hard link target
  bool hardlink = false;
};

std::string MakeTar(const std::vector<RawEntry>& entries, const char* filter = nullptr) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  if (filter != nullptr && std::string(filter) == "gzip") archive_write_add_filter_gzip(a);
  if (filter != nullptr && std::string(filter) == "zstd") archive_write_add_filter_zstd(a);
  archive_write_open(a, &out, nullptr,
                     [](archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
                       static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
                       return static_cast<la_ssize_t>(n);
                     },
                     nullptr);
  for (const RawEntry& r : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, r.path.c_str());
    archive_entry_set_filetype(e, r.type);
    archive_entry_set_perm(e, 0644);
    if (r.hardlink) {
      archive_entry_set_hardlink(e, r.link.c_str());
    } else if (r.type == AE_IFLNK) {
      archive_entry_set_symlink(e, r.link.c_str());
    }
    archive_entry_set_size(e, r.type == AE_IFREG && !r.hardlink ? static_cast<la_int64_t>(r.content.size()) : 0);
    archive_write_header(a, e);
    if (r.type == AE_IFREG && !r.content.empty()) archive_write_data(a, r.content.data(), r.content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

Status ReadAll(std::string_view tar, std::vector<TarEntry>* seen = nullptr) {
  TarLimits limits;
  limits.max_total_bytes = 1 << 20;
  return ReadTarMemory(tar, limits, [&](const TarEntry& e, EntryData&) {
    if (seen) seen->push_back(e);
    return Status::Ok();
  });
}

TEST(ImageLocation, ParsesTheThreeForms) {
  auto r = ImageLocation::Parse("127.0.0.1:5000/team/app:v1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ImageLocation::Kind::kRegistry);
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->tag, "v1");
  auto d = ImageLocation::Parse("localhost/app@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, "sha256:" + std::string(64, 'a'));
  EXPECT_TRUE(d->tag.empty());
  auto hub = ImageLocation::Parse("busybox");
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ(hub->registry, "registry-1.docker.io");
  EXPECT_EQ(hub->repository, "library/busybox");
  EXPECT_EQ(hub->tag, "latest");
  auto layout = ImageLocation::Parse("oci:/tmp/x:edge");
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->path, "/tmp/x");
  EXPECT_EQ(layout->layout_tag, "edge");
  auto archive = ImageLocation::Parse("docker-archive:/tmp/a.tar");
  ASSERT_TRUE(archive.ok());
  EXPECT_EQ(archive->path, "/tmp/a.tar");
}

TEST(ImageLocation, RejectsMalformedReferences) {
  EXPECT_FALSE(ImageLocation::Parse("").ok());
  EXPECT_FALSE(ImageLocation::Parse("host:5000/UPPER:tag").ok());
  EXPECT_FALSE(ImageLocation::Parse("host:5000/app@sha256:abc").ok());
  EXPECT_FALSE(ImageLocation::Parse("host:5000/a/../b:tag").ok());
  EXPECT_FALSE(ImageLocation::Parse("host:5000/app:bad/tag!").ok());
  EXPECT_FALSE(ImageLocation::Parse("oci:").ok());
}

TEST(Manifest, RejectsWrongMediaTypes) {
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                        {"digest", "sha256:" + std::string(64, 'a')},
                        {"size", 10}}},
            {"layers", json::array({{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                     {"digest", "sha256:" + std::string(64, 'b')},
                                     {"size", 20}}})}};
  ASSERT_TRUE(ParseManifest(m.dump()).ok());
  json wrong_doc = m;
  wrong_doc["mediaType"] = "application/vnd.docker.distribution.manifest.v1+prettyjws";
  EXPECT_EQ(ParseManifest(wrong_doc.dump()).status().reason(), "unsupported_media_type");
  json wrong_config = m;
  wrong_config["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json";
  EXPECT_EQ(ParseManifest(wrong_config.dump()).status().reason(), "unsupported_media_type");
  json wrong_layer = m;
  wrong_layer["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar";
  EXPECT_EQ(ParseManifest(wrong_layer.dump()).status().reason(), "unsupported_media_type");
  json bad_digest = m;
  bad_digest["layers"][0]["digest"] = "sha512:" + std::string(128, 'c');
  EXPECT_EQ(ParseManifest(bad_digest.dump()).status().reason(), "invalid_digest");
  // Served as an index but is a manifest.
  EXPECT_FALSE(ParseManifest(m.dump(), "application/vnd.docker.distribution.manifest.v2+json").ok());
  EXPECT_FALSE(ParseManifest("not json").ok());
}

TEST(Index, SelectsThePlatformOrSaysWhatIsOffered) {
  json idx = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.index.v1+json"},
              {"manifests",
               json::array({{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", "sha256:" + std::string(64, '1')},
                             {"size", 1},
                             {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}}},
                            {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", "sha256:" + std::string(64, '2')},
                             {"size", 1},
                             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}})}};
  auto parsed = ParseIndex(idx.dump());
  ASSERT_TRUE(parsed.ok());
  auto amd = SelectPlatform(*parsed, Platform{});
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->digest, "sha256:" + std::string(64, '2'));
  auto arm = SelectPlatform(*parsed, *Platform::Parse("linux/arm64"));
  ASSERT_TRUE(arm.ok());
  EXPECT_EQ(arm->digest, "sha256:" + std::string(64, '1'));
  auto none = SelectPlatform(*parsed, *Platform::Parse("linux/s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("linux/arm64/v8, linux/amd64"), std::string::npos) << none.status().message();
}

TEST(Tar, NormalisesPaths) {
  EXPECT_EQ(*NormalizeEntryPath("./a//b/"), "a/b");
  EXPECT_EQ(*NormalizeEntryPath("./"), "");
  EXPECT_FALSE(NormalizeEntryPath("/etc/passwd").ok());
  EXPECT_FALSE(NormalizeEntryPath("a/../../etc").ok());
  EXPECT_FALSE(NormalizeEntryPath("..").ok());
  EXPECT_EQ(*ResolveSymlink("usr/bin/sh", "../../bin/busybox"), "bin/busybox");
  EXPECT_EQ(*ResolveSymlink("lib", "/usr/lib"), "usr/lib");
  EXPECT_FALSE(ResolveSymlink("etc/x", "../../../etc/shadow").ok());
  EXPECT_FALSE(ResolveSymlink("x", "/../../etc").ok());
}

TEST(Tar, ReadsGzipZstdAndPlain) {
  std::vector<RawEntry> entries = {{"bin", AE_IFDIR, "", ""}, {"bin/app", AE_IFREG, "hello", ""},
                                   {"bin/sh", AE_IFLNK, "", "app"}};
  for (const char* f : {static_cast<const char*>(nullptr), "gzip", "zstd"}) {
    std::vector<TarEntry> seen;
    Status st = ReadAll(MakeTar(entries, f), &seen);
    ASSERT_TRUE(st.ok()) << (f ? f : "plain") << " " << st.ToString();
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[1].path, "bin/app");
    EXPECT_EQ(seen[1].size, 5u);
    EXPECT_EQ(seen[2].type, TarEntry::Type::kSymlink);
  }
}

TEST(Tar, RejectsHostileEntries) {
  EXPECT_EQ(ReadAll(MakeTar({{"../evil", AE_IFREG, "x", ""}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"a/../../evil", AE_IFREG, "x", ""}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"/etc/passwd", AE_IFREG, "x", ""}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"etc/link", AE_IFLNK, "", "../../../../etc/shadow"}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"dev/sda", AE_IFBLK, "", ""}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"dev/null", AE_IFCHR, "", ""}})).reason(), "hostile_layer");
  EXPECT_EQ(ReadAll(MakeTar({{"a", AE_IFREG, "x", ""}, {"b", AE_IFREG, "", "../x", true}})).reason(), "hostile_layer");
}

TEST(Tar, RejectsTruncatedAndOversizedStreams) {
  std::string tar = MakeTar({{"big", AE_IFREG, std::string(100000, 'x'), ""}});
  std::string noise(100000, '\0');
  uint32_t x = 12345;
  for (char& c : noise) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  std::string gz = MakeTar({{"big", AE_IFREG, noise, ""}}, "gzip");
  auto drain = [](const TarEntry& e, EntryData& d) -> Status {
    uint8_t buf[4096];
    if (e.type != TarEntry::Type::kFile) return Status::Ok();
    while (true) {
      VOUCH_ASSIGN_OR_RETURN(size_t n, d.Read(buf));
      if (n == 0) return Status::Ok();
    }
  };
  TarLimits limits;
  ASSERT_TRUE(ReadTarMemory(tar, limits, drain).ok());
  for (size_t cut : {size_t{100}, size_t{600}, tar.size() / 2, size_t{90000}}) {
    EXPECT_FALSE(ReadTarMemory(std::string_view(tar).substr(0, cut), limits, drain).ok()) << cut;
  }
  EXPECT_FALSE(ReadTarMemory(std::string_view(gz).substr(0, gz.size() / 2), limits, drain).ok());
  limits.max_entry_bytes = 1000;
  EXPECT_EQ(ReadTarMemory(tar, limits, drain).reason(), "layer_too_large");
  TarLimits few;
  few.max_entries = 1;
  EXPECT_EQ(ReadAll(MakeTar({{"a", AE_IFREG, "", ""}, {"b", AE_IFREG, "", ""}})).ok(), true);
  EXPECT_EQ(ReadTarMemory(MakeTar({{"a", AE_IFREG, "", ""}, {"b", AE_IFREG, "", ""}}), few, drain).reason(),
            "layer_too_large");
}

class TempDirTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"oci-test"};
  std::string dir_ = tmp_.path();
};

TEST_F(TempDirTest, BlobStoreRejectsDigestAndSizeMismatch) {
  auto store = BlobStore::Create(dir_ + "/s");
  ASSERT_TRUE(store.ok());
  auto good = (*store)->PutBytes("abc", Sha256Digest("abc"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*store)->ReadSmall(*good, 10).value(), "abc");
  EXPECT_EQ((*store)->PutBytes("abd", Sha256Digest("abc")).status().reason(), "digest_mismatch");
  auto w = (*store)->NewWriter(Sha256Digest("abc"), 3);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)->Write(AsBytes(std::string_view("abcd"))).ok());
  auto w2 = (*store)->NewWriter(Sha256Digest("abc"), 3);
  ASSERT_TRUE((*w2)->Write(AsBytes(std::string_view("ab"))).ok());
  EXPECT_EQ((*w2)->Commit().status().reason(), "digest_mismatch");
}

// Builds a one-layer image in a store and returns what PushImage needs.
ImageToPush MakeImage(BlobStore& store, const std::string& layer_bytes) {
  std::string layer_digest = *store.PutBytes(layer_bytes);
  json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"/bin/app"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {Sha256Digest(layer_bytes)}}}}};
  std::string cfg = config.dump();
  std::string cfg_digest = *store.PutBytes(cfg);
  ImageToPush img;
  img.manifest_media_type = std::string(kOciManifest);
  img.manifest.config = {std::string(kOciConfig), cfg_digest, cfg.size(), std::nullopt, {}};
  img.manifest.layers.push_back({std::string(kOciLayerTar), layer_digest, layer_bytes.size(), std::nullopt, {}});
  json m = {{"schemaVersion", 2},
            {"mediaType", kOciManifest},
            {"config", {{"mediaType", kOciConfig}, {"digest", cfg_digest}, {"size", cfg.size()}}},
            {"layers", {{{"mediaType", kOciLayerTar}, {"digest", layer_digest}, {"size", layer_bytes.size()}}}}};
  img.manifest_bytes = m.dump();
  return img;
}

TEST_F(TempDirTest, OciLayoutAndDockerArchiveRoundTrip) {
  auto store = *BlobStore::Create(dir_ + "/s");
  std::string layer = MakeTar({{"bin/app", AE_IFREG, "hello", ""}});
  ImageToPush img = MakeImage(*store, layer);
  auto layout = *ImageLocation::Parse("oci:" + dir_ + "/layout:v1");
  auto pushed = PushImage(layout, img, TransportOptions{}, *store);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  auto store2 = *BlobStore::Create(dir_ + "/s2");
  auto pulled = PullImage(layout, TransportOptions{}, *store2);
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ(pulled->manifest_digest, *pushed);
  EXPECT_EQ(pulled->manifest.layers.size(), 1u);
  EXPECT_EQ(store2->ReadSmall(pulled->manifest.layers[0].digest, 1 << 20).value(), layer);
  EXPECT_EQ(PullImage(*ImageLocation::Parse("oci:" + dir_ + "/layout:nope"), TransportOptions{}, *store2)
                .status()
                .reason(),
            "image_not_found");

  auto archive = *ImageLocation::Parse("docker-archive:" + dir_ + "/img.tar");
  ASSERT_TRUE(PushImage(archive, img, TransportOptions{}, *store).ok());
  auto store3 = *BlobStore::Create(dir_ + "/s3");
  auto from_archive = PullImage(archive, TransportOptions{}, *store3);
  ASSERT_TRUE(from_archive.ok()) << from_archive.status().ToString();
  EXPECT_EQ(from_archive->manifest.layers[0].digest, img.manifest.layers[0].digest);
  EXPECT_EQ(from_archive->config_bytes, store->ReadSmall(img.manifest.config.digest, 1 << 20).value());
}

TEST_F(TempDirTest, OciLayoutWithATamperedBlobFails) {
  auto store = *BlobStore::Create(dir_ + "/s");
  ImageToPush img = MakeImage(*store, MakeTar({{"bin/app", AE_IFREG, "hello", ""}}));
  auto layout = *ImageLocation::Parse("oci:" + dir_ + "/layout:v1");
  ASSERT_TRUE(PushImage(layout, img, TransportOptions{}, *store).ok());
  const std::string blob = dir_ + "/layout/blobs/sha256/" + DigestHex(img.manifest.layers[0].digest);
  std::filesystem::remove(blob);  // it may be a hard link into the store
  ASSERT_TRUE(WriteFileAtomic(blob, MakeTar({{"bin/app", AE_IFREG, "HELLO", ""}})).ok());
  auto store2 = *BlobStore::Create(dir_ + "/s2");
  EXPECT_EQ(PullImage(layout, TransportOptions{}, *store2).status().reason(), "digest_mismatch");
}

TEST_F(TempDirTest, AuthFileCredentials) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/config.json",
                              R"({"auths":{"reg.example:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="}}})")
                  .ok());
  auto c = CredentialsFromAuthFile(dir_ + "/config.json", "reg.example:5000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pass:word");
  EXPECT_TRUE(CredentialsFromAuthFile(dir_ + "/config.json", "other").value().empty());
}

}  // namespace
}  // namespace vouch::oci

namespace vouch::oci {
namespace {
TEST(Registry, ParsesBearerChallenges) {
  std::string scheme;
  auto p = RegistryClient::ParseChallenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull")", &scheme);
  EXPECT_EQ(scheme, "bearer");
  EXPECT_EQ(p["realm"], "https://auth.example/token");
  EXPECT_EQ(p["service"], "registry.example");
  EXPECT_EQ(p["scope"], "repository:a/b:pull");
  auto b = RegistryClient::ParseChallenge(R"(Basic realm="Registry Realm")", &scheme);
  EXPECT_EQ(scheme, "basic");
  EXPECT_EQ(b["realm"], "Registry Realm");
  auto junk = RegistryClient::ParseChallenge("Bearer realm=\"unterminated", &scheme);
  EXPECT_EQ(junk["realm"], "unterminated");
}
}  // namespace
}  // namespace vouch::oci
