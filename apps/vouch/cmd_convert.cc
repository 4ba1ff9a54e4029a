// vouch convert: an OCI/Docker image in, a TEE-ready image (vouch-rte + signed manifest) out.
// Compiled to nothing when libs/convert is not built (no libarchive): apps/vouch/CMakeLists.txt.
#ifdef VOUCH_HAVE_CONVERT
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cmd_common.h"
#include "convert/convert.h"
#include "crypto/keys.h"

namespace vouch::cli {
namespace {

struct ConvertArgs {
  std::string input, output, app, signing_key, runtime, platform = "linux/amd64", work_dir;
  std::string entrypoint, args;
  bool allow_cmdline_args = false;
  std::vector<std::string> env, mutable_env;
  std::string mem_size;
  uint32_t threads = 0;
  uint32_t isvprodid = 0, isvsvn = 0;
  bool debug = false;
  std::string cert_subject, cert_key_type = "ec-p256";
  std::vector<std::string> cert_dns;
  std::string key_path = "/run/vouch/certs/key.pem", cert_path = "/run/vouch/certs/cert.pem",
              ca_path = "/run/vouch/certs/ca.pem";
  bool no_certificate = false;
  bool no_heartbeat = false;
  uint32_t heartbeat_interval = 30;
  std::vector<std::string> ro_dirs, rw_dirs;
  std::string manager_url, zone_ca_file, agent_socket = "/run/vouch/agent.sock";
  std::string input_user, input_password_file, output_user, output_password_file, authfile, registry_ca_file;
  std::vector<std::string> insecure_registries;
  std::string max_layer_size = "16G", max_content_size = "64G";
};

// "--entrypoint /bin/app" or "--entrypoint '["/bin/sh","-c","x"]'".
std::vector<std::string> ArgList(const std::string& text, const char* flag) {
  if (!text.empty() && text.front() == '[') {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) UsageError(std::string(flag) + " is not a JSON array of strings");
    std::vector<std::string> out;
    for (const json& s : j) {
      if (!s.is_string()) UsageError(std::string(flag) + " is not a JSON array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  if (text.empty()) return {};
  return {text};
}

uint64_t ParseSize(const std::string& s, const char* flag = "--mem-size") {
  if (s.empty()) return 0;
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    UsageError(std::string(flag) + " \"" + s + "\" is not a size like 2048M");
  }
  std::string unit = s.substr(pos);
  uint64_t mul = 1;
  if (unit == "K" || unit == "k") mul = 1ull << 10;
  else if (unit == "M" || unit == "m") mul = 1ull << 20;
  else if (unit == "G" || unit == "g") mul = 1ull << 30;
  else if (!unit.empty()) UsageError(std::string(flag) + " unit must be K, M or G");
  if (v > UINT64_MAX / mul) UsageError(std::string(flag) + " too large");
  return v * mul;
}

std::string DefaultRuntime() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  std::filesystem::path self(std::string(buf, static_cast<size_t>(n)));
  for (const auto& candidate : {self.parent_path() / "vouch-rte", self.parent_path() / "../vouch-rte/vouch-rte",
                                self.parent_path() / "../libexec/vouch/vouch-rte"}) {
    if (std::filesystem::exists(candidate)) return std::filesystem::weakly_canonical(candidate).string();
  }
  return {};
}

oci::Credentials ReadCredentials(const std::string& user, const std::string& password_file, const char* which) {
  oci::Credentials c;
  if (user.empty() && password_file.empty()) return c;
  if (user.empty() || password_file.empty()) {
    UsageError(std::string("--") + which + "-user and --" + which + "-password-file go together");
  }
  c.username = user;
  c.password = ReadSecretFile(password_file, "registry password");
  return c;
}

// Loads the signing key, or generates a P-256 key and saves it (mode 0600) where `path` says.
crypto::EvpPkeyPtr LoadOrCreateKey(const std::string& path, bool* generated) {
  *generated = false;
  if (std::filesystem::exists(path)) {
    std::string pem = ReadFileOrDie(path, "signing key");
    auto key = crypto::PrivateKeyFromPem(pem);
    if (!key.ok()) throw CliError("signing key " + path + ": " + key.status().message());
    Check(manifest::CheckSigningKey(key->get()), "signing key " + path);
    return std::move(*key);
  }
  auto key = Check(crypto::GenerateP256(), "generating a signing key");
  auto pem = Check(crypto::PrivateKeyToPem(key.get()), "encoding the signing key");
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  WriteFileOrDie(path, pem.view(), 0600);
  *generated = true;
  return key;
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vouch-convert-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw CliError("cannot create a temporary directory in " + tmpl);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void Run(const GlobalOptions& global, const ConvertArgs& a) {
  convert::ConvertOptions o;
  o.input = a.input;
  o.output = a.output;
  auto platform = oci::Platform::Parse(a.platform);
  if (!platform.ok()) UsageError(platform.status().message());
  for (oci::TransportOptions* t : {&o.input_transport, &o.output_transport}) {
    t->platform = *platform;
    t->auth_file = a.authfile;
    t->insecure_registries = a.insecure_registries;
    t->ca_file = a.registry_ca_file;
    t->max_blob_bytes = ParseSize(a.max_layer_size, "--max-layer-size");
    if (t->max_blob_bytes == 0) UsageError("--max-layer-size must be more than 0");
  }
  o.limits.max_total_bytes = ParseSize(a.max_content_size, "--max-content-size");
  if (o.limits.max_total_bytes == 0) UsageError("--max-content-size must be more than 0");
  o.limits.max_entry_bytes = std::min(o.limits.max_entry_bytes, o.limits.max_total_bytes);
  if (a.authfile.empty()) {
    const char* dc = std::getenv("DOCKER_CONFIG");
    const char* home = std::getenv("HOME");
    std::string def = dc && *dc ? std::string(dc) + "/config.json"
                                : (home && *home ? std::string(home) + "/.docker/config.json" : std::string());
    if (!def.empty() && std::filesystem::exists(def)) {
      o.input_transport.auth_file = o.output_transport.auth_file = def;
    }
  }
  o.input_transport.credentials = ReadCredentials(a.input_user, a.input_password_file, "input");
  o.output_transport.credentials = ReadCredentials(a.output_user, a.output_password_file, "output");
  o.runtime_path = a.runtime.empty() ? DefaultRuntime() : a.runtime;
  if (o.runtime_path.empty()) UsageError("cannot find vouch-rte next to vouch; pass --runtime PATH");
  if (!a.entrypoint.empty()) o.entrypoint = ArgList(a.entrypoint, "--entrypoint");
  if (!a.args.empty()) o.args = ArgList(a.args, "--args");
  o.env = a.env;
  manifest::EnclaveManifest& m = o.base;
  m.app = a.app;
  m.allow_cmdline_args = a.allow_cmdline_args;
  m.mutable_env = a.mutable_env;
  m.memory_size_bytes = ParseSize(a.mem_size);
  m.threads = a.threads;
  m.isvprodid = a.isvprodid;
  m.isvsvn = a.isvsvn;
  m.debug = a.debug;
  if (!a.no_certificate) {
    manifest::CertificateRequest c;
    c.subject = a.cert_subject;
    c.dns_names = a.cert_dns;
    c.key_type = a.cert_key_type;
    c.key_path = a.key_path;
    c.cert_path = a.cert_path;
    c.ca_path = a.ca_path;
    m.certificates.push_back(c);
  }
  m.heartbeat = !a.no_heartbeat;
  m.heartbeat_interval_seconds = a.heartbeat_interval;
  m.ro_dirs = a.ro_dirs;
  m.rw_dirs = a.rw_dirs.empty() ? convert::DefaultRwDirs() : a.rw_dirs;
  m.agent_socket = a.agent_socket;
  m.manager_url = a.manager_url;
  if (!a.zone_ca_file.empty()) m.zone_ca_pem = ReadFileOrDie(a.zone_ca_file, "zone CA");

  // With --app, make sure we can register before doing the work.
  std::optional<Session> session;
  if (!a.app.empty()) session = Connect(global);

  std::string key_path = a.signing_key;
  if (key_path.empty()) {
    auto ctx = client::ResolveContextPath(global.config);
    if (!ctx.ok()) UsageError("no --signing-key and no config directory to keep a generated one in");
    key_path = (std::filesystem::path(*ctx).parent_path() / "signing-key.pem").string();
  }
  bool generated = false;
  crypto::EvpPkeyPtr key = LoadOrCreateKey(key_path, &generated);
  o.signing_key = key.get();

  std::optional<TempDir> tmp;
  if (a.work_dir.empty()) {
    tmp.emplace();
    o.work_dir = tmp->path();
  } else {
    o.work_dir = a.work_dir;
  }
  auto converted = convert::Convert(o);
  if (!converted.ok() && converted.status().reason() == "registry_auth") {
    // An image registry refused, not the manager: no `vouch login` hint (Check adds one).
    throw CliError(client::Sanitize("convert: " + converted.status().message()) + " (registry_auth)", kExitError);
  }
  convert::ConvertResult r = Check(std::move(converted), "convert");

  json out = {{"image", r.output},
              {"digest", r.digest},
              {"input_digest", r.input_digest},
              {"mrenclave", r.mrenclave},
              {"mrsigner", r.mrsigner},
              {"isvprodid", r.isvprodid},
              {"isvsvn", r.isvsvn},
              {"debug", r.debug},
              {"protected_files", r.protected_files},
              {"exec_path", r.exec_path},
              {"signing_key", key_path},
              {"signing_key_generated", generated},
              {"build_id", nullptr},
              {"build_status", nullptr}};
  if (session) {
    json body = {{"app", a.app},       {"mrenclave", r.mrenclave}, {"mrsigner", r.mrsigner},
                 {"isvprodid", r.isvprodid}, {"isvsvn", r.isvsvn}, {"debug", r.debug},
                 {"image_ref", r.output.substr(0, 512)}, {"image_digest", r.digest}};
    json build = Check(session->api->Post(ApiPath({"builds"}), body), "registering the build (the image was written)");
    out["build_id"] = build.value("id", json());
    out["build_status"] = build.value("status", json());
  }
  if (global.json()) {
    PrintJson(out);
  } else {
    PrintObject(global, out);
  }
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* c = root.add_subcommand("convert", "Convert a container image into a TEE-ready image (vouch-rte + manifest)");
  c->add_option("--input", a->input, "Input image: host[:port]/repo[:tag|@sha256:..], oci:DIR[:tag], docker-archive:FILE")
      ->required();
  c->add_option("--output", a->output, "Output image (same forms)")->required();
  c->add_option("--app", a->app, "Register the build for this app (pending approval); needs `vouch login`");
  c->add_option("--signing-key", a->signing_key,
                "PEM private key (EC P-256 or RSA 3072); created if the file does not exist "
                "(default: signing-key.pem beside the CLI context)");
  c->add_option("--runtime", a->runtime, "vouch-rte binary to embed (default: next to vouch)");
  c->add_option("--platform", a->platform, "Platform to pick from a multi-arch image (os/arch[/variant])");
  c->add_option("--work-dir", a->work_dir, "Scratch directory (default: a temporary one)");
  c->add_option("--entrypoint", a->entrypoint, "Entrypoint: a path or a JSON array (default: the image's)");
  c->add_option("--args,--entrypoint-args", a->args, "Arguments: a string or a JSON array (default: the image's Cmd)");
  c->add_flag("--allow-cmdline-args", a->allow_cmdline_args, "Let run-time arguments replace the manifest's");
  c->add_option("--env", a->env, "NAME=value fixed in the manifest (repeatable)");
  c->add_option("--mutable-env", a->mutable_env, "Environment variable the run-time may set (repeatable)");
  c->add_option("--mem-size", a->mem_size, "Enclave memory size, e.g. 2048M (recorded for TEE backends)");
  c->add_option("--threads", a->threads, "Enclave thread count (recorded for TEE backends)");
  c->add_option("--isvprodid", a->isvprodid, "ISV product id")->check(CLI::Range(0, 65535));
  c->add_option("--isvsvn", a->isvsvn, "ISV security version")->check(CLI::Range(0, 65535));
  c->add_flag("--debug", a->debug, "Debug enclave");
  c->add_option("--cert-subject", a->cert_subject, "Certificate subject, e.g. CN=web");
  c->add_option("--cert-dns,--dns", a->cert_dns, "DNS name for the certificate (repeatable)");
  c->add_option("--cert-key-type", a->cert_key_type, "Workload key type")
      ->check(CLI::IsMember({"ec-p256", "ec-p384", "rsa-2048", "rsa-3072"}));
  c->add_option("--key-path", a->key_path, "Where the runtime writes the private key");
  c->add_option("--cert-path", a->cert_path, "Where the runtime writes the certificate chain");
  c->add_option("--ca-path", a->ca_path, "Where the runtime writes the zone CA");
  c->add_flag("--no-certificate", a->no_certificate, "Request no certificate");
  c->add_flag("--no-heartbeat", a->no_heartbeat, "Send no heartbeats");
  c->add_option("--heartbeat-interval", a->heartbeat_interval, "Seconds between heartbeats")
      ->check(CLI::Range(1, 86400));
  c->add_option("--ro-dir", a->ro_dirs, "Integrity-protected directory (repeatable; default /)");
  c->add_option("--rw-dir", a->rw_dirs, "Unprotected path (repeatable; default /tmp /run /etc/hosts ...)");
  c->add_option("--manager-url", a->manager_url, "Manager URL recorded in the manifest");
  c->add_option("--zone-ca", a->zone_ca_file, "Zone CA PEM embedded in the manifest");
  c->add_option("--agent-socket", a->agent_socket, "Agent socket path inside the container");
  c->add_option("--input-user", a->input_user, "Registry user for the input");
  c->add_option("--input-password-file", a->input_password_file, "File holding the input registry password");
  c->add_option("--output-user", a->output_user, "Registry user for the output");
  c->add_option("--output-password-file", a->output_password_file, "File holding the output registry password");
  c->add_option("--authfile", a->authfile, "Docker-style config.json with registry credentials");
  c->add_option("--insecure-registry", a->insecure_registries, "Registry host[:port] spoken to over HTTP (repeatable)");
  c->add_option("--registry-ca-file", a->registry_ca_file, "CA bundle for HTTPS registries");
  c->add_option("--max-layer-size", a->max_layer_size, "Largest layer blob read (compressed), e.g. 16G")
      ->capture_default_str();
  c->add_option("--max-content-size", a->max_content_size,
                "Largest uncompressed content of all layers (bounds decompression bombs), e.g. 64G")
      ->capture_default_str();
  c->callback([&global, a] { Run(global, *a); });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(convert, vouch::cli::Register);
#endif
