#include "client/context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace vouch::client {
namespace {

using json = nlohmann::json;

std::string Errno() { return std::strerror(errno); }

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p with mode 0700 for the directories it creates; existing ones are left alone.
Status MakeDirs(const std::string& dir) {
  if (dir.empty() || dir == "." || dir == "/") return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return FailedPrecondition(dir + " exists and is not a directory");
    return Status::Ok();
  }
  VOUCH_RETURN_IF_ERROR(MakeDirs(DirName(dir)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Internal("cannot create directory " + dir + ": " + Errno(), "io_error");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ResolveContextPath(std::string_view explicit_path) {
  if (!explicit_path.empty()) return std::string(explicit_path);
  if (const char* env = std::getenv("VOUCH_CONFIG"); env != nullptr && env[0] != '\0') return std::string(env);
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return std::string(home) + "/.config/vouch/config.json";
  }
  return FailedPrecondition("neither --config, $VOUCH_CONFIG nor $HOME is set", "no_context");
}

Result<Context> LoadContext(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("no saved context at " + path + "; run `vouch login`", "no_context");
    return Internal("cannot read " + path + ": " + Errno(), "io_error");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return FailedPrecondition("context file " + path + " is accessible by other users (mode " + mode +
                                  "); run chmod 600 on it",
                              "insecure_context");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot open " + path + ": " + Errno(), "io_error");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument("context file " + path + " is not a JSON object", "invalid_context");
  Context c;
  auto field = [&j](const char* key, std::string& out) -> Status {
    if (!j.contains(key) || j[key].is_null()) return Status::Ok();
    if (!j[key].is_string()) return InvalidArgument(std::string("context field \"") + key + "\" is not a string",
                                                    "invalid_context");
    out = j[key].get<std::string>();
    return Status::Ok();
  };
  VOUCH_RETURN_IF_ERROR(field("server", c.server));
  VOUCH_RETURN_IF_ERROR(field("ca_file", c.ca_file));
  VOUCH_RETURN_IF_ERROR(field("token", c.token));
  VOUCH_RETURN_IF_ERROR(field("user", c.user));
  VOUCH_RETURN_IF_ERROR(field("expires_at", c.expires_at));
  return c;
}

Status SaveContext(const std::string& path, const Context& context) {
  const std::string dir = DirName(path);
  VOUCH_RETURN_IF_ERROR(MakeDirs(dir));
  json j = {{"server", context.server},
            {"ca_file", context.ca_file},
            {"token", context.token},
            {"user", context.user},
            {"expires_at", context.expires_at}};
  const std::string data = j.dump(2) + "\n";
  // Durable (fsync of the file and the directory); a crash leaves the old or the new context.
  Status s = WriteFileAtomic(path, data, 0600);
  if (!s.ok()) return Internal(s.message(), "io_error");
  return Status::Ok();
}

Status RemoveContext(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Internal("cannot remove " + path + ": " + Errno(), "io_error");
  }
  return Status::Ok();
}

}  // namespace vouch::client
