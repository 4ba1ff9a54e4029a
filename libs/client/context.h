#pragma once

// The CLI's saved context: which manager to talk to and the session token from `vouch login`.
//
// Stored as JSON {server, ca_file, token, user, expires_at} at the first of: an explicit path
// (--config), $VOUCH_CONFIG, $HOME/.config/vouch/config.json. Written atomically (temporary file in
// the same directory, fsync, rename) with mode 0600; a directory created for it gets mode 0700.
// Loading refuses a file that group or others can read, as ssh does for keys. Nothing here prints
// or logs the token. Functions are thread-compatible and never throw.

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/status.h"

namespace vouch::client {

struct Context {
  std::string server;      // "https://host:port"
  std::string ca_file;     // absolute path of the CA bundle for the server
  std::string token;       // session token (secret)
  std::string user;        // user name the token belongs to
  std::string expires_at;  // RFC 3339, as the server sent it
};

// The path to use: `explicit_path` if not empty, else $VOUCH_CONFIG, else
// $HOME/.config/vouch/config.json. Fails only when none of these is available.
Result<std::string> ResolveContextPath(std::string_view explicit_path);

// kNotFound (reason "no_context") when the file does not exist.
Result<Context> LoadContext(const std::string& path);

// Replaces the file atomically with mode 0600, creating missing parent directories with 0700.
Status SaveContext(const std::string& path, const Context& context);

// Removes the file; ok when it did not exist.
Status RemoveContext(const std::string& path);

}  // namespace vouch::client
