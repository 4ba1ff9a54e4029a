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
#include "convert/options.h"
#include "oci/reasons.h"
#include "crypto/keys.h"

namespace vouch::cli {
namespace {

// The flags only the CLI has: where the images are, credentials, key, runtime, scratch. The
// conversion options themselves (names, defaults, mapping) are libs/convert/options.h, shared
// with vouchd's conversion jobs.
struct ConvertArgs {
  std::string input, output, app, signing_key, runtime, work_dir;
  convert::FlagValues options;
  std::string manager_url, zone_ca_file;
  std::string input_user, input_password_file, output_user, output_password_file, authfile, registry_ca_file;
  std::vector<std::string> insecure_registries;
};

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
  auto settings = convert::FromFlags(a.options);
  if (!settings.ok()) UsageError(settings.status().message());
  if (auto st = convert::ApplyTo(*settings, &o); !st.ok()) UsageError(st.message());
  for (oci::TransportOptions* t : {&o.input_transport, &o.output_transport}) {
    t->auth_file = a.authfile;
    t->insecure_registries = a.insecure_registries;
    t->ca_file = a.registry_ca_file;
  }
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
  manifest::EnclaveManifest& m = o.base;
  m.app = a.app;
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
  if (!converted.ok() && converted.status().reason() == oci::kRegistryAuthFailed) {
    // An image registry refused, not the manager: no `vouch login` hint (Check adds one).
    throw CliError(client::Sanitize("convert: " + converted.status().message()) + " (" +
                       std::string(oci::kRegistryAuthFailed) + ")",
                   kExitError);
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
  c->add_option("--work-dir", a->work_dir, "Scratch directory (default: a temporary one)");
  convert::AddFlags(*c, &a->options);  // the conversion options, shared with vouchd's jobs
  c->add_option("--manager-url", a->manager_url, "Manager URL recorded in the manifest");
  c->add_option("--zone-ca", a->zone_ca_file, "Zone CA PEM embedded in the manifest");
  c->add_option("--input-user", a->input_user, "Registry user for the input");
  c->add_option("--input-password-file", a->input_password_file, "File holding the input registry password");
  c->add_option("--output-user", a->output_user, "Registry user for the output");
  c->add_option("--output-password-file", a->output_password_file, "File holding the output registry password");
  c->add_option("--authfile", a->authfile, "Docker-style config.json with registry credentials");
  c->add_option("--insecure-registry", a->insecure_registries, "Registry host[:port] spoken to over HTTP (repeatable)");
  c->add_option("--registry-ca-file", a->registry_ca_file, "CA bundle for HTTPS registries");
  c->callback([&global, a] { Run(global, *a); });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(convert, vouch::cli::Register);
#endif
