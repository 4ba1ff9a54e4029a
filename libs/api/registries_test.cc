// Registries, app default registries and app signing keys (issue 15; registry_access.h).

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "api/bootstrap.h"
#include "api/manager.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "manifest/manifest.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Response;

// Distinctive secrets: no answer, audit row or stored column may ever contain them in clear.
constexpr char kPassword[] = "pw-Sup3rS3cret-registry-9f1c";
constexpr char kToken[] = "tok-Sup3rS3cret-registry-77ab";

class RegistriesTest : public ManagerFixture {
 protected:
  RegistriesTest() : ManagerFixture("registries") { record_answers_ = true; }

  void MakeZoneAndApp(int approvals = 1) {
    MakeZone("prod", approvals);
    MakeApp("web", "prod");
  }
  std::string AppId(const std::string& name) {
    return CallJson("GET", "/api/v1/apps/" + name, nullptr, "viewer", 200)["id"].get<std::string>();
  }
  std::string ZoneCaPem() { return Call("GET", "/api/v1/zones/prod/ca").body; }

  // Every stored row of every table as text (blobs as hex): what the store holds in clear.
  std::string AllRows() {
    std::string out;
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     for (const char* t : {"registries", "apps", "app_signing_keys", "tasks", "audit", "settings"}) {
                       VOUCH_ASSIGN_OR_RETURN(store::Rows rows, tx.Query(std::string("SELECT * FROM ") + t));
                       for (const auto& r : rows) {
                         for (size_t i = 0; i < r.size(); ++i) out += r.Str(i) + "|";
                         out += "\n";
                       }
                     }
                     return Status::Ok();
                   }).ok());
    return out;
  }
};

TEST_F(RegistriesTest, CreateListGetPatchDelete) {
  MakeZoneAndApp();
  json r = CallJson("POST", "/api/v1/registries",
                    {{"name", "corp"}, {"url", "https://Registry.Example.com:5000/"}, {"username", "ci"},
                     {"password", kPassword}, {"ca_pem", ZoneCaPem()}},
                    "admin", 201);
  EXPECT_EQ(r["name"], "corp");
  EXPECT_EQ(r["url"], "https://registry.example.com:5000");
  EXPECT_EQ(r["username"], "ci");
  EXPECT_EQ(r["has_secret"], true);
  EXPECT_EQ(r["secret_kind"], "password");
  EXPECT_EQ(r["has_ca"], true);
  EXPECT_EQ(r["insecure"], false);
  EXPECT_EQ(r["created_by"], "user:admin");
  EXPECT_FALSE(r.contains("password"));
  EXPECT_FALSE(r.contains("secret"));
  EXPECT_EQ(r["id"].get<std::string>().rfind("reg_", 0), 0u);
  const std::string id = r["id"];

  // Members and approvers read (by name or id); the list is the API's page shape.
  json list = CallJson("GET", "/api/v1/registries", nullptr, "member", 200);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["id"], id);
  EXPECT_TRUE(list["next_cursor"].is_null());
  EXPECT_EQ(CallJson("GET", "/api/v1/registries/corp", nullptr, "approver1", 200)["id"], id);
  EXPECT_EQ(CallJson("GET", "/api/v1/registries/" + id, nullptr, "member", 200)["name"], "corp");

  // PATCH: rename, a token replaces the password, the CA is cleared; absent fields stay.
  json p = CallJson("PATCH", "/api/v1/registries/corp", {{"name", "corp2"}, {"token", kToken}, {"ca_pem", nullptr}},
                    "admin", 200);
  EXPECT_EQ(p["name"], "corp2");
  EXPECT_EQ(p["secret_kind"], "token");
  EXPECT_EQ(p["has_secret"], true);
  EXPECT_EQ(p["has_ca"], false);
  EXPECT_EQ(p["username"], "ci");
  EXPECT_EQ(p["url"], "https://registry.example.com:5000");
  // Clearing the secret: anonymous access.
  p = CallJson("PATCH", "/api/v1/registries/" + id, {{"token", nullptr}, {"username", nullptr}}, "admin", 200);
  EXPECT_EQ(p["has_secret"], false);
  EXPECT_TRUE(p["secret_kind"].is_null());
  EXPECT_TRUE(p["username"].is_null());
  // Plain http needs insecure, and insecure needs http.
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/corp2", {{"url", "http://127.0.0.1:5000"}}, "admin", 400)),
            kInvalidUrl);
  p = CallJson("PATCH", "/api/v1/registries/corp2", {{"url", "http://127.0.0.1:5000"}, {"insecure", true}}, "admin", 200);
  EXPECT_EQ(p["insecure"], true);
  // A name another registry holds: 409.
  CallJson("POST", "/api/v1/registries", {{"name", "other"}, {"url", "https://other.example"}}, "admin", 201);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/registries", {{"name", "other"}, {"url", "https://x.example"}}, "admin", 409)),
            kRegistryExists);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/corp2", {{"name", "other"}}, "admin", 409)), kRegistryExists);

  EXPECT_EQ(Call("DELETE", "/api/v1/registries/corp2", "", "admin").status, 204u);
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/registries/corp2", nullptr, "admin", 404)), kRegistryNotFound);
  EXPECT_EQ(ErrorCode(CallJson("DELETE", "/api/v1/registries/" + id, nullptr, "admin", 404)), kRegistryNotFound);

  // Every mutation audited.
  for (const char* action : {"registry.create", "registry.update", "registry.delete"}) {
    EXPECT_GE(Count("SELECT COUNT(*) FROM audit WHERE action = ?", {std::string(action)}), 1) << action;
  }
}

TEST_F(RegistriesTest, BadInputIs400AndStoresNothing) {
  MakeZoneAndApp();
  const std::string key_pem = [] {
    auto k = crypto::GenerateP256();
    auto pem = crypto::PrivateKeyToPem(k->get());
    return std::string(pem->view());
  }();
  struct Case {
    json body;
    std::string_view code;
  };
  const std::vector<Case> cases = {
      {{{"name", "r"}, {"url", "ftp://registry.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "registry.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "http://registry.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"insecure", true}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://user:pw@registry.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://registry.example/v2?x=1"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://registry.example:0"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://registry.example:70000"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://reg istry.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://-bad.example"}}, kInvalidUrl},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"ca_pem", "not a certificate"}}, kInvalidCa},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"ca_pem", key_pem}}, kInvalidCa},
      {{{"name", "r"}, {"url", "https://registry.example"},
        {"ca_pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}},
       kInvalidCa},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"password", "x"}}, kInvalidSecret},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"username", "u"}, {"password", "x"}, {"token", "y"}},
       kInvalidSecret},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"username", "a:b"}, {"password", "x"}}, kInvalidSecret},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"token", "line\nbreak"}}, kInvalidSecret},
      {{{"name", "Bad_Name"}, {"url", "https://registry.example"}}, kInvalidName},
      {{{"name", "r"}, {"url", "https://registry.example"}, {"colour", "blue"}}, kUnknownField},
      {{{"name", "r"}, {"url", 5}}, "invalid_type"},
      {{{"url", "https://registry.example"}}, "missing_field"},
  };
  for (const Case& c : cases) {
    json e = CallJson("POST", "/api/v1/registries", c.body, "admin", 400);
    EXPECT_EQ(ErrorCode(e), c.code) << c.body.dump();
    EXPECT_TRUE(e["error"]["message"].is_string());
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM registries"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action LIKE 'registry.%'"), 0);
  EXPECT_EQ(Call("POST", "/api/v1/registries", "{not json", "admin").status, 400u);

  // PATCH validates the same way and changes nothing when it refuses.
  CallJson("POST", "/api/v1/registries", {{"name", "r"}, {"url", "https://registry.example"}}, "admin", 201);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/r", {{"url", "gopher://x"}}, "admin", 400)), kInvalidUrl);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/r", {{"insecure", "yes"}}, "admin", 400)), "invalid_type");
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/r", {{"password", "x"}}, "admin", 400)), kInvalidSecret);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/registries/r", {{"id", "reg_1"}}, "admin", 400)), kUnknownField);
  EXPECT_EQ(CallJson("GET", "/api/v1/registries/r", nullptr, "admin", 200)["url"], "https://registry.example");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'registry.update'"), 0);
  // Accepted forms.
  CallJson("POST", "/api/v1/registries", {{"name", "v6"}, {"url", "https://[::1]:5000"}}, "admin", 201);
  CallJson("POST", "/api/v1/registries", {{"name", "local"}, {"url", "http://127.0.0.1:5000/"}, {"insecure", true}},
           "admin", 201);
}

TEST_F(RegistriesTest, OnlyAdminsManageAndViewersDoNotRead) {
  MakeZoneAndApp();
  const json body = {{"name", "corp"}, {"url", "https://registry.example"}};
  for (const char* who : {"member", "approver1", "viewer"}) {
    EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/registries", body, who, 403)), kForbidden) << who;
  }
  EXPECT_EQ(Call("POST", "/api/v1/registries", body.dump()).status, 401u);
  CallJson("POST", "/api/v1/registries", body, "admin", 201);
  for (const char* who : {"member", "approver1"}) {
    CallJson("PATCH", "/api/v1/registries/corp", {{"url", "https://evil.example"}}, who, 403);
    CallJson("DELETE", "/api/v1/registries/corp", nullptr, who, 403);
    CallJson("GET", "/api/v1/registries", nullptr, who, 200);
  }
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/registries", nullptr, "viewer", 403)), kForbidden);
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/registries/corp", nullptr, "viewer", 403)), kForbidden);
  EXPECT_EQ(CallJson("GET", "/api/v1/registries/corp", nullptr, "admin", 200)["url"], "https://registry.example");
  // Refused mutations are audited as refusals.
  EXPECT_GE(Count("SELECT COUNT(*) FROM audit WHERE actor = 'user:member' AND outcome <> 'ok'"), 3);
}

TEST_F(RegistriesTest, SecretNeverInAnswersAuditOrStoreInClear) {
  MakeZoneAndApp();
  CallJson("POST", "/api/v1/registries",
           {{"name", "corp"}, {"url", "https://registry.example"}, {"username", "ci"}, {"password", kPassword}}, "admin",
           201);
  CallJson("POST", "/api/v1/registries", {{"name", "hub"}, {"url", "https://registry-1.docker.io"}, {"token", kToken}},
           "admin", 201);
  CallJson("PATCH", "/api/v1/registries/corp", {{"password", std::string(kPassword) + "-2"}}, "admin", 200);
  CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", "corp"}, {"output_registry", "hub"}}, "member", 200);
  CallJson("GET", "/api/v1/registries", nullptr, "member", 200);
  CallJson("GET", "/api/v1/registries/corp", nullptr, "member", 200);
  CallJson("GET", "/api/v1/apps/web", nullptr, "member", 200);
  CallJson("GET", "/api/v1/apps", nullptr, "member", 200);
  CallJson("GET", "/api/v1/audit?limit=1000", nullptr, "admin", 200);
  CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", nullptr}, {"output_registry", nullptr}}, "member", 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/registries/corp", "", "admin").status, 204u);
  CallJson("GET", "/api/v1/audit?limit=1000", nullptr, "admin", 200);
  const std::string stored = AllRows();
  for (const std::string& secret : {std::string(kPassword), std::string(kToken)}) {
    EXPECT_EQ(answers_.find(secret), std::string::npos) << "an API answer carries the secret";
    EXPECT_EQ(stored.find(secret), std::string::npos) << "the store (audit included) holds the secret in clear";
  }
  EXPECT_NE(answers_.find("registry.create"), std::string::npos);  // the audit answers were read
  // The sealed secret opens under the master key, bound to its row.
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(RegistryAccess a, LoadRegistryAccess(tx, *manager_, "hub"));
                   EXPECT_EQ(a.secret.view(), kToken);
                   EXPECT_EQ(a.secret_kind, "token");
                   VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT secret_sealed FROM registries WHERE name = 'hub'",
                                                                    {}, "registry"));
                   EXPECT_FALSE(manager_->OpenSecret(tx, r.Bytes(0), RegistrySecretAad("reg_other")).ok());
                   return Status::Ok();
                 }).ok());
}

TEST_F(RegistriesTest, DeleteRefusedWhileAnAppNamesTheRegistry) {
  MakeZoneAndApp();
  CallJson("POST", "/api/v1/registries", {{"name", "corp"}, {"url", "https://registry.example"}}, "admin", 201);
  json app = CallJson("PATCH", "/api/v1/apps/web", {{"output_registry", "corp"}}, "member", 200);
  EXPECT_EQ(app["output_registry"], "corp");
  EXPECT_TRUE(app["input_registry"].is_null());
  json e = CallJson("DELETE", "/api/v1/registries/corp", nullptr, "admin", 409);
  EXPECT_EQ(ErrorCode(e), kRegistryInUse);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("web"), std::string::npos);
  // A rename shows through the app's record (it holds the id).
  CallJson("PATCH", "/api/v1/registries/corp", {{"name", "corp-eu"}}, "admin", 200);
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["output_registry"], "corp-eu");
  CallJson("PATCH", "/api/v1/apps/web", {{"output_registry", nullptr}}, "member", 200);
  EXPECT_EQ(Call("DELETE", "/api/v1/registries/corp-eu", "", "admin").status, 204u);
}

TEST_F(RegistriesTest, AppPatchSetsAndClearsDefaultRegistries) {
  MakeZoneAndApp();
  json reg = CallJson("POST", "/api/v1/registries", {{"name", "corp"}, {"url", "https://registry.example"}}, "admin", 201);
  json app = CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", reg["id"]}, {"output_registry", "corp"}}, "member", 200);
  EXPECT_EQ(app["input_registry"], "corp");
  EXPECT_EQ(app["output_registry"], "corp");
  json listed = CallJson("GET", "/api/v1/apps", nullptr, "viewer", 200);
  EXPECT_EQ(listed["items"][0]["input_registry"], "corp");
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", "nope"}}, "member", 404)), kRegistryNotFound);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", 3}}, "member", 400)), "invalid_type");
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/apps/web", {{"name", "x"}}, "member", 400)), kUnknownField);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", nullptr}}, "viewer", 403)), kForbidden);
  EXPECT_EQ(ErrorCode(CallJson("PATCH", "/api/v1/apps/nope", {{"input_registry", nullptr}}, "member", 404)), kAppNotFound);
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["input_registry"], "corp");  // unchanged
  app = CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", nullptr}}, "member", 200);
  EXPECT_TRUE(app["input_registry"].is_null());
  EXPECT_EQ(app["output_registry"], "corp");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'app.update'"), 2);
}

TEST_F(RegistriesTest, RegistryForImageResolutionOrder) {
  MakeZoneAndApp();
  CallJson("POST", "/api/v1/registries",
           {{"name", "a"}, {"url", "https://a.example:5000"}, {"username", "ua"}, {"password", kPassword}}, "admin", 201);
  CallJson("POST", "/api/v1/registries", {{"name", "b"}, {"url", "https://B.example/prefix"}, {"token", kToken}}, "admin", 201);
  clock_.Advance(std::chrono::seconds(1));  // a2 is younger than a
  CallJson("POST", "/api/v1/registries", {{"name", "a2"}, {"url", "https://a.example:5000"}}, "admin", 201);
  CallJson("POST", "/api/v1/registries", {{"name", "hub"}, {"url", "https://registry-1.docker.io"}}, "admin", 201);
  CallJson("PATCH", "/api/v1/apps/web", {{"input_registry", "a2"}}, "member", 200);
  const std::string app = AppId("web");
  auto resolve = [&](const std::string& app_id, const std::string& ref, const std::string& name,
                     bool output) -> Result<std::optional<RegistryAccess>> {
    Result<std::optional<RegistryAccess>> out = std::optional<RegistryAccess>();
    EXPECT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                     out = RegistryForImage(tx, *manager_, app_id, ref, name, output);
                     return Status::Ok();
                   }).ok());
    return out;
  };
  auto name_of = [&](const std::string& app_id, const std::string& ref, const std::string& name, bool output) {
    auto r = resolve(app_id, ref, name, output);
    EXPECT_TRUE(r.ok()) << ref << ": " << r.status().message();
    return r.ok() && r->has_value() ? (*r)->name : std::string("-");
  };
  // 1. An explicit name wins (and its secret is unsealed).
  auto explicit_a = resolve(app, "a.example:5000/web:1", "a", false);
  ASSERT_TRUE(explicit_a.ok() && explicit_a->has_value());
  EXPECT_EQ((*explicit_a)->name, "a");
  EXPECT_EQ((*explicit_a)->secret.view(), kPassword);
  EXPECT_EQ((*explicit_a)->username, "ua");
  EXPECT_EQ((*explicit_a)->host, "a.example:5000");
  // ... but never for an image on another host (its credentials would go there).
  auto mismatch = resolve(app, "b.example/web:1", "a", false);
  EXPECT_EQ(mismatch.status().reason(), kRegistryHostMismatch);
  EXPECT_EQ(resolve(app, "a.example:5000/web:1", "nope", false).status().reason(), kRegistryNotFound);
  // 2. The app's default for that direction (a2 before a, though a is older) ...
  EXPECT_EQ(name_of(app, "a.example:5000/web:1", "", false), "a2");
  EXPECT_EQ(name_of(app, "docker://A.EXAMPLE:5000/web@sha256:" + std::string(64, '0'), "", false), "a2");
  // ... the output direction has no default: 3. the oldest registry on the reference's host.
  EXPECT_EQ(name_of(app, "a.example:5000/web:1", "", true), "a");
  EXPECT_EQ(name_of("", "a.example:5000/web:1", "", false), "a");
  // The default does not apply to another host: host matching decides there.
  EXPECT_EQ(name_of(app, "b.example/team/web:2", "", false), "b");
  EXPECT_EQ(name_of(app, "library/nginx:1", "", false), "hub");
  EXPECT_EQ(name_of(app, "nginx", "", false), "hub");
  EXPECT_EQ(name_of(app, "docker.io/library/nginx", "", false), "hub");
  // 4. Nothing: anonymous.
  EXPECT_EQ(name_of(app, "c.example/web:1", "", false), "-");
  EXPECT_EQ(name_of(app, "a.example/web:1", "", false), "-");  // no port: another host
  EXPECT_EQ(name_of(app, "oci:/tmp/layout:1", "", false), "-");
  EXPECT_EQ(ImageReferenceHost("localhost:5000/x"), "localhost:5000");
  EXPECT_EQ(ImageReferenceHost("localhost/x"), "localhost");
  EXPECT_EQ(ImageReferenceHost("docker-archive:/tmp/a.tar"), "");
}

TEST_F(RegistriesTest, SigningKeyMadeOnceAndStable) {
  MakeZoneAndApp();
  json app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  ASSERT_TRUE(app["mrsigner"].is_string());
  const std::string mrsigner = app["mrsigner"];
  EXPECT_EQ(mrsigner.size(), 64u);
  EXPECT_EQ(CallJson("GET", "/api/v1/apps", nullptr, "viewer", 200)["items"][0]["mrsigner"], mrsigner);
  const std::string app_id = app["id"];
  std::string key_id;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                     VOUCH_ASSIGN_OR_RETURN(AppSigningKey k, ActiveAppSigningKey(tx, *manager_, app_id));
                     EXPECT_EQ(k.mrsigner, mrsigner);
                     if (key_id.empty()) key_id = k.id;
                     EXPECT_EQ(k.id, key_id);
                     // The mrsigner is the converter's (manifest::Mrsigner) of the key it hands out.
                     EXPECT_TRUE(manifest::CheckSigningKey(k.key.get()).ok());
                     VOUCH_ASSIGN_OR_RETURN(crypto::Sha256Digest d, manifest::Mrsigner(k.key.get()));
                     EXPECT_EQ(HexEncode(d), mrsigner);
                     return Status::Ok();
                   }).ok());
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE app_id = ?", {app_id}), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'app.signing_key.create'"), 1);
  // Another app has another key.
  json other = CallJson("POST", "/api/v1/apps", {{"name", "api"}, {"zone", "prod"}}, "member", 201);
  EXPECT_NE(other["mrsigner"], mrsigner);

  // An app from before signing keys existed: null until first need, then made once.
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   return tx.Exec("DELETE FROM app_signing_keys WHERE app_id = ?", {app_id}).status();
                 }).ok());
  EXPECT_TRUE(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"].is_null());
  std::string made;
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(AppSigningKey k, ActiveAppSigningKey(tx, *manager_, app_id));
                   made = k.mrsigner;
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"], made);
  // Unknown app.
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   EXPECT_EQ(ActiveAppSigningKey(tx, *manager_, "app_nope").status().reason(), kAppNotFound);
                   return Status::Ok();
                 }).ok());
}

// Several first needs at once (conversion workers, two members on PostgreSQL) make one key.
TEST_F(RegistriesTest, ConcurrentFirstNeedsMakeOneSigningKey) {
  MakeZoneAndApp();
  const std::string app_id = AppId("web");
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   return tx.Exec("DELETE FROM app_signing_keys WHERE app_id = ?", {app_id}).status();
                 }).ok());
  constexpr int kThreads = 4;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Status st = db_->Write([&](store::Transaction& tx) -> Status {
        VOUCH_ASSIGN_OR_RETURN(AppSigningKey k, ActiveAppSigningKey(tx, *manager_, app_id));
        ids[i] = k.id;
        return Status::Ok();
      });
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE app_id = ?", {app_id}), 1);
}

TEST_F(RegistriesTest, SigningKeyRotationNeedsQuorumApproval) {
  MakeZoneAndApp(/*approvals=*/2);
  const std::string old_mrsigner = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"];
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "member", 403)), kForbidden);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "approver1", 403)), kForbidden);
  json rot = CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "admin", 202);
  EXPECT_EQ(rot["status"], "pending");
  EXPECT_EQ(rot["previous_mrsigner"], old_mrsigner);
  const std::string new_mrsigner = rot["mrsigner"];
  EXPECT_NE(new_mrsigner, old_mrsigner);
  const std::string task_id = rot["task_id"];
  json task = CallJson("GET", "/api/v1/tasks/" + task_id, nullptr, "viewer", 200);
  EXPECT_EQ(task["kind"], "signing_key");
  EXPECT_EQ(task["app"], "web");
  EXPECT_EQ(task["subject_id"], rot["key_id"]);
  EXPECT_EQ(task["approvals_required"], 2);
  EXPECT_NE(task["summary"].get<std::string>().find(old_mrsigner), std::string::npos);
  EXPECT_NE(task["summary"].get<std::string>().find(new_mrsigner), std::string::npos);
  // One rotation at a time.
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "admin", 409)), kSigningKeyPending);
  // One approval of two: nothing changes yet.
  CallJson("POST", "/api/v1/tasks/" + task_id + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"], old_mrsigner);
  json done = CallJson("POST", "/api/v1/tasks/" + task_id + "/approve", nullptr, "approver2", 200);
  EXPECT_EQ(done["status"], "approved");
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"], new_mrsigner);
  const std::string app_id = AppId("web");
  ASSERT_TRUE(db_->Write([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(AppSigningKey k, ActiveAppSigningKey(tx, *manager_, app_id));
                   EXPECT_EQ(k.mrsigner, new_mrsigner);
                   EXPECT_EQ(k.id, rot["key_id"].get<std::string>());
                   return Status::Ok();
                 }).ok());
  // The old key is retired and its sealed bytes wiped.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE app_id = ? AND status = 'retired' AND mrsigner = ?",
                  {app_id, old_mrsigner}),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE status = 'retired' AND LENGTH(key_sealed) > 0"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE app_id = ? AND status = 'active'", {app_id}), 1);

  // Denied: the pending key is marked denied, the active one stays.
  json rot2 = CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "admin", 202);
  EXPECT_EQ(rot2["previous_mrsigner"], new_mrsigner);
  CallJson("POST", "/api/v1/tasks/" + rot2["task_id"].get<std::string>() + "/deny", {{"reason", "not now"}}, "approver1", 200);
  EXPECT_EQ(CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200)["mrsigner"], new_mrsigner);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE id = ? AND status = 'denied' AND LENGTH(key_sealed) = 0",
                  {rot2["key_id"].get<std::string>()}),
            1);
  // After a denial another rotation may start; deleting the app ends it and retires the key.
  json rot3 = CallJson("POST", "/api/v1/apps/web/signing-key/rotate", nullptr, "admin", 202);
  EXPECT_EQ(Call("DELETE", "/api/v1/apps/web", "", "admin").status, 204u);
  EXPECT_EQ(CallJson("GET", "/api/v1/tasks/" + rot3["task_id"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "cancelled");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM app_signing_keys WHERE app_id = ? AND status IN ('active', 'pending')", {app_id}), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'app.signing_key.rotate'"), 3);
  // No key material in any answer or audit row: only mrsigners.
  EXPECT_EQ(answers_.find("PRIVATE KEY"), std::string::npos);
}

// `vouchd master-key rotate` re-seals registry secrets and app signing keys; both open with the
// new key only, and a wiped (retired) key stays empty.
TEST(RegistriesMasterKey, RotationResealsRegistrySecretsAndSigningKeys) {
  test::TempDir tmp("registries-rotate");
  FixedClock clock(std::chrono::system_clock::now());
  InitOptions o;
  if (!TestDataDirOptions(tmp.File("data"), &o)) return;
  ASSERT_TRUE(InitDataDir(o, clock).ok());
  const Principal admin = Principal::System();
  std::string mrsigner, app_id;
  {
    auto opened = OpenDataDirManager(o.data_dir, &clock);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Manager* m = opened->manager.get();
    RegistrySpec spec;
    spec.name = "corp";
    spec.url = "https://registry.example";
    spec.username = std::optional<std::string>("ci");
    spec.password = std::optional<std::string>(kPassword);
    ASSERT_TRUE(m->CreateRegistry(admin, spec).ok());
    RegistrySpec anon;
    anon.name = "anon";
    anon.url = "https://anon.example";
    ASSERT_TRUE(m->CreateRegistry(admin, anon).ok());
    auto app = m->CreateApp(admin, "web", "default", {});
    ASSERT_TRUE(app.ok()) << app.status().message();
    mrsigner = (*app)["mrsigner"];
    app_id = (*app)["id"];
    auto rot = m->RotateAppSigningKey(admin, "web");  // a pending key: sealed too
    ASSERT_TRUE(rot.ok());
  }
  const std::string old_key = *ReadWholeFile(o.data_dir + "/master.key");
  auto r = RotateMasterKey(o.data_dir, clock);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string new_key = *ReadWholeFile(o.data_dir + "/master.key");
  ASSERT_NE(old_key, new_key);

  auto d = OpenDataDir(o.data_dir);
  ASSERT_TRUE(d.ok());
  auto db = store::OpenDatabase(d->store_url);
  ASSERT_TRUE(db.ok());
  int sealed_checked = 0;
  ASSERT_TRUE((*db)->Read([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(store::Rows regs, tx.Query("SELECT id, secret_sealed FROM registries "
                                                                     "WHERE secret_sealed IS NOT NULL"));
                   VOUCH_ASSIGN_OR_RETURN(store::Rows keys, tx.Query("SELECT id, key_sealed FROM app_signing_keys"));
                   EXPECT_EQ(regs.size(), 1u);
                   EXPECT_EQ(keys.size(), 2u);
                   for (const auto& [rows, aad] : {std::pair{&regs, &RegistrySecretAad}, std::pair{&keys, &AppSigningKeyAad}}) {
                     for (const auto& row : *rows) {
                       EXPECT_TRUE(crypto::Aes256GcmOpen(AsBytes(new_key), row.Bytes(1), AsBytes(aad(row.Str(0)))).ok());
                       EXPECT_FALSE(crypto::Aes256GcmOpen(AsBytes(old_key), row.Bytes(1), AsBytes(aad(row.Str(0)))).ok());
                       ++sealed_checked;
                     }
                   }
                   return Status::Ok();
                 }).ok());
  EXPECT_EQ(sealed_checked, 3);
  // And through the code that uses them, with a Manager on the new key.
  auto m = Manager::Create(db->get(), std::move(d->master_key), &clock);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*db)->Write([&](store::Transaction& tx) -> Status {
                   VOUCH_ASSIGN_OR_RETURN(RegistryAccess a, LoadRegistryAccess(tx, **m, "corp"));
                   EXPECT_EQ(a.secret.view(), kPassword);
                   VOUCH_ASSIGN_OR_RETURN(AppSigningKey k, ActiveAppSigningKey(tx, **m, app_id));
                   EXPECT_EQ(k.mrsigner, mrsigner);
                   return Status::Ok();
                 }).ok());
}

}  // namespace
}  // namespace vouch::api
