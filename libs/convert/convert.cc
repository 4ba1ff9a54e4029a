#include "convert/convert.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "convert/rootfs.h"
#include "oci/blob_store.h"
#include "oci/reasons.h"

namespace vouch::convert {
namespace {

using json = nlohmann::json;
using oci::TarEntry;

std::vector<std::string> StringList(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const json& s : j) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

std::string EnvName(const std::string& kv) { return kv.substr(0, kv.find('=')); }

std::string OciLayerType(const std::string& media_type) {
  if (media_type == oci::kDockerLayerGzip) return std::string(oci::kOciLayerGzip);
  if (media_type == oci::kDockerLayerTar) return std::string(oci::kOciLayerTar);
  return media_type;
}

// The progress of one conversion, reported through ConvertOptions::on_progress.
class Tracker {
 public:
  explicit Tracker(const ConvertOptions& o) : o_(o) {}
  void Phase(std::string_view phase, uint64_t layers_total, uint64_t bytes_total) {
    p_ = Progress{phase, 0, layers_total, 0, bytes_total};
    Emit();
  }
  void Totals(uint64_t layers_total, uint64_t bytes_total) {
    p_.layers_total = layers_total;
    p_.bytes_total = bytes_total;
    Emit();
  }
  void LayerDone() {
    ++p_.layers_done;
    Emit();
  }
  void Bytes(uint64_t n) {
    p_.bytes_done += n;
    Emit();
  }
  void SetBytes(uint64_t n) {
    p_.bytes_done = n;
    Emit();
  }
  void Finish() {
    p_.layers_done = p_.layers_total;
    p_.bytes_done = p_.bytes_total;
    Emit();
  }
  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->cancelled(); }
  // Transport options with hooks feeding this tracker (`blob_is_layer`: which blobs count as layers).
  oci::TransportOptions Hooked(const oci::TransportOptions& base, std::string config_digest_to_skip = {}) {
    oci::TransportOptions t = base;
    std::function<bool()> outer = base.hooks.cancelled;
    t.hooks.cancelled = [this, outer] { return Cancelled() || (outer && outer()); };
    t.hooks.on_bytes = [this](uint64_t n) { Bytes(n); };
    t.hooks.on_manifest = [this](const oci::ImageManifest& m) {
      config_digest_ = m.config.digest;
      uint64_t bytes = m.config.size;
      for (const oci::Descriptor& l : m.layers) bytes += l.size;
      Totals(m.layers.size(), bytes);
    };
    config_digest_ = std::move(config_digest_to_skip);
    t.hooks.on_blob = [this](const oci::Descriptor& d) {
      if (d.digest != config_digest_) LayerDone();
    };
    return t;
  }

 private:
  void Emit() {
    if (o_.on_progress) o_.on_progress(p_);
  }
  const ConvertOptions& o_;
  Progress p_;
  std::string config_digest_;
};

}  // namespace

std::string_view FailureCode(const Status& st) {
  const std::string& r = st.reason();
  for (std::string_view code : {oci::kRegistryUnreachable, oci::kRegistryAuthFailed, oci::kImageNotFound,
                                oci::kPlatformNotFound, oci::kPushRefused, oci::kScratchExhausted, oci::kCancelled}) {
    if (r == code) return code;
  }
  // What the image (or the options against it) makes impossible: limits, hostile or corrupt
  // content, unusable metadata, an entrypoint it does not have.
  static const char* const kRejected[] = {
      "hostile_layer",     "layer_too_large",        "image_too_large",         "blob_too_large",
      "digest_mismatch",   "corrupt_layer",          "invalid_image",           "unsupported_media_type",
      "invalid_manifest",  "ambiguous_image",        "already_converted",       "no_entrypoint",
      "entrypoint_not_found", "entrypoint_escapes_root", "entrypoint_not_protected", "search_path_not_protected",
      "unsupported_entry", "credentials_dir_in_image", "invalid_argument",       "invalid_media_type",
      "invalid_digest",    "unsupported_digest",
  };
  for (const char* code : kRejected) {
    if (r == code) return kImageRejected;
  }
  return kConversionFailed;
}

std::vector<std::string> DefaultRoDirs() { return {"/"}; }
std::vector<std::string> DefaultRwDirs() {
  return {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/tmp", "/var/tmp",
          "/run",       "/proc",         "/sys",             "/dev"};
}

Result<ConvertResult> Convert(const ConvertOptions& o) {
  if (o.signing_key == nullptr) return InvalidArgument("no signing key");
  VOUCH_RETURN_IF_ERROR(manifest::CheckSigningKey(o.signing_key));
  VOUCH_ASSIGN_OR_RETURN(oci::ImageLocation in, oci::ImageLocation::Parse(o.input));
  VOUCH_ASSIGN_OR_RETURN(oci::ImageLocation out, oci::ImageLocation::Parse(o.output));
  if (o.runtime_path.empty() || !FileExists(o.runtime_path)) {
    return NotFound("vouch-rte binary not found at \"" + o.runtime_path + "\" (pass --runtime)", "runtime_not_found");
  }
  VOUCH_ASSIGN_OR_RETURN(auto store, oci::BlobStore::Create(o.work_dir + "/blobs"));

  // 1. Read and verify the input.
  Tracker progress(o);
  progress.Phase(kPhasePulling, 0, 0);
  auto pulled = oci::PullImage(in, progress.Hooked(o.input_transport), *store);
  if (!pulled.ok()) return pulled.status().WithContext("reading " + in.ToString());
  oci::PulledImage& img = *pulled;
  progress.Finish();
  if (progress.Cancelled()) return oci::CancelledStatus();
  json config = json::parse(img.config_bytes, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return InvalidArgument("image config is not a JSON object", "invalid_image");
  if (config.value("os", std::string("linux")) != "linux") {
    return InvalidArgument("image is for os \"" + config.value("os", std::string()) + "\", expected linux", "invalid_image");
  }
  json& rootfs_j = config["rootfs"];
  if (!rootfs_j.is_object() || !rootfs_j.contains("diff_ids") || !rootfs_j["diff_ids"].is_array() ||
      rootfs_j["diff_ids"].size() != img.manifest.layers.size()) {
    return InvalidArgument("image config rootfs.diff_ids does not match the " +
                               std::to_string(img.manifest.layers.size()) + " layers",
                           "invalid_image");
  }

  // 2. The overlay tree, hashing every file.
  RootFs fs;
  ConvertResult result;
  {
    uint64_t total = 0;
    for (const oci::Descriptor& l : img.manifest.layers) total += l.size;
    progress.Phase(kPhaseConverting, img.manifest.layers.size(), total);
  }
  for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
    const oci::Descriptor& l = img.manifest.layers[i];
    if (progress.Cancelled()) return oci::CancelledStatus();
    const uint64_t before = result.layer_bytes;
    result.layer_bytes += l.size;
    oci::TarLimits limits = o.limits;
    limits.counted_before = fs.content_bytes();  // the content limit is per image, not per layer
    limits.on_progress = [&progress, before, size = l.size](uint64_t consumed) -> Status {
      if (progress.Cancelled()) return oci::CancelledStatus();
      progress.SetBytes(before + std::min(consumed, size));
      return Status::Ok();
    };
    std::string diff_id;
    Status st = fs.ApplyLayerFile(store->PathOf(l.digest), limits, &diff_id);
    if (st.reason() == oci::kCancelled) return st;
    if (!st.ok()) return st.WithContext("layer " + std::to_string(i) + " (" + l.digest + ")");
    // The config names each layer by the digest of its uncompressed stream; the runtime's
    // measurement comes from what the layers hold, but an image whose config disagrees with its
    // layers is corrupt or forged, and converting it would carry the lie into the output.
    const json& expected = rootfs_j["diff_ids"][i];
    if (!expected.is_string() || expected.get<std::string>() != diff_id) {
      return DataLoss("layer " + std::to_string(i) + " (" + l.digest + ") decompresses to " + diff_id +
                          " but the image config's rootfs.diff_ids[" + std::to_string(i) + "] is " +
                          (expected.is_string() ? expected.get<std::string>() : expected.dump()).substr(0, 80),
                      "digest_mismatch");
    }
    progress.SetBytes(result.layer_bytes);
    progress.LayerDone();
  }
  result.content_bytes = fs.content_bytes();
  if (fs.nodes().count("vouch") != 0) {
    return FailedPrecondition("image already has /vouch (converted already?)", "already_converted");
  }

  // 3. The manifest.
  manifest::EnclaveManifest m = o.base;
  m.files.clear();
  const json empty_obj = json::object();
  const json& cc = config.contains("config") && config["config"].is_object() ? config["config"] : empty_obj;
  if (o.entrypoint) {
    m.entrypoint = *o.entrypoint;
    m.args = o.args ? *o.args : std::vector<std::string>{};
  } else {
    m.entrypoint = StringList(cc.value("Entrypoint", json()));
    m.args = o.args ? *o.args : StringList(cc.value("Cmd", json()));
  }
  if (m.entrypoint.empty() && m.args.empty()) {
    return InvalidArgument("the image has no Entrypoint or Cmd; pass --entrypoint", "no_entrypoint");
  }
  // The program is fixed here: with no Entrypoint, Cmd[0] is the program and only the rest of
  // Cmd are arguments (which run-time arguments may replace when allowed).
  if (m.entrypoint.empty()) {
    m.entrypoint = {m.args.front()};
    m.args.erase(m.args.begin());
  }
  m.env = StringList(cc.value("Env", json()));
  for (const std::string& kv : o.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      return InvalidArgument("environment entry \"" + kv + "\" is not NAME=value", "invalid_argument");
    }
    std::erase_if(m.env, [&](const std::string& e) { return EnvName(e) == EnvName(kv); });
    m.env.push_back(kv);
  }
  m.workdir = cc.value("WorkingDir", std::string());
  m.user = cc.value("User", std::string());
  // Resolved once, here, through the image's PATH: vouch-rte executes exactly this file.
  std::string path_env;
  for (const std::string& kv : m.env) {
    if (EnvName(kv) == "PATH") path_env = kv.substr(5);
  }
  auto program = ResolveProgram(fs, m.entrypoint.front(), path_env, m.workdir);
  if (!program.ok()) return program.status();
  m.exec_path = *program;
  if (m.ro_dirs.empty()) m.ro_dirs = DefaultRoDirs();
  for (const auto* dirs : {&m.ro_dirs, &m.rw_dirs}) {
    for (const std::string& d : *dirs) {
      if (d.empty() || d.front() != '/' || d.find("/../") != std::string::npos || d.find("/./") != std::string::npos) {
        return InvalidArgument("directory \"" + d + "\" must be an absolute, normalised path", "invalid_argument");
      }
    }
  }
  if (!manifest::IsProtected(m.exec_path, m.ro_dirs, m.rw_dirs)) {
    return InvalidArgument("the entrypoint resolves to " + m.exec_path + ", which is in a read-write directory "
                           "(not measured); the program must be a protected file",
                           "entrypoint_not_protected");
  }
  // Search paths the program uses at run time (a script calling `ls`, the dynamic loader) must
  // not lead into a read-write directory, where anything may appear first.
  for (const std::string& kv : m.env) {
    const std::string name = EnvName(kv);
    if (name != "PATH" && name != "LD_LIBRARY_PATH") continue;
    const std::string value = kv.substr(name.size() + 1);
    size_t i = 0;
    while (i <= value.size()) {
      size_t j = value.find(':', i);
      if (j == std::string::npos) j = value.size();
      const std::string dir = value.substr(i, j - i);
      i = j + 1;
      if (dir.empty() || dir.front() != '/' || !manifest::IsProtected(dir, m.ro_dirs, m.rw_dirs)) {
        return InvalidArgument(name + " entry \"" + dir + "\" is " +
                                   (dir.empty() || dir.front() != '/' ? "not an absolute path"
                                                                      : "in a read-write directory") +
                                   ": files found there at run time would not be measured; remove it with --env " +
                                   name + "=...",
                               "search_path_not_protected");
      }
    }
  }
  // Every entry of a protected tree is listed, directories included: vouch-rte refuses to start
  // when it finds anything else there (docs/convert.md "What is protected").
  for (const auto& [path, node] : fs.nodes()) {
    const std::string abs = "/" + path;
    if (!manifest::IsProtected(abs, m.ro_dirs, m.rw_dirs)) continue;
    if (node.type == TarEntry::Type::kFile) {
      m.files.push_back({manifest::FileEntry::Type::kFile, abs, HexEncode(node.sha256), node.size, node.mode, {}});
    } else if (node.type == TarEntry::Type::kSymlink) {
      m.files.push_back({manifest::FileEntry::Type::kSymlink, abs, {}, 0, 0, node.link_target});
    } else if (node.type == TarEntry::Type::kDir) {
      m.files.push_back({manifest::FileEntry::Type::kDir, abs, {}, 0, node.mode & 07777, {}});
    } else {
      return InvalidArgument("the image has a FIFO at " + abs + " in a protected directory; the runtime accepts only "
                                 "files, symlinks and directories there (make its directory --rw-dir)",
                             "unsupported_entry");
    }
  }
  // The runtime and its directory are measured too.
  VOUCH_ASSIGN_OR_RETURN(auto rte_hash, oci::HashFile(o.runtime_path));
  m.files.push_back({manifest::FileEntry::Type::kFile, std::string(manifest::kRuntimePath),
                     oci::DigestHex(rte_hash.first), rte_hash.second, 0755, {}});
  if (manifest::IsProtected("/vouch", m.ro_dirs, m.rw_dirs)) {
    m.files.push_back({manifest::FileEntry::Type::kDir, "/vouch", {}, 0, 0755, {}});
  }
  // The credentials directories are made fresh by the runtime at every start: the image may not
  // have them, nor a symlink on the way to them.
  for (const std::string& dir : manifest::CredentialDirs(m)) {
    if (manifest::PathUnder(m.agent_socket, dir)) {
      return InvalidArgument("the credentials directory " + dir + " would hold the agent socket " + m.agent_socket +
                                 "; the runtime empties that directory at start: choose another one",
                             "credentials_dir_in_image");
    }
    for (std::string d = dir; d != "/"; d = manifest::ParentDir(d)) {
      auto it = fs.nodes().find(d.substr(1));
      if (it == fs.nodes().end()) continue;
      if (d == dir || it->second.type != TarEntry::Type::kDir) {
        return InvalidArgument("the credentials directory " + dir + " (of the key, certificate and CA paths) must not "
                                   "exist in the image, and no directory above it may be a symlink or a file, but " +
                                   d + " is there; choose a directory the image does not have",
                               "credentials_dir_in_image");
      }
    }
  }
  std::sort(m.files.begin(), m.files.end(),
            [](const manifest::FileEntry& a, const manifest::FileEntry& b) { return a.path < b.path; });
  result.protected_files = m.files.size();
  result.exec_path = m.exec_path;
  VOUCH_ASSIGN_OR_RETURN(std::string canonical, manifest::ToCanonical(m));
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> signature, manifest::Sign(o.signing_key, canonical));
  VOUCH_ASSIGN_OR_RETURN(crypto::Sha256Digest mrsigner, manifest::Mrsigner(o.signing_key));
  VOUCH_ASSIGN_OR_RETURN(std::string signer_pem, crypto::PublicKeyToPem(o.signing_key));
  result.mrenclave = HexEncode(manifest::Mrenclave(canonical));
  result.mrsigner = HexEncode(mrsigner);
  result.isvprodid = m.isvprodid;
  result.isvsvn = m.isvsvn;
  result.debug = m.debug;

  // 4. The new layer, written twice: plain for the diff_id, gzip for the blob.
  std::string diff_id;
  std::string layer_digest;
  uint64_t layer_size = 0;
  for (oci::Compression c : {oci::Compression::kNone, oci::Compression::kGzip}) {
    VOUCH_ASSIGN_OR_RETURN(auto w, oci::TarWriter::Create("", c));
    VOUCH_RETURN_IF_ERROR(w->AddDirectory("vouch", 0755));
    VOUCH_RETURN_IF_ERROR(w->AddFile("vouch/manifest.json", 0644, canonical));
    VOUCH_RETURN_IF_ERROR(w->AddFile("vouch/manifest.sig", 0644, ToString(signature)));
    VOUCH_RETURN_IF_ERROR(w->AddFile("vouch/signer.pem", 0644, signer_pem));
    VOUCH_RETURN_IF_ERROR(w->AddFileFromDisk("vouch/vouch-rte", 0755, o.runtime_path));
    VOUCH_RETURN_IF_ERROR(w->Close());
    if (c == oci::Compression::kNone) {
      diff_id = oci::Sha256Digest(w->data());
    } else {
      VOUCH_ASSIGN_OR_RETURN(layer_digest, store->PutBytes(w->data()));
      layer_size = w->data().size();
    }
  }

  // 5. The new config: the runtime is the entrypoint; everything else stays.
  json& c = config["config"];
  if (!c.is_object()) c = json::object();
  c["Entrypoint"] = json::array({std::string(manifest::kRuntimePath)});
  c.erase("Cmd");
  json& labels = c["Labels"];
  if (!labels.is_object()) labels = json::object();
  labels["dev.vouch.mrenclave"] = result.mrenclave;
  labels["dev.vouch.mrsigner"] = result.mrsigner;
  labels["dev.vouch.isvprodid"] = std::to_string(m.isvprodid);
  labels["dev.vouch.isvsvn"] = std::to_string(m.isvsvn);
  rootfs_j["diff_ids"].push_back(diff_id);
  if (!config.contains("history") || !config["history"].is_array()) config["history"] = json::array();
  config["history"].push_back({{"created_by", "vouch convert"}, {"comment", "vouch-rte and enclave manifest"}});
  const std::string config_bytes = config.dump();
  VOUCH_ASSIGN_OR_RETURN(std::string config_digest, store->PutBytes(config_bytes));

  // 6. The new manifest (always OCI).
  oci::ImageToPush push;
  push.manifest_media_type = std::string(oci::kOciManifest);
  push.manifest.media_type = push.manifest_media_type;
  push.manifest.config = {std::string(oci::kOciConfig), config_digest, config_bytes.size(), std::nullopt, {}};
  json mj = {{"schemaVersion", 2},
             {"mediaType", oci::kOciManifest},
             {"config", {{"mediaType", oci::kOciConfig}, {"digest", config_digest}, {"size", config_bytes.size()}}},
             {"layers", json::array()}};
  for (const oci::Descriptor& l : img.manifest.layers) {
    push.manifest.layers.push_back({OciLayerType(l.media_type), l.digest, l.size, std::nullopt, {}});
  }
  push.manifest.layers.push_back({std::string(oci::kOciLayerGzip), layer_digest, layer_size, std::nullopt, {}});
  for (const oci::Descriptor& l : push.manifest.layers) {
    mj["layers"].push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
  }
  mj["annotations"] = {{"dev.vouch.mrenclave", result.mrenclave}, {"dev.vouch.source-digest", img.manifest_digest}};
  push.manifest_bytes = mj.dump();

  // 7. Write.
  if (progress.Cancelled()) return oci::CancelledStatus();
  {
    uint64_t total = push.manifest.config.size;
    for (const oci::Descriptor& l : push.manifest.layers) total += l.size;
    progress.Phase(kPhasePushing, push.manifest.layers.size(), total);
  }
  auto pushed = oci::PushImage(out, push, progress.Hooked(o.output_transport, config_digest), *store);
  if (!pushed.ok()) return pushed.status().WithContext("writing " + out.ToString());
  progress.Finish();
  result.output = out.ToString();
  result.digest = *pushed;
  result.input_digest = img.manifest_digest;
  result.manifest = std::move(canonical);
  return result;
}

}  // namespace vouch::convert
