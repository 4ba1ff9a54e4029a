#include "convert/options.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <limits>

#include "oci/image.h"

namespace vouch::convert {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxItems = 256;     // entries of one list option
constexpr size_t kMaxText = 4096;     // one string option or list entry
constexpr uint64_t kMaxU16 = 65535;

Status Bad(const std::string& message) { return InvalidArgument(message, std::string(kInvalidOptions)); }

const std::vector<std::string>& KeyTypes() {
  static const std::vector<std::string> k = {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072"};
  return k;
}

// Strict readers of one key of the options object.
class Reader {
 public:
  explicit Reader(const json& j) : j_(j) {}
  const json* Get(const std::string& key) {
    seen_.push_back(key);
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  Status String(const std::string& key, std::string* out) {
    const json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Bad("options." + key + " must be a string");
    if (v->get_ref<const std::string&>().size() > kMaxText) return Bad("options." + key + " is too long");
    *out = v->get<std::string>();
    return Status::Ok();
  }
  Status Bool(const std::string& key, bool* out) {
    const json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Bad("options." + key + " must be true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status U32(const std::string& key, uint64_t max, uint32_t* out) {
    const json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() < 0) ||
        v->get<uint64_t>() > max) {
      return Bad("options." + key + " must be an integer in [0, " + std::to_string(max) + "]");
    }
    *out = static_cast<uint32_t>(v->get<uint64_t>());
    return Status::Ok();
  }
  Status Strings(const std::string& key, std::vector<std::string>* out) {
    const json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (v->is_string()) {  // one value, as a repeated flag given once
      if (v->get_ref<const std::string&>().size() > kMaxText) return Bad("options." + key + " is too long");
      *out = {v->get<std::string>()};
      return Status::Ok();
    }
    if (!v->is_array() || v->size() > kMaxItems) {
      return Bad("options." + key + " must be an array of at most " + std::to_string(kMaxItems) + " strings");
    }
    out->clear();
    for (const json& s : *v) {
      if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxText) {
        return Bad("options." + key + " must be an array of strings (each at most " + std::to_string(kMaxText) +
                   " bytes)");
      }
      out->push_back(s.get<std::string>());
    }
    return Status::Ok();
  }
  // entrypoint / args: a string (one word, or a JSON array as text, as on the command line) or an array.
  Status ArgList(const std::string& key, std::optional<std::vector<std::string>>* out) {
    const json* v = Get(key);
    if (v == nullptr) return Status::Ok();
    if (v->is_string()) {
      if (v->get_ref<const std::string&>().size() > kMaxText) return Bad("options." + key + " is too long");
      VOUCH_ASSIGN_OR_RETURN(*out, ParseArgList(v->get<std::string>(), "options." + key));
      if ((*out)->empty()) out->reset();
      return Status::Ok();
    }
    std::vector<std::string> list;
    VOUCH_RETURN_IF_ERROR(Strings(key, &list));
    *out = std::move(list);
    return Status::Ok();
  }
  Status Finish() const {
    for (const auto& [k, v] : j_.items()) {
      if (std::find(seen_.begin(), seen_.end(), k) == seen_.end()) {
        return InvalidArgument("options." + k.substr(0, 64) + " is not a conversion option", "unknown_field");
      }
    }
    return Status::Ok();
  }

 private:
  const json& j_;
  std::vector<std::string> seen_;
};

std::string Name(bool flags, std::string_view key) {
  if (!flags) return "options." + std::string(key);
  for (const auto& [k, flag] : SettingsKeys()) {
    if (k == key) return flag;
  }
  return std::string(key);
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& SettingsKeys() {
  static const std::vector<std::pair<std::string, std::string>> k = {
      {"entrypoint", "--entrypoint"},
      {"args", "--args"},
      {"allow_cmdline_args", "--allow-cmdline-args"},
      {"env", "--env"},
      {"mutable_env", "--mutable-env"},
      {"mem_size", "--mem-size"},
      {"threads", "--threads"},
      {"isvprodid", "--isvprodid"},
      {"isvsvn", "--isvsvn"},
      {"debug", "--debug"},
      {"cert_subject", "--cert-subject"},
      {"cert_dns", "--cert-dns"},
      {"cert_key_type", "--cert-key-type"},
      {"key_path", "--key-path"},
      {"cert_path", "--cert-path"},
      {"ca_path", "--ca-path"},
      {"no_certificate", "--no-certificate"},
      {"no_heartbeat", "--no-heartbeat"},
      {"heartbeat_interval", "--heartbeat-interval"},
      {"ro_dirs", "--ro-dir"},
      {"rw_dirs", "--rw-dir"},
      {"agent_socket", "--agent-socket"},
      {"platform", "--platform"},
      {"max_layer_size", "--max-layer-size"},
      {"max_content_size", "--max-content-size"},
  };
  return k;
}

Result<uint64_t> ParseSize(const std::string& s, std::string_view what) {
  if (s.empty()) return uint64_t{0};
  size_t pos = 0;
  uint64_t v = 0;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    const uint64_t d = static_cast<uint64_t>(s[pos] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return Bad(std::string(what) + " too large");
    v = v * 10 + d;
    ++pos;
  }
  if (pos == 0) return Bad(std::string(what) + " \"" + s.substr(0, 64) + "\" is not a size like 2048M");
  const std::string unit = s.substr(pos);
  uint64_t mul = 1;
  if (unit == "K" || unit == "k") mul = 1ull << 10;
  else if (unit == "M" || unit == "m") mul = 1ull << 20;
  else if (unit == "G" || unit == "g") mul = 1ull << 30;
  else if (!unit.empty()) return Bad(std::string(what) + " unit must be K, M or G");
  if (v > std::numeric_limits<uint64_t>::max() / mul) return Bad(std::string(what) + " too large");
  return v * mul;
}

Result<std::vector<std::string>> ParseArgList(const std::string& text, std::string_view what) {
  if (!text.empty() && text.front() == '[') {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return Bad(std::string(what) + " is not a JSON array of strings");
    std::vector<std::string> out;
    for (const json& s : j) {
      if (!s.is_string()) return Bad(std::string(what) + " is not a JSON array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  if (text.empty()) return std::vector<std::string>{};
  return std::vector<std::string>{text};
}

Status ValidateSettings(const ConversionSettings& s, bool flags) {
  if (s.isvprodid > kMaxU16) return Bad(Name(flags, "isvprodid") + " must be 0..65535");
  if (s.isvsvn > kMaxU16) return Bad(Name(flags, "isvsvn") + " must be 0..65535");
  if (s.heartbeat_interval < 1 || s.heartbeat_interval > 86400) {
    return Bad(Name(flags, "heartbeat_interval") + " must be 1..86400 seconds");
  }
  if (std::find(KeyTypes().begin(), KeyTypes().end(), s.cert_key_type) == KeyTypes().end()) {
    return Bad(Name(flags, "cert_key_type") + " must be one of ec-p256, ec-p384, rsa-2048, rsa-3072");
  }
  if (auto p = oci::Platform::Parse(s.platform); !p.ok()) {
    return Bad(Name(flags, "platform") + ": " + p.status().message());
  }
  VOUCH_RETURN_IF_ERROR(ParseSize(s.mem_size, Name(flags, "mem_size")).status());
  VOUCH_ASSIGN_OR_RETURN(uint64_t layer, ParseSize(s.max_layer_size, Name(flags, "max_layer_size")));
  if (layer == 0) return Bad(Name(flags, "max_layer_size") + " must be more than 0");
  VOUCH_ASSIGN_OR_RETURN(uint64_t content, ParseSize(s.max_content_size, Name(flags, "max_content_size")));
  if (content == 0) return Bad(Name(flags, "max_content_size") + " must be more than 0");
  for (const std::string& kv : s.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      return Bad(Name(flags, "env") + " entry \"" + kv.substr(0, 80) + "\" is not NAME=value");
    }
  }
  for (const auto* dirs : {&s.ro_dirs, &s.rw_dirs}) {
    for (const std::string& d : *dirs) {
      if (d.empty() || d.front() != '/' || d.find("/../") != std::string::npos || d.find("/./") != std::string::npos) {
        return Bad(Name(flags, dirs == &s.ro_dirs ? "ro_dirs" : "rw_dirs") + " entry \"" + d.substr(0, 80) +
                   "\" must be an absolute, normalised path");
      }
    }
  }
  for (const auto& [key, path] : {std::pair<const char*, const std::string*>{"key_path", &s.key_path},
                                  {"cert_path", &s.cert_path},
                                  {"ca_path", &s.ca_path},
                                  {"agent_socket", &s.agent_socket}}) {
    if (path->empty() || path->front() != '/') return Bad(Name(flags, key) + " must be an absolute path");
  }
  return Status::Ok();
}

Result<ConversionSettings> SettingsFromJson(const json& j) {
  ConversionSettings s;
  if (j.is_null()) return s;
  if (!j.is_object()) return Bad("options must be an object");
  Reader r(j);
  VOUCH_RETURN_IF_ERROR(r.ArgList("entrypoint", &s.entrypoint));
  VOUCH_RETURN_IF_ERROR(r.ArgList("args", &s.args));
  VOUCH_RETURN_IF_ERROR(r.Bool("allow_cmdline_args", &s.allow_cmdline_args));
  VOUCH_RETURN_IF_ERROR(r.Strings("env", &s.env));
  VOUCH_RETURN_IF_ERROR(r.Strings("mutable_env", &s.mutable_env));
  VOUCH_RETURN_IF_ERROR(r.String("mem_size", &s.mem_size));
  VOUCH_RETURN_IF_ERROR(r.U32("threads", 1u << 20, &s.threads));
  VOUCH_RETURN_IF_ERROR(r.U32("isvprodid", kMaxU16, &s.isvprodid));
  VOUCH_RETURN_IF_ERROR(r.U32("isvsvn", kMaxU16, &s.isvsvn));
  VOUCH_RETURN_IF_ERROR(r.Bool("debug", &s.debug));
  VOUCH_RETURN_IF_ERROR(r.String("cert_subject", &s.cert_subject));
  VOUCH_RETURN_IF_ERROR(r.Strings("cert_dns", &s.cert_dns));
  VOUCH_RETURN_IF_ERROR(r.String("cert_key_type", &s.cert_key_type));
  VOUCH_RETURN_IF_ERROR(r.String("key_path", &s.key_path));
  VOUCH_RETURN_IF_ERROR(r.String("cert_path", &s.cert_path));
  VOUCH_RETURN_IF_ERROR(r.String("ca_path", &s.ca_path));
  VOUCH_RETURN_IF_ERROR(r.Bool("no_certificate", &s.no_certificate));
  VOUCH_RETURN_IF_ERROR(r.Bool("no_heartbeat", &s.no_heartbeat));
  VOUCH_RETURN_IF_ERROR(r.U32("heartbeat_interval", 86400, &s.heartbeat_interval));
  VOUCH_RETURN_IF_ERROR(r.Strings("ro_dirs", &s.ro_dirs));
  VOUCH_RETURN_IF_ERROR(r.Strings("rw_dirs", &s.rw_dirs));
  VOUCH_RETURN_IF_ERROR(r.String("agent_socket", &s.agent_socket));
  VOUCH_RETURN_IF_ERROR(r.String("platform", &s.platform));
  VOUCH_RETURN_IF_ERROR(r.String("max_layer_size", &s.max_layer_size));
  VOUCH_RETURN_IF_ERROR(r.String("max_content_size", &s.max_content_size));
  VOUCH_RETURN_IF_ERROR(r.Finish());
  VOUCH_RETURN_IF_ERROR(ValidateSettings(s, false));
  return s;
}

json SettingsToJson(const ConversionSettings& s) {
  auto opt = [](const std::optional<std::vector<std::string>>& v) { return v ? json(*v) : json(nullptr); };
  return {{"entrypoint", opt(s.entrypoint)},
          {"args", opt(s.args)},
          {"allow_cmdline_args", s.allow_cmdline_args},
          {"env", s.env},
          {"mutable_env", s.mutable_env},
          {"mem_size", s.mem_size},
          {"threads", s.threads},
          {"isvprodid", s.isvprodid},
          {"isvsvn", s.isvsvn},
          {"debug", s.debug},
          {"cert_subject", s.cert_subject},
          {"cert_dns", s.cert_dns},
          {"cert_key_type", s.cert_key_type},
          {"key_path", s.key_path},
          {"cert_path", s.cert_path},
          {"ca_path", s.ca_path},
          {"no_certificate", s.no_certificate},
          {"no_heartbeat", s.no_heartbeat},
          {"heartbeat_interval", s.heartbeat_interval},
          {"ro_dirs", s.ro_dirs},
          {"rw_dirs", s.rw_dirs},
          {"agent_socket", s.agent_socket},
          {"platform", s.platform},
          {"max_layer_size", s.max_layer_size},
          {"max_content_size", s.max_content_size}};
}

void AddFlags(CLI::App& c, FlagValues* v) {
  ConversionSettings* a = &v->settings;
  c.add_option("--platform", a->platform, "Platform to pick from a multi-arch image (os/arch[/variant])");
  c.add_option("--entrypoint", v->entrypoint_text, "Entrypoint: a path or a JSON array (default: the image's)");
  c.add_option("--args,--entrypoint-args", v->args_text, "Arguments: a string or a JSON array (default: the image's Cmd)");
  c.add_flag("--allow-cmdline-args", a->allow_cmdline_args, "Let run-time arguments replace the manifest's");
  c.add_option("--env", a->env, "NAME=value fixed in the manifest (repeatable)");
  c.add_option("--mutable-env", a->mutable_env, "Environment variable the run-time may set (repeatable)");
  c.add_option("--mem-size", a->mem_size, "Enclave memory size, e.g. 2048M (recorded for TEE backends)");
  c.add_option("--threads", a->threads, "Enclave thread count (recorded for TEE backends)");
  c.add_option("--isvprodid", a->isvprodid, "ISV product id")->check(CLI::Range(0, 65535));
  c.add_option("--isvsvn", a->isvsvn, "ISV security version")->check(CLI::Range(0, 65535));
  c.add_flag("--debug", a->debug, "Debug enclave");
  c.add_option("--cert-subject", a->cert_subject, "Certificate subject, e.g. CN=web");
  c.add_option("--cert-dns,--dns", a->cert_dns, "DNS name for the certificate (repeatable)");
  c.add_option("--cert-key-type", a->cert_key_type, "Workload key type")->check(CLI::IsMember(KeyTypes()));
  c.add_option("--key-path", a->key_path, "Where the runtime writes the private key");
  c.add_option("--cert-path", a->cert_path, "Where the runtime writes the certificate chain");
  c.add_option("--ca-path", a->ca_path, "Where the runtime writes the zone CA");
  c.add_flag("--no-certificate", a->no_certificate, "Request no certificate");
  c.add_flag("--no-heartbeat", a->no_heartbeat, "Send no heartbeats");
  c.add_option("--heartbeat-interval", a->heartbeat_interval, "Seconds between heartbeats")->check(CLI::Range(1, 86400));
  c.add_option("--ro-dir", a->ro_dirs, "Integrity-protected directory (repeatable; default /)");
  c.add_option("--rw-dir", a->rw_dirs, "Unprotected path (repeatable; default /tmp /run /etc/hosts ...)");
  c.add_option("--agent-socket", a->agent_socket, "Agent socket path inside the container");
  c.add_option("--max-layer-size", a->max_layer_size, "Largest layer blob read (compressed), e.g. 16G")
      ->capture_default_str();
  c.add_option("--max-content-size", a->max_content_size,
               "Largest uncompressed content of all layers (bounds decompression bombs), e.g. 64G")
      ->capture_default_str();
}

Result<ConversionSettings> FromFlags(const FlagValues& v) {
  ConversionSettings s = v.settings;
  if (!v.entrypoint_text.empty()) {
    VOUCH_ASSIGN_OR_RETURN(s.entrypoint, ParseArgList(v.entrypoint_text, "--entrypoint"));
  }
  if (!v.args_text.empty()) {
    VOUCH_ASSIGN_OR_RETURN(s.args, ParseArgList(v.args_text, "--args"));
  }
  VOUCH_RETURN_IF_ERROR(ValidateSettings(s, true));
  return s;
}

Status ApplyTo(const ConversionSettings& s, ConvertOptions* o) {
  VOUCH_RETURN_IF_ERROR(ValidateSettings(s, false));
  VOUCH_ASSIGN_OR_RETURN(oci::Platform platform, oci::Platform::Parse(s.platform));
  VOUCH_ASSIGN_OR_RETURN(uint64_t max_layer, ParseSize(s.max_layer_size, "max_layer_size"));
  VOUCH_ASSIGN_OR_RETURN(uint64_t max_content, ParseSize(s.max_content_size, "max_content_size"));
  VOUCH_ASSIGN_OR_RETURN(uint64_t mem, ParseSize(s.mem_size, "mem_size"));
  for (oci::TransportOptions* t : {&o->input_transport, &o->output_transport}) {
    t->platform = platform;
    t->max_blob_bytes = max_layer;
  }
  o->limits.max_total_bytes = max_content;
  o->limits.max_entry_bytes = std::min(o->limits.max_entry_bytes, o->limits.max_total_bytes);
  o->entrypoint = s.entrypoint;
  o->args = s.args;
  o->env = s.env;
  manifest::EnclaveManifest& m = o->base;
  m.allow_cmdline_args = s.allow_cmdline_args;
  m.mutable_env = s.mutable_env;
  m.memory_size_bytes = mem;
  m.threads = s.threads;
  m.isvprodid = s.isvprodid;
  m.isvsvn = s.isvsvn;
  m.debug = s.debug;
  m.certificates.clear();
  if (!s.no_certificate) {
    manifest::CertificateRequest c;
    c.subject = s.cert_subject;
    c.dns_names = s.cert_dns;
    c.key_type = s.cert_key_type;
    c.key_path = s.key_path;
    c.cert_path = s.cert_path;
    c.ca_path = s.ca_path;
    m.certificates.push_back(c);
  }
  m.heartbeat = !s.no_heartbeat;
  m.heartbeat_interval_seconds = s.heartbeat_interval;
  m.ro_dirs = s.ro_dirs;
  m.rw_dirs = s.rw_dirs.empty() ? DefaultRwDirs() : s.rw_dirs;
  m.agent_socket = s.agent_socket;
  return Status::Ok();
}

}  // namespace vouch::convert
