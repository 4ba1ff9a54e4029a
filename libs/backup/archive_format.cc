#include "backup/archive_format.h"

#include <nlohmann/json.hpp>
#include <set>

#include "base/byte_reader.h"
#include "base/encoding.h"
#include "crypto/digest.h"

namespace vouch::backup {
namespace {

Status Corrupt(const std::string& what) { return DataLoss("backup archive: " + what, std::string(kArchiveCorrupt)); }

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

nlohmann::json ManifestJson(const Manifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) {
    files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}, {"mode", f.mode}});
  }
  return {{"format", m.format},         {"vouch_version", m.vouch_version}, {"schema_version", m.schema_version},
          {"created_at", m.created_at}, {"store", m.store},                 {"files", files}};
}

Result<Manifest> ManifestFromJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Corrupt("the manifest is not a JSON object");
  auto str = [&](const char* key, std::string* out) -> Status {
    if (!j.contains(key) || !j[key].is_string()) return Corrupt(std::string("manifest.") + key + " must be a string");
    *out = j[key].get<std::string>();
    return Status::Ok();
  };
  Manifest m;
  if (!j.contains("format") || !j["format"].is_number_unsigned() || j["format"].get<uint64_t>() != kFormatVersion) {
    return Corrupt("manifest.format must be 1");
  }
  if (!j.contains("schema_version") || !j["schema_version"].is_number_integer() ||
      j["schema_version"].get<int64_t>() < 1 || j["schema_version"].get<int64_t>() > 1000000) {
    return Corrupt("manifest.schema_version must be a positive integer");
  }
  m.schema_version = j["schema_version"].get<int64_t>();
  VOUCH_RETURN_IF_ERROR(str("vouch_version", &m.vouch_version));
  VOUCH_RETURN_IF_ERROR(str("created_at", &m.created_at));
  VOUCH_RETURN_IF_ERROR(str("store", &m.store));
  if (!j.contains("files") || !j["files"].is_array()) return Corrupt("manifest.files must be an array");
  if (j["files"].size() > kMaxFiles) return Corrupt("more than " + std::to_string(kMaxFiles) + " files");
  std::set<std::string> seen;
  for (const auto& f : j["files"]) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("sha256") || !f["sha256"].is_string() || !f.contains("mode") ||
        !f["mode"].is_number_unsigned()) {
      return Corrupt("each manifest.files entry needs path, size, sha256 and mode");
    }
    ManifestFile mf;
    mf.path = f["path"].get<std::string>();
    mf.size = f["size"].get<uint64_t>();
    mf.sha256 = f["sha256"].get<std::string>();
    uint64_t mode = f["mode"].get<uint64_t>();
    if (mode > 0777) return Corrupt("file mode of " + mf.path + " is not permission bits");
    mf.mode = static_cast<uint32_t>(mode);
    if (!IsValidMemberPath(mf.path)) return Corrupt("member path '" + mf.path.substr(0, 200) + "' is not allowed");
    if (!seen.insert(mf.path).second) return Corrupt("member path '" + mf.path + "' appears twice");
    auto digest = HexDecode(mf.sha256);
    if (!digest.ok() || digest->size() != 32) return Corrupt("sha256 of " + mf.path + " is not 64 hex digits");
    m.files.push_back(std::move(mf));
  }
  return m;
}

}  // namespace

bool IsValidMemberPath(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  std::string_view last;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.size() > 255) return false;
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
      if (!ok) return false;
    }
    last = part;
    start = end + 1;
  }
  return last.rfind("master.key", 0) != 0;
}

Result<std::string> EncodeArchive(const Manifest& header, const std::vector<FileEntry>& files) {
  Manifest m = header;
  m.format = kFormatVersion;
  m.files.clear();
  std::set<std::string> seen;
  for (const auto& f : files) {
    if (!IsValidMemberPath(f.path)) {
      return InvalidArgument("'" + f.path + "' cannot be archived (name or master key)", std::string(kArchiveCorrupt));
    }
    if (!seen.insert(f.path).second) return InvalidArgument("'" + f.path + "' twice", std::string(kArchiveCorrupt));
    auto d = crypto::Sha256(std::string_view(f.data));
    m.files.push_back({f.path, f.data.size(), HexEncode(d), f.mode & 0777u});
  }
  std::string manifest = ManifestJson(m).dump(1);
  if (manifest.size() > kMaxManifestBytes) return InvalidArgument("manifest too large", std::string(kArchiveCorrupt));
  std::string out(kMagic);
  PutU32(&out, kFormatVersion);
  PutU32(&out, static_cast<uint32_t>(manifest.size()));
  out += manifest;
  for (const auto& f : files) out += f.data;
  auto sum = crypto::Sha256(std::string_view(out));
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

Result<Archive> ParseArchive(std::span<const uint8_t> data) {
  if (data.size() < kHeaderBytes + kTrailerBytes) {
    return Corrupt("is " + std::to_string(data.size()) + " bytes, expected at least " +
                   std::to_string(kHeaderBytes + kTrailerBytes));
  }
  ByteReader r(data.first(data.size() - kTrailerBytes));
  Bytes magic;
  uint32_t version = 0, manifest_len = 0;
  if (!r.ReadBytes(kMagic.size(), &magic) || !r.ReadU32(&version) || !r.ReadU32(&manifest_len)) {
    return Corrupt("truncated header");
  }
  if (ToString(magic) != kMagic) return Corrupt("not a vouch backup (bad magic)");
  if (version != kFormatVersion) {
    return Corrupt("format version " + std::to_string(version) + ", this binary reads " +
                   std::to_string(kFormatVersion));
  }
  auto body = data.first(data.size() - kTrailerBytes);
  auto want = crypto::Sha256(body);
  auto got = data.last(kTrailerBytes);
  if (!std::equal(want.begin(), want.end(), got.begin())) {
    return Corrupt("archive checksum mismatch (the file is damaged or was altered)");
  }
  if (manifest_len == 0 || manifest_len > kMaxManifestBytes) {
    return Corrupt("manifest length " + std::to_string(manifest_len) + " out of range");
  }
  Bytes manifest_bytes;
  if (!r.ReadBytes(manifest_len, &manifest_bytes)) {
    return Corrupt("manifest of " + std::to_string(manifest_len) + " bytes, only " + std::to_string(r.remaining()) +
                   " present");
  }
  Archive a;
  VOUCH_ASSIGN_OR_RETURN(a.manifest, ManifestFromJson(ToString(manifest_bytes)));
  uint64_t total = 0;
  for (const auto& f : a.manifest.files) {
    if (f.size > r.remaining() - std::min<uint64_t>(total, r.remaining())) {
      return Corrupt("file sizes exceed the " + std::to_string(r.remaining()) + " content bytes present");
    }
    total += f.size;
  }
  if (total != r.remaining()) {
    return Corrupt("contents are " + std::to_string(r.remaining()) + " bytes, the manifest lists " +
                   std::to_string(total));
  }
  for (const auto& f : a.manifest.files) {
    Bytes content;
    if (!r.ReadBytes(static_cast<size_t>(f.size), &content)) return Corrupt("truncated content of " + f.path);
    if (HexEncode(crypto::Sha256(content)) != f.sha256) return Corrupt("checksum mismatch for " + f.path);
    a.contents.push_back(content);
  }
  return a;
}

}  // namespace vouch::backup
