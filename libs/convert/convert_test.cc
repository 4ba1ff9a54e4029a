#include "convert/convert.h"

#include <CLI/CLI.hpp>
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "convert/options.h"
#include "convert/rootfs.h"
#include "oci/reasons.h"
#include "crypto/keys.h"
#include "oci/blob_store.h"
#include "testing/temp_dir.h"

namespace vouch::convert {
namespace {

using json = nlohmann::json;

struct E {
  E(std::string p, mode_t t = AE_IFREG, std::string c = {}, std::string l = {}, bool h = false, mode_t pm = 0)
      : path(std::move(p)), type(t), content(std::move(c)), link(std::move(l)), hardlink(h), perm(pm) {}
  std::string path;
  mode_t type;
  std::string content;
  std::string link;
  bool hardlink;
  mode_t perm;  // 0: 0755 for directories and files
};

std::string Tar(const std::vector<E>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr,
                     [](archive*, void* u, const void* b, size_t n) -> la_ssize_t {
                       static_cast<std::string*>(u)->append(static_cast<const char*>(b), n);
                       return static_cast<la_ssize_t>(n);
                     },
                     nullptr);
  for (const E& r : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, r.path.c_str());
    archive_entry_set_filetype(e, r.type);
    archive_entry_set_perm(e, r.perm != 0 ? r.perm : r.type == AE_IFLNK ? 0777 : 0755);
    if (r.hardlink) archive_entry_set_hardlink(e, r.link.c_str());
    else if (r.type == AE_IFLNK) archive_entry_set_symlink(e, r.link.c_str());
    archive_entry_set_size(e, r.type == AE_IFREG && !r.hardlink ? static_cast<la_int64_t>(r.content.size()) : 0);
    archive_write_header(a, e);
    if (!r.content.empty()) archive_write_data(a, r.content.data(), r.content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::vector<std::string> Paths(const RootFs& fs) {
  std::vector<std::string> out;
  for (const auto& [p, n] : fs.nodes()) out.push_back(p);
  return out;
}

TEST(RootFs, AppliesWhiteoutsOpaqueDirsAndHardLinks) {
  RootFs fs;
  oci::TarLimits limits;
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"etc", AE_IFDIR},
                                       {"etc/a", AE_IFREG, "a"},
                                       {"etc/b", AE_IFREG, "b"},
                                       {"opt", AE_IFDIR},
                                       {"opt/old", AE_IFREG, "old"},
                                       {"opt/sub", AE_IFDIR},
                                       {"opt/sub/deep", AE_IFREG, "deep"},
                                       {"bin", AE_IFDIR},
                                       {"bin/tool", AE_IFREG, "tool"}}),
                                  limits)
                  .ok());
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"etc/.wh.a", AE_IFREG},
                                       {"opt/new", AE_IFREG, "new"},
                                       {"opt/.wh..wh..opq", AE_IFREG},
                                       {"bin/alias", AE_IFREG, "", "bin/tool", true},
                                       {"etc/b", AE_IFREG, "b2"}}),
                                  limits)
                  .ok());
  EXPECT_EQ(Paths(fs), (std::vector<std::string>{"bin", "bin/alias", "bin/tool", "etc", "etc/b", "opt", "opt/new"}));
  EXPECT_EQ(fs.nodes().at("bin/alias").sha256, crypto::Sha256(std::string_view("tool")));
  EXPECT_EQ(fs.nodes().at("etc/b").sha256, crypto::Sha256(std::string_view("b2")));
}

TEST(RootFs, AFileReplacesADirectoryTreeAndWhiteoutRemovesTrees) {
  RootFs fs;
  oci::TarLimits limits;
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"d", AE_IFDIR}, {"d/x", AE_IFREG, "x"}, {"t", AE_IFDIR}, {"t/y", AE_IFREG, "y"}}),
                                  limits)
                  .ok());
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"d", AE_IFREG, "now a file"}, {".wh.t", AE_IFREG}}), limits).ok());
  EXPECT_EQ(Paths(fs), (std::vector<std::string>{"d"}));
}

TEST(RootFs, RefusesWritingThroughASymlinkAndDanglingHardLinks) {
  oci::TarLimits limits;
  RootFs fs;
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"lib", AE_IFLNK, "", "usr/lib"}}), limits).ok());
  EXPECT_EQ(fs.ApplyLayerMemory(Tar({{"lib/evil.so", AE_IFREG, "x"}}), limits).reason(), "hostile_layer");
  RootFs fs2;
  EXPECT_EQ(fs2.ApplyLayerMemory(Tar({{"a", AE_IFREG, "", "missing", true}}), limits).reason(), "hostile_layer");
}

TEST(RootFs, RefusesAHardLinkThatMovesARelativeSymlinkOutOfTheRoot) {
  oci::TarLimits limits;
  RootFs fs;
  // a/b/up -> ../../x stays inside; the same symlink hard-linked at "top" would point above the root.
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"a", AE_IFDIR}, {"a/b", AE_IFDIR}, {"a/b/up", AE_IFLNK, "", "../../x"}}), limits)
                  .ok());
  EXPECT_EQ(fs.ApplyLayerMemory(Tar({{"top", AE_IFREG, "", "a/b/up", true}}), limits).reason(), "hostile_layer");
  EXPECT_TRUE(fs.ApplyLayerMemory(Tar({{"a/b/same", AE_IFREG, "", "a/b/up", true}}), limits).ok());
}

TEST(RootFs, ContentLimitCountsEarlierLayers) {
  oci::TarLimits limits;
  limits.max_total_bytes = 10;
  RootFs fs;
  ASSERT_TRUE(fs.ApplyLayerMemory(Tar({{"a", AE_IFREG, "123456"}}), limits).ok());
  limits.counted_before = fs.content_bytes();
  auto st = fs.ApplyLayerMemory(Tar({{"b", AE_IFREG, "123456"}}), limits);
  EXPECT_EQ(st.reason(), "layer_too_large");
  EXPECT_NE(st.message().find("limit of 10 bytes"), std::string::npos) << st.message();
}

class ConvertTest : public ::testing::Test {
 protected:

  // Writes a one-layer OCI layout at dir_/in with tag "v1". The config's diff_id is the digest
  // of `layer` unless given (right for an uncompressed layer).
  void WriteInput(const std::string& layer, const json& cfg_config, std::string diff_id = {},
                  std::string_view layer_type = oci::kOciLayerTar) {
    auto store = *oci::BlobStore::Create(dir_ + "/seed");
    std::string ld = *store->PutBytes(layer);
    if (diff_id.empty()) diff_id = ld;
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", cfg_config},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}}};
    std::string cfg = config.dump();
    std::string cd = *store->PutBytes(cfg);
    oci::ImageToPush img;
    img.manifest_media_type = std::string(oci::kOciManifest);
    img.manifest.config = {std::string(oci::kOciConfig), cd, cfg.size(), std::nullopt, {}};
    img.manifest.layers.push_back({std::string(layer_type), ld, layer.size(), std::nullopt, {}});
    json m = {{"schemaVersion", 2},
              {"mediaType", oci::kOciManifest},
              {"config", {{"mediaType", oci::kOciConfig}, {"digest", cd}, {"size", cfg.size()}}},
              {"layers", {{{"mediaType", layer_type}, {"digest", ld}, {"size", layer.size()}}}}};
    img.manifest_bytes = m.dump();
    ASSERT_TRUE(oci::PushOciLayout(*oci::ImageLocation::Parse("oci:" + dir_ + "/in:v1"), img, *store).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/rte", "#!/bin/sh\necho fake runtime\n", 0755).ok());
  }

  ConvertOptions Options(EVP_PKEY* key) {
    ConvertOptions o;
    o.input = "oci:" + dir_ + "/in:v1";
    o.output = "oci:" + dir_ + "/out:tee";
    o.work_dir = dir_;
    o.runtime_path = dir_ + "/rte";
    o.signing_key = key;
    o.base.isvprodid = 5;
    o.base.rw_dirs = DefaultRwDirs();
    return o;
  }
  test::TempDir tmp_{"convert-test"};
  std::string dir_ = tmp_.path();
};

TEST_F(ConvertTest, ConvertsALayoutAndMeasuresTheManifestItEmbeds) {
  WriteInput(Tar({{"bin", AE_IFDIR}, {"bin/app", AE_IFREG, "app"}, {"tmp", AE_IFDIR}, {"tmp/scratch", AE_IFREG, "s"}}),
             {{"Cmd", {"/bin/app", "--serve"}}, {"Env", {"A=1"}}, {"WorkingDir", "/srv"}, {"User", "1000"}});
  auto key = crypto::GenerateP256();
  ConvertOptions o = Options(key->get());
  o.env = {"B=2", "A=3"};
  auto r = Convert(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->mrenclave, HexEncode(crypto::Sha256(r->manifest)));
  auto m = manifest::Parse(r->manifest);
  ASSERT_TRUE(m.ok());
  // Cmd[0] is the program, fixed at conversion; the rest are the arguments.
  EXPECT_EQ(m->entrypoint, (std::vector<std::string>{"/bin/app"}));
  EXPECT_EQ(m->args, (std::vector<std::string>{"--serve"}));
  EXPECT_EQ(m->exec_path, "/bin/app");
  EXPECT_EQ(m->env, (std::vector<std::string>{"B=2", "A=3"}));
  EXPECT_EQ(m->workdir, "/srv");
  EXPECT_EQ(m->isvprodid, 5u);
  // /bin, /bin/app, /vouch and the runtime; /tmp is not protected.
  ASSERT_EQ(m->files.size(), 4u);
  EXPECT_EQ(m->files[0].path, "/bin");
  EXPECT_EQ(m->files[0].type, manifest::FileEntry::Type::kDir);
  EXPECT_EQ(m->files[1].path, "/bin/app");
  EXPECT_EQ(m->files[2].path, "/vouch");
  EXPECT_EQ(m->files[3].path, "/vouch/vouch-rte");

  // The output image: the manifest file in the new layer is the one measured; the config keeps
  // what it had and runs the runtime.
  auto store = *oci::BlobStore::Create(dir_ + "/check");
  auto out = oci::PullImage(*oci::ImageLocation::Parse("oci:" + dir_ + "/out:tee"), {}, *store);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->manifest_digest, r->digest);
  ASSERT_EQ(out->manifest.layers.size(), 2u);
  std::string embedded;
  ASSERT_TRUE(oci::ReadTarFile(store->PathOf(out->manifest.layers[1].digest), {},
                               [&](const oci::TarEntry& e, oci::EntryData& d) -> Status {
                                 if (e.path != "vouch/manifest.json") return Status::Ok();
                                 uint8_t buf[65536];
                                 while (true) {
                                   VOUCH_ASSIGN_OR_RETURN(size_t n, d.Read(buf));
                                   if (n == 0) return Status::Ok();
                                   embedded.append(reinterpret_cast<char*>(buf), n);
                                 }
                               })
                  .ok());
  EXPECT_EQ(embedded, r->manifest);
  json cfg = json::parse(out->config_bytes);
  EXPECT_EQ(cfg["config"]["Entrypoint"], json::array({"/vouch/vouch-rte"}));
  EXPECT_FALSE(cfg["config"].contains("Cmd"));
  EXPECT_EQ(cfg["config"]["User"], "1000");
  EXPECT_EQ(cfg["config"]["WorkingDir"], "/srv");
  EXPECT_EQ(cfg["rootfs"]["diff_ids"].size(), 2u);

  // Same input, same key: same measurement.
  ConvertOptions again = Options(key->get());
  again.env = {"B=2", "A=3"};
  again.output = "oci:" + dir_ + "/out2:tee";
  EXPECT_EQ(Convert(again)->mrenclave, r->mrenclave);
}

TEST_F(ConvertTest, HostileLayerWritesNothing) {
  WriteInput(Tar({{"etc", AE_IFDIR}, {"etc/link", AE_IFLNK, "", "../../../root"}}), {{"Cmd", {"/bin/sh"}}});
  auto key = crypto::GenerateP256();
  auto r = Convert(Options(key->get()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "hostile_layer");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out"));
}

// The same two files as a deterministic tar, compressed or not.
std::string TwoFileLayer(oci::Compression c) {
  auto w = *oci::TarWriter::Create("", c);
  EXPECT_TRUE(w->AddDirectory("bin", 0755).ok());
  EXPECT_TRUE(w->AddFile("bin/app", 0755, std::string(100000, 'a')).ok());
  EXPECT_TRUE(w->AddFile("bin/b", 0644, "b").ok());
  EXPECT_TRUE(w->Close().ok());
  return w->data();
}

TEST(RootFs, DiffIdIsTheDigestOfTheDecompressedStream) {
  const std::string plain = TwoFileLayer(oci::Compression::kNone);
  for (oci::Compression c : {oci::Compression::kNone, oci::Compression::kGzip, oci::Compression::kZstd}) {
    RootFs fs;
    std::string diff_id;
    const std::string layer = TwoFileLayer(c);
    ASSERT_TRUE(fs.ApplyLayerMemory(layer, {}, &diff_id).ok());
    EXPECT_EQ(diff_id, oci::Sha256Digest(plain));
    EXPECT_EQ(fs.nodes().at("bin/app").size, 100000u);
    if (c != oci::Compression::kNone) {
      EXPECT_NE(layer, plain);
    }
  }
  // Bytes after the end-of-archive marker count in the digest ...
  const std::string padded = plain + std::string(3000, '\0');
  RootFs fs;
  std::string diff_id;
  ASSERT_TRUE(fs.ApplyLayerMemory(padded, {}, &diff_id).ok());
  EXPECT_EQ(diff_id, oci::Sha256Digest(padded));
  EXPECT_TRUE(RootFs().ApplyLayerMemory(plain + std::string(oci::kMaxTrailingBytes - 4096, 0), {}, &diff_id).ok());
  // ... but may not hide a bomb there, and a truncated stream is an error, not a digest.
  RootFs fs2;
  EXPECT_EQ(fs2.ApplyLayerMemory(plain + std::string(oci::kMaxTrailingBytes + 4096, '\0'), {}, &diff_id).reason(),
            "hostile_layer");
  const std::string gz = TwoFileLayer(oci::Compression::kGzip);
  RootFs fs3;
  EXPECT_EQ(fs3.ApplyLayerMemory(std::string_view(gz).substr(0, gz.size() - 9), {}, &diff_id).reason(), "corrupt_layer");
}

TEST_F(ConvertTest, GzipLayerWithItsDiffIdConverts) {
  const std::string plain = TwoFileLayer(oci::Compression::kNone);
  WriteInput(TwoFileLayer(oci::Compression::kGzip), {{"Cmd", {"/bin/app"}}}, oci::Sha256Digest(plain),
             oci::kOciLayerGzip);
  auto key = crypto::GenerateP256();
  auto r = Convert(Options(key->get()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->protected_files, 5u);  // bin, bin/app, bin/b, vouch, vouch/vouch-rte
}

TEST_F(ConvertTest, ConfigDiffIdThatLiesAboutTheLayerWritesNothing) {
  // The layer blob matches its manifest digest, but the config claims other uncompressed content.
  const std::string other = oci::Sha256Digest(Tar({{"bin", AE_IFDIR}, {"bin/app", AE_IFREG, "evil"}}));
  WriteInput(TwoFileLayer(oci::Compression::kGzip), {{"Cmd", {"/bin/app"}}}, other, oci::kOciLayerGzip);
  auto key = crypto::GenerateP256();
  auto r = Convert(Options(key->get()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "digest_mismatch");
  EXPECT_NE(r.status().message().find("rootfs.diff_ids[0]"), std::string::npos) << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out"));
  // A gzip layer whose diff_id is the compressed digest (a common forgery or tool bug) too.
  std::filesystem::remove_all(dir_ + "/in");
  std::filesystem::remove_all(dir_ + "/seed");
  const std::string gz = TwoFileLayer(oci::Compression::kGzip);
  WriteInput(gz, {{"Cmd", {"/bin/app"}}}, oci::Sha256Digest(gz), oci::kOciLayerGzip);
  EXPECT_EQ(Convert(Options(key->get())).status().reason(), "digest_mismatch");
}

TEST_F(ConvertTest, ImageWithoutCommandNeedsAnEntrypoint) {
  WriteInput(Tar({{"bin", AE_IFDIR}}), json::object());
  auto key = crypto::GenerateP256();
  EXPECT_EQ(Convert(Options(key->get())).status().reason(), "no_entrypoint");
  ConvertOptions o = Options(key->get());
  o.entrypoint = std::vector<std::string>{"/bin/app"};
  auto missing = Convert(o);
  EXPECT_EQ(missing.status().reason(), "entrypoint_not_found");
  EXPECT_NE(missing.status().message().find("/bin/app"), std::string::npos) << missing.status().message();
  std::filesystem::remove_all(dir_ + "/in");
  std::filesystem::remove_all(dir_ + "/seed");
  WriteInput(Tar({{"bin", AE_IFDIR}, {"bin/app", AE_IFREG, "app"}}), json::object());
  EXPECT_TRUE(Convert(o).ok());
}

RootFs Tree(const std::vector<E>& entries) {
  RootFs fs;
  EXPECT_TRUE(fs.ApplyLayerMemory(Tar(entries), {}).ok());
  return fs;
}

TEST(ResolveProgram, FollowsPathOrderAndSymlinksInsideTheImage) {
  // Merged /usr: /bin -> usr/bin; sh -> busybox; an executable earlier in PATH wins.
  RootFs fs = Tree({{"usr", AE_IFDIR},
                    {"usr/bin", AE_IFDIR},
                    {"usr/bin/busybox", AE_IFREG, "bb"},
                    {"usr/bin/sh", AE_IFLNK, "", "busybox"},
                    {"bin", AE_IFLNK, "", "usr/bin"},
                    {"usr/local", AE_IFDIR},
                    {"usr/local/bin", AE_IFDIR},
                    {"usr/local/bin/tool", AE_IFREG, "t", {}, false, 0644},  // not executable: skipped
                    {"usr/bin/tool", AE_IFREG, "t2"},
                    {"srv", AE_IFDIR},
                    {"srv/run", AE_IFLNK, "", "/bin/sh"}});
  EXPECT_EQ(*ResolveProgram(fs, "sh", "/usr/local/bin:/bin", "/"), "/usr/bin/busybox");
  EXPECT_EQ(*ResolveProgram(fs, "tool", "", "/"), "/usr/bin/tool");
  EXPECT_EQ(*ResolveProgram(fs, "/bin/sh", "", "/"), "/usr/bin/busybox");
  EXPECT_EQ(*ResolveProgram(fs, "./run", "", "/srv"), "/usr/bin/busybox");
  EXPECT_EQ(*ResolveProgram(fs, "sh", "relative/dir:/bin", "/"), "/usr/bin/busybox");
  EXPECT_EQ(ResolveProgram(fs, "nope", "/bin", "/").status().reason(), "entrypoint_not_found");
  EXPECT_EQ(ResolveProgram(fs, "/usr/bin", "", "/").status().reason(), "entrypoint_not_found");
  EXPECT_EQ(ResolveProgram(fs, "/usr/local/bin/tool", "", "/").status().reason(), "entrypoint_not_found");
  EXPECT_EQ(ResolveProgram(fs, "sh", "relative/dir", "/").status().reason(), "entrypoint_not_found");
}

TEST(ResolveProgram, RefusesASymlinkThatLeavesTheRoot) {
  // Each link stays inside the root on its own (the layer check), but /lnk is the root itself,
  // so ../lnk/../x climbs above it.
  RootFs fs = Tree({{"lnk", AE_IFLNK, "", "/"},
                    {"x", AE_IFREG, "x"},
                    {"bin", AE_IFDIR},
                    {"bin/app", AE_IFLNK, "", "../lnk/../x"}});
  auto r = ResolveProgram(fs, "app", "/bin", "/");
  EXPECT_EQ(r.status().reason(), "entrypoint_escapes_root") << r.status().ToString();
  EXPECT_EQ(ResolveProgram(fs, "../../x", "", "/").status().reason(), "entrypoint_escapes_root");
}

TEST_F(ConvertTest, RecordsTheResolvedProgramAndListsDirectories) {
  WriteInput(Tar({{"bin", AE_IFDIR},
                  {"bin/busybox", AE_IFREG, "bb"},
                  {"bin/sh", AE_IFLNK, "", "busybox"},
                  {"etc", AE_IFDIR},
                  {"etc/empty", AE_IFDIR}}),
             {{"Entrypoint", {"sh", "-c"}}, {"Cmd", {"echo hi"}}, {"Env", {"PATH=/usr/bin:/bin"}}});
  auto key = crypto::GenerateP256();
  auto r = Convert(Options(key->get()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto m = manifest::Parse(r->manifest);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->entrypoint, (std::vector<std::string>{"sh", "-c"}));
  EXPECT_EQ(m->exec_path, "/bin/busybox");
  EXPECT_EQ(r->exec_path, "/bin/busybox");
  ASSERT_NE(manifest::FindEntry(*m, "/etc/empty"), nullptr);
  EXPECT_EQ(manifest::FindEntry(*m, "/etc/empty")->type, manifest::FileEntry::Type::kDir);

  // A search path into a read-write directory: refused.
  ConvertOptions tmp_path = Options(key->get());
  tmp_path.env = {"PATH=/tmp/bin:/bin"};
  EXPECT_EQ(Convert(tmp_path).status().reason(), "search_path_not_protected");
  tmp_path.env = {"LD_LIBRARY_PATH=lib"};
  EXPECT_EQ(Convert(tmp_path).status().reason(), "search_path_not_protected");

  // The program in a read-write directory is not measured: refused.
  ConvertOptions o = Options(key->get());
  o.base.rw_dirs.push_back("/bin");
  EXPECT_EQ(Convert(o).status().reason(), "entrypoint_not_protected");
}

TEST_F(ConvertTest, CredentialsDirectoryMayNotComeFromTheImage) {
  WriteInput(Tar({{"bin", AE_IFDIR},
                  {"bin/app", AE_IFREG, "app"},
                  {"run", AE_IFDIR},
                  {"run/vouch", AE_IFLNK, "", "/etc"},
                  {"etc", AE_IFDIR}}),
             {{"Cmd", {"/bin/app"}}});
  auto key = crypto::GenerateP256();
  ConvertOptions o = Options(key->get());
  o.base.certificates.push_back(manifest::CertificateRequest{});
  auto r = Convert(o);
  EXPECT_EQ(r.status().reason(), "credentials_dir_in_image");
  EXPECT_NE(r.status().message().find("/run/vouch"), std::string::npos) << r.status().message();
  o.base.certificates[0].key_path = "/etc/key.pem";  // an image directory
  o.base.certificates[0].cert_path = "/etc/cert.pem";
  o.base.certificates[0].ca_path = "/etc/ca.pem";
  EXPECT_EQ(Convert(o).status().reason(), "credentials_dir_in_image");
  o.base.certificates[0] = manifest::CertificateRequest{};
  o.base.certificates[0].key_path = "/var/vouch/key.pem";
  o.base.certificates[0].cert_path = "/var/vouch/cert.pem";
  o.base.certificates[0].ca_path = "/var/vouch/ca.pem";
  o.base.agent_socket = "/var/vouch/agent.sock";  // emptied at start: not with the socket in it
  EXPECT_EQ(Convert(o).status().reason(), "credentials_dir_in_image");
  o.base.agent_socket = "/var/agent.sock";
  EXPECT_TRUE(Convert(o).ok());
}

// --- progress and cancellation ------------------------------------------------------------------

TEST_F(ConvertTest, ReportsProgressThroughEveryPhaseInOrder) {
  WriteInput(TwoFileLayer(oci::Compression::kGzip), {{"Cmd", {"/bin/app"}}},
             oci::Sha256Digest(TwoFileLayer(oci::Compression::kNone)), oci::kOciLayerGzip);
  auto key = crypto::GenerateP256();
  ConvertOptions o = Options(key->get());
  std::vector<Progress> seen;
  o.on_progress = [&](const Progress& p) { seen.push_back(p); };
  auto r = Convert(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::string> phases;
  for (const Progress& p : seen) {
    if (phases.empty() || phases.back() != p.phase) phases.emplace_back(p.phase);
    EXPECT_LE(p.layers_done, p.layers_total) << p.phase;
    if (p.bytes_total != 0) {
      EXPECT_LE(p.bytes_done, p.bytes_total) << p.phase;
    }
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"pulling", "converting", "pushing"}));
  // The last report of each phase is complete: pulling 1 layer, converting 1, pushing 2 (the
  // input layer and the runtime's).
  auto last = [&](std::string_view phase) {
    Progress out;
    for (const Progress& p : seen) {
      if (p.phase == phase) out = p;
    }
    return out;
  };
  for (auto [phase, layers] : {std::pair<std::string_view, uint64_t>{kPhasePulling, 1}, {kPhaseConverting, 1},
                               {kPhasePushing, 2}}) {
    Progress p = last(phase);
    EXPECT_EQ(p.layers_total, layers) << phase;
    EXPECT_EQ(p.layers_done, layers) << phase;
    EXPECT_GT(p.bytes_total, 0u) << phase;
    EXPECT_EQ(p.bytes_done, p.bytes_total) << phase;
  }
  // Bytes only grow within a phase.
  for (size_t i = 1; i < seen.size(); ++i) {
    if (seen[i].phase == seen[i - 1].phase) {
      EXPECT_GE(seen[i].bytes_done, seen[i - 1].bytes_done);
    }
  }
}

TEST_F(ConvertTest, CancelInEachPhaseStopsAndWritesNoOutputBeforeThePush) {
  WriteInput(TwoFileLayer(oci::Compression::kNone), {{"Cmd", {"/bin/app"}}});
  auto key = crypto::GenerateP256();
  for (std::string_view phase : {kPhasePulling, kPhaseConverting, kPhasePushing}) {
    ConvertOptions o = Options(key->get());
    o.output = "oci:" + dir_ + "/cancelled-" + std::string(phase) + ":t";
    CancelToken token;
    o.cancel = &token;
    std::vector<std::string> after;  // phases reported after the cancel
    o.on_progress = [&](const Progress& p) {
      if (token.cancelled()) after.emplace_back(p.phase);
      if (p.phase == phase) token.Cancel();
    };
    auto r = Convert(o);
    ASSERT_FALSE(r.ok()) << phase;
    EXPECT_EQ(r.status().reason(), oci::kCancelled) << phase << ": " << r.status().ToString();
    EXPECT_EQ(FailureCode(r.status()), "cancelled");
    for (const std::string& p : after) EXPECT_EQ(p, phase) << "a later phase ran after the cancel";
    // Before the push nothing exists at the output; a push cancelled at its start has no manifest.
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/cancelled-" + std::string(phase) + "/index.json")) << phase;
  }
}

TEST_F(ConvertTest, FailureCodesNameWhatUsersHit) {
  WriteInput(Tar({{"etc", AE_IFDIR}, {"etc/link", AE_IFLNK, "", "../../../root"}}), {{"Cmd", {"/bin/sh"}}});
  auto key = crypto::GenerateP256();
  auto hostile = Convert(Options(key->get()));
  ASSERT_FALSE(hostile.ok());
  EXPECT_EQ(FailureCode(hostile.status()), kImageRejected) << hostile.status().ToString();
  ConvertOptions missing = Options(key->get());
  missing.input = "oci:" + dir_ + "/in:nope";
  auto nf = Convert(missing);
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(FailureCode(nf.status()), oci::kImageNotFound) << nf.status().ToString();
  EXPECT_EQ(FailureCode(Status(StatusCode::kResourceExhausted, "full", std::string(oci::kScratchExhausted))),
            "scratch_exhausted");
  EXPECT_EQ(FailureCode(Status(StatusCode::kUnavailable, "x", "registry_unreachable")), "registry_unreachable");
  EXPECT_EQ(FailureCode(Status(StatusCode::kInternal, "x", "io_error")), kConversionFailed);
}

// --- options: one set of names and defaults for the CLI and vouchd ------------------------------

std::vector<std::string> ParseArgs(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse
  app.parse(args);
  return {};
}

TEST(ConversionOptions, EveryJsonKeyIsAFlagWithTheSameDefault) {
  CLI::App app;
  FlagValues v;
  AddFlags(app, &v);
  ParseArgs(app, {});
  auto from_flags = FromFlags(v);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status().ToString();
  auto from_json = SettingsFromJson(json::object());
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  EXPECT_EQ(SettingsToJson(*from_flags), SettingsToJson(*from_json));
  json keys = SettingsToJson(*from_json);
  ASSERT_EQ(keys.size(), SettingsKeys().size());
  for (const auto& [key, flag] : SettingsKeys()) {
    EXPECT_TRUE(keys.contains(key)) << key;
    EXPECT_NO_THROW(app.get_option(flag)) << flag << " (for " << key << ") is not a flag";
  }
  // The documented defaults.
  EXPECT_EQ(keys["platform"], "linux/amd64");
  EXPECT_EQ(keys["cert_key_type"], "ec-p256");
  EXPECT_EQ(keys["heartbeat_interval"], 30);
  EXPECT_EQ(keys["max_layer_size"], "16G");
  EXPECT_EQ(keys["max_content_size"], "64G");
  EXPECT_EQ(keys["agent_socket"], "/run/vouch/agent.sock");
  EXPECT_EQ(keys["key_path"], "/run/vouch/certs/key.pem");
}

TEST(ConversionOptions, FlagsAndJsonGiveTheSameSettings) {
  CLI::App app;
  FlagValues v;
  AddFlags(app, &v);
  ParseArgs(app, {"--entrypoint", "[\"/bin/sh\",\"-c\"]", "--args", "serve", "--allow-cmdline-args", "--env", "A=1",
                  "--env", "B=2", "--mutable-env", "PORT", "--mem-size", "2048M", "--threads", "8", "--isvprodid", "7",
                  "--isvsvn", "3", "--debug", "--cert-subject", "CN=web", "--cert-dns", "web.example", "--cert-key-type",
                  "rsa-3072", "--key-path", "/k/key.pem", "--cert-path", "/k/cert.pem", "--ca-path", "/k/ca.pem",
                  "--no-certificate", "--no-heartbeat", "--heartbeat-interval", "60", "--ro-dir", "/app", "--rw-dir",
                  "/data", "--agent-socket", "/run/a.sock", "--platform", "linux/arm64/v8", "--max-layer-size", "1G",
                  "--max-content-size", "2G"});
  auto from_flags = FromFlags(v);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status().ToString();
  json body = {{"entrypoint", {"/bin/sh", "-c"}}, {"args", "serve"}, {"allow_cmdline_args", true},
               {"env", {"A=1", "B=2"}}, {"mutable_env", {"PORT"}}, {"mem_size", "2048M"}, {"threads", 8},
               {"isvprodid", 7}, {"isvsvn", 3}, {"debug", true}, {"cert_subject", "CN=web"},
               {"cert_dns", {"web.example"}}, {"cert_key_type", "rsa-3072"}, {"key_path", "/k/key.pem"},
               {"cert_path", "/k/cert.pem"}, {"ca_path", "/k/ca.pem"}, {"no_certificate", true},
               {"no_heartbeat", true}, {"heartbeat_interval", 60}, {"ro_dirs", {"/app"}}, {"rw_dirs", {"/data"}},
               {"agent_socket", "/run/a.sock"}, {"platform", "linux/arm64/v8"}, {"max_layer_size", "1G"},
               {"max_content_size", "2G"}};
  auto from_json = SettingsFromJson(body);
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  EXPECT_EQ(SettingsToJson(*from_flags), SettingsToJson(*from_json));
  // Every key was set to a non-default value above: the JSON round-trips.
  EXPECT_EQ(SettingsToJson(*SettingsFromJson(SettingsToJson(*from_json))), SettingsToJson(*from_json));
  for (const auto& [key, flag] : SettingsKeys()) EXPECT_TRUE(body.contains(key)) << key << " not exercised";

  ConvertOptions o;
  ASSERT_TRUE(ApplyTo(*from_json, &o).ok());
  EXPECT_EQ(o.input_transport.platform.ToString(), "linux/arm64/v8");
  EXPECT_EQ(o.output_transport.max_blob_bytes, 1ull << 30);
  EXPECT_EQ(o.limits.max_total_bytes, 2ull << 30);
  EXPECT_EQ(*o.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(*o.args, (std::vector<std::string>{"serve"}));
  EXPECT_EQ(o.base.memory_size_bytes, 2048ull << 20);
  EXPECT_EQ(o.base.isvprodid, 7u);
  EXPECT_TRUE(o.base.debug);
  EXPECT_TRUE(o.base.certificates.empty());
  EXPECT_FALSE(o.base.heartbeat);
  EXPECT_EQ(o.base.rw_dirs, (std::vector<std::string>{"/data"}));
  ConvertOptions d;
  ASSERT_TRUE(ApplyTo(ConversionSettings{}, &d).ok());
  EXPECT_EQ(d.base.rw_dirs, DefaultRwDirs());
  ASSERT_EQ(d.base.certificates.size(), 1u);
  EXPECT_EQ(d.base.certificates[0].key_type, "ec-p256");
}

TEST(ConversionOptions, JsonIsCheckedStrictly) {
  auto reason = [](const json& j) { return SettingsFromJson(j).status().reason(); };
  EXPECT_EQ(reason(json::array()), kInvalidOptions);
  EXPECT_EQ(reason({{"entrypont", "/x"}}), "unknown_field");
  EXPECT_EQ(reason({{"isvsvn", 65536}}), kInvalidOptions);
  EXPECT_EQ(reason({{"isvsvn", -1}}), kInvalidOptions);
  EXPECT_EQ(reason({{"isvsvn", "1"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"debug", 1}}), kInvalidOptions);
  EXPECT_EQ(reason({{"heartbeat_interval", 0}}), kInvalidOptions);
  EXPECT_EQ(reason({{"max_layer_size", "12Q"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"max_layer_size", "0"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"mem_size", "99999999999999999999G"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"platform", "linux"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"cert_key_type", "dsa"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"env", {"NOEQUALS"}}}), kInvalidOptions);
  EXPECT_EQ(reason({{"ro_dirs", {"relative"}}}), kInvalidOptions);
  EXPECT_EQ(reason({{"rw_dirs", {"/a/../b"}}}), kInvalidOptions);
  EXPECT_EQ(reason({{"entrypoint", "[1,2]"}}), kInvalidOptions);
  EXPECT_EQ(reason({{"env", json::array({1})}}), kInvalidOptions);
  EXPECT_EQ(reason({{"cert_dns", std::vector<std::string>(300, "a.example")}}), kInvalidOptions);
  EXPECT_EQ(reason({{"cert_subject", std::string(5000, 'x')}}), kInvalidOptions);
  EXPECT_TRUE(SettingsFromJson(nullptr).ok());
  EXPECT_TRUE(SettingsFromJson({{"isvsvn", nullptr}}).ok());  // null: the default
  auto msg = SettingsFromJson({{"isvsvn", 70000}}).status().message();
  EXPECT_NE(msg.find("options.isvsvn"), std::string::npos) << msg;
}

}  // namespace
}  // namespace vouch::convert
