#pragma once

// Registries and app signing keys kept by vouchd for server-side conversion (issue 15; docs/api.md
// "Registries" and "App signing keys"). The routes go through Manager (CreateRegistry, ...,
// RotateAppSigningKey); these free functions are for the code that runs a conversion, inside its
// own store transaction. Implemented in manager_registries.cc and manager_signing_keys.cc.
//
// Sealed columns (AES-256-GCM under the master key, re-sealed by `vouchd master-key rotate`,
// master_key.cc), each with the AAD below:
//   registries.secret_sealed        the registry password or token
//   app_signing_keys.key_sealed     the app's image signing key (PKCS#8 DER)
// Neither is ever returned by the API, logged or written to the audit log.

#include <optional>
#include <string>
#include <string_view>

#include "api/manager.h"
#include "base/result.h"
#include "crypto/ossl.h"
#include "crypto/secret.h"
#include "store/database.h"

namespace vouch::api {

inline std::string RegistrySecretAad(std::string_view registry_id) {
  return "vouch:registries.secret_sealed:" + std::string(registry_id);
}
inline std::string AppSigningKeyAad(std::string_view key_id) {
  return "vouch:app_signing_keys.key_sealed:" + std::string(key_id);
}

// A stored registry with its secret unsealed. Never log or serialise `secret`.
struct RegistryAccess {
  std::string id, name;
  std::string url;          // "https://host[:port][/path]" (or "http://..." when insecure)
  std::string host;         // "host[:port]" of url, lower case: what image references name
  std::string ca_pem;       // extra trust for HTTPS (PEM certificates); empty: the system store
  std::string username;     // may be empty (a token alone)
  crypto::SecretBytes secret;  // the password or token; empty when none is stored
  std::string secret_kind;  // "password", "token" or "" (anonymous)
  bool insecure = false;    // plain HTTP allowed (and only then)
};

// Loads a registry by id or name, unsealing its secret. NotFound kRegistryNotFound; DataLoss
// kRegistrySecretUnsealFailed when the sealed secret does not open.
Result<RegistryAccess> LoadRegistryAccess(store::Transaction& tx, const Manager& m, std::string_view id_or_name);

// The registry for an image reference ("[docker://]host[:port]/repo[:tag][@digest]"):
// `explicit_name` (id or name) if not empty, else the app's default (output_registry when
// `output`, else input_registry), else the registry whose URL host[:port] equals the reference's
// (case-insensitive; the oldest if several); nullopt if none applies (anonymous access).
// The app default applies only to references on its own host (its credentials never go to another
// host); otherwise host matching decides. `app_id` is an app id (empty: no app default). NotFound
// kRegistryNotFound for an explicit name that does not exist; InvalidArgument
// kRegistryHostMismatch when the reference's host is not the explicit registry's.
Result<std::optional<RegistryAccess>> RegistryForImage(store::Transaction& tx, const Manager& m, std::string_view app_id,
                                                       std::string_view image_ref, std::string_view explicit_name,
                                                       bool output);

// "host[:port]" (lower case) of an image reference as RegistryForImage compares it: the part
// before the first '/' when it has a '.' or ':' or is "localhost", else "docker.io" (Docker Hub
// short names). Empty for "oci:" and "docker-archive:" locations.
std::string ImageReferenceHost(std::string_view image_ref);

struct AppSigningKey {
  std::string id;        // app_signing_keys.id ("sk_...")
  std::string mrsigner;  // hex, manifest::Mrsigner of the key (what `vouch convert` prints)
  crypto::EvpPkeyPtr key;  // private; never log or serialise
};

// The app's active signing key (an EC P-256 key, the converter's default, manifest::CheckSigningKey),
// made and sealed on first need, so it needs a write transaction (a read transaction works once
// the key exists). `app_id` is an app id. NotFound kAppNotFound; DataLoss kSigningKeyUnsealFailed.
Result<AppSigningKey> ActiveAppSigningKey(store::Transaction& tx, const Manager& m, std::string_view app_id);

// The app's active mrsigner, or nullopt while it has no key yet (read-only; for app records).
Result<std::optional<std::string>> ActiveAppMrsigner(store::Transaction& tx, std::string_view app_id);

// DecideTask's branch for tasks of kind signing_key (tasks.subject_id = app_signing_keys.id):
// approved, the pending key becomes active and the active one retired; denied, it is marked
// denied. Runs in the deciding transaction.
Status DecideSigningKeyTask(store::Transaction& tx, const Manager& m, const store::Row& task, bool approve);

}  // namespace vouch::api
