#include "manifest/manifest.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/signature.h"

namespace vouch::manifest {
namespace {

using json = nlohmann::json;

json ToJson(const EnclaveManifest& m) {
  json certs = json::array();
  for (const CertificateRequest& c : m.certificates) {
    certs.push_back({{"subject", c.subject},
                     {"dns_names", c.dns_names},
                     {"key_type", c.key_type},
                     {"key_path", c.key_path},
                     {"cert_path", c.cert_path},
                     {"ca_path", c.ca_path}});
  }
  json files = json::array();
  for (const FileEntry& f : m.files) {
    if (f.type == FileEntry::Type::kFile) {
      files.push_back({{"type", "file"}, {"path", f.path}, {"sha256", f.sha256}, {"size", f.size}, {"mode", f.mode}});
    } else if (f.type == FileEntry::Type::kDir) {
      files.push_back({{"type", "dir"}, {"path", f.path}, {"mode", f.mode}});
    } else {
      files.push_back({{"type", "symlink"}, {"path", f.path}, {"target", f.target}});
    }
  }
  return {{"format", kFormat},
          {"app", m.app},
          {"entrypoint", m.entrypoint},
          {"exec_path", m.exec_path},
          {"args", m.args},
          {"allow_cmdline_args", m.allow_cmdline_args},
          {"env", m.env},
          {"mutable_env", m.mutable_env},
          {"workdir", m.workdir},
          {"user", m.user},
          {"memory_size_bytes", m.memory_size_bytes},
          {"threads", m.threads},
          {"isvprodid", m.isvprodid},
          {"isvsvn", m.isvsvn},
          {"debug", m.debug},
          {"certificates", certs},
          {"heartbeat", {{"enabled", m.heartbeat}, {"interval_seconds", m.heartbeat_interval_seconds}}},
          {"ro_dirs", m.ro_dirs},
          {"rw_dirs", m.rw_dirs},
          {"agent_socket", m.agent_socket},
          {"manager_url", m.manager_url},
          {"zone_ca_pem", m.zone_ca_pem},
          {"files", files}};
}

// Typed accessors that record the first problem instead of throwing.
struct Reader {
  std::string error;
  const json* Get(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end()) {
      if (error.empty()) error = std::string("missing field ") + key;
      return nullptr;
    }
    return &*it;
  }
  std::string Str(const json& o, const char* key) {
    const json* v = Get(o, key);
    if (v == nullptr) return {};
    if (!v->is_string()) {
      if (error.empty()) error = std::string(key) + " is not a string";
      return {};
    }
    return v->get<std::string>();
  }
  bool Bool(const json& o, const char* key) {
    const json* v = Get(o, key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      if (error.empty()) error = std::string(key) + " is not a boolean";
      return false;
    }
    return v->get<bool>();
  }
  uint64_t U64(const json& o, const char* key, uint64_t max) {
    const json* v = Get(o, key);
    if (v == nullptr) return 0;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      if (error.empty()) error = std::string(key) + " is not an integer in 0.." + std::to_string(max);
      return 0;
    }
    return v->get<uint64_t>();
  }
  std::vector<std::string> Strings(const json& o, const char* key) {
    std::vector<std::string> out;
    const json* v = Get(o, key);
    if (v == nullptr) return out;
    if (!v->is_array()) {
      if (error.empty()) error = std::string(key) + " is not an array";
      return out;
    }
    for (const json& s : *v) {
      if (!s.is_string()) {
        if (error.empty()) error = std::string(key) + " holds a non-string";
        return {};
      }
      out.push_back(s.get<std::string>());
    }
    return out;
  }
};

}  // namespace

Result<std::string> ToCanonical(const EnclaveManifest& m) {
  try {
    return ToJson(m).dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::strict);
  } catch (const json::exception&) {
    return InvalidArgument("manifest holds a string that is not valid UTF-8 (a file name?)", "invalid_manifest");
  }
}

Result<EnclaveManifest> Parse(std::string_view canonical) {
  if (canonical.size() > kMaxManifestBytes) return InvalidArgument("manifest too large", "invalid_manifest");
  json j = json::parse(canonical, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("manifest is not a JSON object", "invalid_manifest");
  Reader r;
  EnclaveManifest m;
  if (const std::string format = r.Str(j, "format"); format == kFormatV1) {
    return FailedPrecondition("manifest format " + std::string(kFormatV1) +
                                  " lists neither directories nor the resolved program; convert the image again "
                                  "with this vouch",
                              "manifest_format_unsupported");
  } else if (format != kFormat) {
    return InvalidArgument("manifest format is not " + std::string(kFormat), "invalid_manifest");
  }
  m.app = r.Str(j, "app");
  m.entrypoint = r.Strings(j, "entrypoint");
  m.exec_path = r.Str(j, "exec_path");
  m.args = r.Strings(j, "args");
  m.allow_cmdline_args = r.Bool(j, "allow_cmdline_args");
  m.env = r.Strings(j, "env");
  m.mutable_env = r.Strings(j, "mutable_env");
  m.workdir = r.Str(j, "workdir");
  m.user = r.Str(j, "user");
  m.memory_size_bytes = r.U64(j, "memory_size_bytes", UINT64_MAX);
  m.threads = static_cast<uint32_t>(r.U64(j, "threads", UINT32_MAX));
  m.isvprodid = static_cast<uint32_t>(r.U64(j, "isvprodid", 65535));
  m.isvsvn = static_cast<uint32_t>(r.U64(j, "isvsvn", 65535));
  m.debug = r.Bool(j, "debug");
  if (const json* certs = r.Get(j, "certificates"); certs != nullptr && certs->is_array()) {
    for (const json& c : *certs) {
      if (!c.is_object()) return InvalidArgument("certificate request is not an object", "invalid_manifest");
      CertificateRequest cr;
      cr.subject = r.Str(c, "subject");
      cr.dns_names = r.Strings(c, "dns_names");
      cr.key_type = r.Str(c, "key_type");
      cr.key_path = r.Str(c, "key_path");
      cr.cert_path = r.Str(c, "cert_path");
      cr.ca_path = r.Str(c, "ca_path");
      m.certificates.push_back(std::move(cr));
    }
  }
  if (const json* hb = r.Get(j, "heartbeat"); hb != nullptr && hb->is_object()) {
    m.heartbeat = r.Bool(*hb, "enabled");
    m.heartbeat_interval_seconds = static_cast<uint32_t>(r.U64(*hb, "interval_seconds", 86400));
  }
  m.ro_dirs = r.Strings(j, "ro_dirs");
  m.rw_dirs = r.Strings(j, "rw_dirs");
  m.agent_socket = r.Str(j, "agent_socket");
  m.manager_url = r.Str(j, "manager_url");
  m.zone_ca_pem = r.Str(j, "zone_ca_pem");
  if (const json* files = r.Get(j, "files"); files != nullptr && files->is_array()) {
    m.files.reserve(files->size());
    for (const json& f : *files) {
      if (!f.is_object()) return InvalidArgument("file entry is not an object", "invalid_manifest");
      FileEntry e;
      std::string type = r.Str(f, "type");
      e.path = r.Str(f, "path");
      if (type == "file") {
        e.type = FileEntry::Type::kFile;
        e.sha256 = r.Str(f, "sha256");
        e.size = r.U64(f, "size", UINT64_MAX);
        e.mode = static_cast<uint32_t>(r.U64(f, "mode", 07777));
        if (e.sha256.size() != 64 || !HexDecode(e.sha256).ok()) {
          return InvalidArgument("file " + e.path.substr(0, 200) + " has a malformed sha256", "invalid_manifest");
        }
      } else if (type == "dir") {
        e.type = FileEntry::Type::kDir;
        e.mode = static_cast<uint32_t>(r.U64(f, "mode", 07777));
      } else if (type == "symlink") {
        e.type = FileEntry::Type::kSymlink;
        e.target = r.Str(f, "target");
      } else {
        return InvalidArgument("file entry type \"" + type.substr(0, 40) + "\" unknown", "invalid_manifest");
      }
      if (e.path.empty() || e.path.front() != '/' || e.path.find("/../") != std::string::npos ||
          (e.path.size() >= 3 && e.path.substr(e.path.size() - 3) == "/..")) {
        return InvalidArgument("file path \"" + e.path.substr(0, 200) + "\" is not absolute and normalised",
                               "invalid_manifest");
      }
      if (!m.files.empty() && !(m.files.back().path < e.path)) {
        return InvalidArgument("files are not sorted by path or not unique", "invalid_manifest");
      }
      m.files.push_back(std::move(e));
    }
  }
  if (!r.error.empty()) return InvalidArgument("manifest: " + r.error, "invalid_manifest");
  if (m.entrypoint.empty() && m.args.empty()) return InvalidArgument("manifest has nothing to run", "invalid_manifest");
  for (const CertificateRequest& c : m.certificates) {
    for (const std::string* p : {&c.key_path, &c.cert_path, &c.ca_path}) {
      const bool normal = p->size() > 1 && p->front() == '/' && p->back() != '/' &&
                          p->find("/../") == std::string::npos && p->find("/./") == std::string::npos &&
                          p->find("//") == std::string::npos && ParentDir(*p) != "/";
      if (!normal) {
        return InvalidArgument("credential path \"" + p->substr(0, 200) +
                                   "\" is not an absolute, normalised path below a directory other than /",
                               "invalid_manifest");
      }
    }
  }
  const FileEntry* program = FindEntry(m, m.exec_path);
  if (program == nullptr || program->type != FileEntry::Type::kFile || (program->mode & 0111) == 0) {
    return InvalidArgument("exec_path \"" + m.exec_path.substr(0, 200) + "\" is not a listed executable file",
                           "invalid_manifest");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string again, ToCanonical(m));
  if (again != canonical) return InvalidArgument("manifest is not in canonical form", "invalid_manifest");
  return m;
}

crypto::Sha256Digest Mrenclave(std::string_view canonical) { return crypto::Sha256(canonical); }

Result<crypto::Sha256Digest> Mrsigner(EVP_PKEY* signer) {
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> spki, crypto::PublicKeyToDer(signer));
  return crypto::Sha256(spki);
}

Status CheckSigningKey(EVP_PKEY* key) {
  std::string d = crypto::DescribeKey(key);
  if (d != "EC P-256" && d != "RSA 3072") {
    return InvalidArgument("signing key is " + d + "; expected EC P-256 or RSA 3072", "invalid_signing_key");
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> Sign(EVP_PKEY* key, std::string_view canonical) {
  VOUCH_RETURN_IF_ERROR(CheckSigningKey(key));
  return crypto::Sign(key, AsBytes(canonical), crypto::DigestAlg::kSha256);
}

Status VerifySignature(EVP_PKEY* signer, std::string_view canonical, std::span<const uint8_t> signature) {
  VOUCH_RETURN_IF_ERROR(CheckSigningKey(signer));
  if (!crypto::Verify(signer, AsBytes(canonical), signature, crypto::DigestAlg::kSha256)) {
    return PermissionDenied("manifest signature does not verify with the signer key", "bad_manifest_signature");
  }
  return Status::Ok();
}

const FileEntry* FindEntry(const EnclaveManifest& m, std::string_view path) {
  auto it = std::lower_bound(m.files.begin(), m.files.end(), path,
                             [](const FileEntry& e, std::string_view p) { return e.path < p; });
  return it != m.files.end() && it->path == path ? &*it : nullptr;
}

std::string ParentDir(std::string_view path) {
  size_t s = path.rfind('/');
  return s == std::string_view::npos || s == 0 ? std::string("/") : std::string(path.substr(0, s));
}

std::vector<std::string> CredentialDirs(const EnclaveManifest& m) {
  std::vector<std::string> out;
  for (const CertificateRequest& c : m.certificates) {
    for (const std::string* p : {&c.key_path, &c.cert_path, &c.ca_path}) {
      std::string d = ParentDir(*p);
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
    }
  }
  return out;
}

bool PathUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  if (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

bool IsProtected(std::string_view path, const std::vector<std::string>& ro_dirs,
                 const std::vector<std::string>& rw_dirs) {
  size_t ro_best = 0, rw_best = 0;
  bool ro = false, rw = false;
  for (const std::string& d : ro_dirs) {
    if (PathUnder(path, d) && (!ro || d.size() >= ro_best)) {
      ro = true;
      ro_best = d.size();
    }
  }
  for (const std::string& d : rw_dirs) {
    if (PathUnder(path, d) && (!rw || d.size() >= rw_best)) {
      rw = true;
      rw_best = d.size();
    }
  }
  if (!ro) return false;
  return !rw || ro_best > rw_best;
}

}  // namespace vouch::manifest
