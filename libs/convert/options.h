#pragma once

// The options of a conversion, once: the names, types and defaults of `vouch convert`'s flags
// (docs/convert.md "Options"), read from the command line (AddFlags, for the CLI) or from JSON
// with the same names in snake_case (FromJson, for vouchd's POST /api/v1/conversions), and
// applied to ConvertOptions in one place (ApplyTo). So the CLI and the server cannot drift apart:
// a new option is a field here, its flag, its JSON key and its mapping, side by side.
//
// Not here: where the images are and how to reach them (input, output, credentials, CA files),
// the signing key, the runtime binary, the scratch directory, the manager URL and zone CA: each
// caller has its own source for those (flags and files for the CLI; stored registries, the app's
// sealed key and the server's own settings for vouchd).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "convert/convert.h"

namespace CLI {
class App;
}

namespace vouch::convert {

struct ConversionSettings {
  std::optional<std::vector<std::string>> entrypoint;  // default: the image's
  std::optional<std::vector<std::string>> args;        // default: the image's Cmd
  bool allow_cmdline_args = false;
  std::vector<std::string> env;          // NAME=value
  std::vector<std::string> mutable_env;  // NAME
  std::string mem_size;                  // "2048M"; empty: not recorded
  uint32_t threads = 0;
  uint32_t isvprodid = 0;
  uint32_t isvsvn = 0;
  bool debug = false;
  std::string cert_subject;
  std::vector<std::string> cert_dns;
  std::string cert_key_type = "ec-p256";
  std::string key_path = "/run/vouch/certs/key.pem";
  std::string cert_path = "/run/vouch/certs/cert.pem";
  std::string ca_path = "/run/vouch/certs/ca.pem";
  bool no_certificate = false;
  bool no_heartbeat = false;
  uint32_t heartbeat_interval = 30;
  std::vector<std::string> ro_dirs;  // empty: DefaultRoDirs()
  std::vector<std::string> rw_dirs;  // empty: DefaultRwDirs()
  std::string agent_socket = "/run/vouch/agent.sock";
  std::string platform = "linux/amd64";
  std::string max_layer_size = "16G";
  std::string max_content_size = "64G";
};

// Each JSON key with its `vouch convert` flag ("ro_dirs" -> "--ro-dir"), in docs order.
const std::vector<std::pair<std::string, std::string>>& SettingsKeys();

// Strict: `j` must be an object (null: all defaults) of known keys with the right types and
// values (InvalidArgument "invalid_options", naming the key). entrypoint and args take a string
// (one word) or an array of strings.
Result<ConversionSettings> SettingsFromJson(const nlohmann::json& j);
// Every key with its value (defaults included): what the job record shows as "options".
nlohmann::json SettingsToJson(const ConversionSettings& s);
// Checks values (ranges, sizes, platform, key type, env form); messages name the flags
// (`flag_names`) or the JSON keys.
Status ValidateSettings(const ConversionSettings& s, bool flag_names = false);

// The command line's values: the settings plus entrypoint and args as typed (parsed after).
struct FlagValues {
  ConversionSettings settings;
  std::string entrypoint_text, args_text;
};
// Registers the flags on `app` (`vouch convert`), writing into `*v` (which must outlive parsing).
void AddFlags(CLI::App& app, FlagValues* v);
// After parsing: the settings, entrypoint and args parsed, validated (messages name the flags).
Result<ConversionSettings> FromFlags(const FlagValues& v);

// "2048M" -> bytes (K, M, G; no unit: bytes); InvalidArgument naming `what` otherwise.
Result<uint64_t> ParseSize(const std::string& text, std::string_view what);
// "--entrypoint /bin/app" or '["/bin/sh","-c","x"]': one word or a JSON array of strings.
Result<std::vector<std::string>> ParseArgList(const std::string& text, std::string_view what);

// Fills what the settings decide in `o`: platform and size limits of both transports, the tar
// limits, entrypoint, args, env and the manifest fields of `o->base` (certificate request,
// heartbeat, directories, agent socket, memory, threads, isv ids, debug). Leaves the rest of `o`.
Status ApplyTo(const ConversionSettings& s, ConvertOptions* o);

inline constexpr std::string_view kInvalidOptions = "invalid_options";

}  // namespace vouch::convert
