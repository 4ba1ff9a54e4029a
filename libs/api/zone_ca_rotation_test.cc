// Zone CA rotation (issue 18; manager_ca_rotation.cc, zone_ca_rotation.h): rotate (admin, pending
// under the zone's quorum), approve, the bundle, activate, per-root CRLs, master-key rotation.

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "api/bootstrap.h"
#include "api/manager.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "api/zone_ca_rotation.h"
#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "store/database.h"
#include "testing/csr.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Response;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::vector<X509Ptr> ParsePems(const std::string& pem) {
  std::vector<X509Ptr> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) out.emplace_back(x);
  BIO_free(bio);
  return out;
}

// True when `cert_pem` is signed by one of the roots in `roots_pem`.
bool SignedByOneOf(const std::string& cert_pem, const std::string& roots_pem) {
  auto certs = ParsePems(cert_pem);
  if (certs.size() != 1) return false;
  for (const auto& root : ParsePems(roots_pem)) {
    if (X509_verify(certs[0].get(), X509_get0_pubkey(root.get())) == 1) return true;
  }
  return false;
}

// The serials (lower-case hex) of a DER CRL verified under `root_pem`; nullopt if it does not verify.
std::optional<std::vector<std::string>> CrlSerials(const std::string& der, const std::string& root_pem) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (crl == nullptr) return std::nullopt;
  auto roots = ParsePems(root_pem);
  std::optional<std::vector<std::string>> out;
  if (roots.size() == 1 && X509_CRL_verify(crl, X509_get0_pubkey(roots[0].get())) == 1) {
    out.emplace();
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      BIGNUM* bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr);
      char* hex = BN_bn2hex(bn);
      std::string s(hex);
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out->push_back(s);
      OPENSSL_free(hex);
      BN_free(bn);
    }
  }
  X509_CRL_free(crl);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (s.size() > 1 && s[0] == '0') s.erase(0, 1);
  return s;
}

class ZoneCaRotationTest : public ManagerFixture {
 protected:
  ZoneCaRotationTest() : ManagerFixture("zoneca") {
    users_ = {{"admin", "admin"}, {"approver1", "approver"}, {"member", "member"}, {"viewer", "viewer"}};
  }
  void SetUp() override {
    ManagerFixture::SetUp();
    if (!Ready()) return;
    MakeZone("prod");
  }

  // An app with web.example.com approved and an approved build: returns the build id.
  std::string ApprovedBuild() {
    ApproveDomainTasks(MakeApp("web", "prod", json::array({"web.example.com"})));
    json build = MakeBuild();
    Approve(build["task_id"].get<std::string>());
    return build["id"];
  }
  json Issue(const std::string& build_id) {
    return CallJson("POST", "/api/v1/certificates",
                    {{"build_id", build_id}, {"csr", test::CsrPemFor(test::Key().get(), {"web.example.com"})}}, "admin",
                    201);
  }
};

size_t PemCount(const std::string& pem) { return ParsePems(pem).size(); }

TEST_F(ZoneCaRotationTest, RotateApproveActivateKeepsOldCertificatesTrustedAndRevocable) {
  const std::string build = ApprovedBuild();
  json old_cert = Issue(build);
  const std::string old_root = Call("GET", "/api/v1/zones/prod/ca").body;
  ASSERT_EQ(PemCount(old_root), 1u);
  ASSERT_TRUE(SignedByOneOf(old_cert["pem"], old_root));

  json cas = CallJson("GET", "/api/v1/zones/prod/cas", nullptr, "viewer", 200);
  ASSERT_EQ(cas["items"].size(), 1u);
  EXPECT_TRUE(cas["items"][0]["id"].is_null());
  EXPECT_EQ(cas["items"][0]["status"], "active");
  // Rotate: a pending next root under the zone's quorum; nothing changes for relying parties yet.
  json rot = CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);
  EXPECT_EQ(rot["status"], "pending");
  json task = CallJson("GET", "/api/v1/tasks/" + rot["task_id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(task["kind"], "ca_rotation");
  EXPECT_EQ(task["status"], "pending");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM tasks WHERE id = ? AND subject_id = ?", {rot["task_id"].get<std::string>(),
                                                                                   rot["ca_id"].get<std::string>()}),
            1);
  EXPECT_EQ(Call("GET", "/api/v1/zones/prod/ca/bundle").body, old_root);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 409)), "no_approved_ca");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 409)), "ca_rotation_pending");

  // Approved: the bundle carries the current and the next root.
  CallJson("POST", "/api/v1/tasks/" + rot["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zone_cas WHERE id = ? AND status = 'approved'", {rot["ca_id"].get<std::string>()}), 1);
  std::string bundle = Call("GET", "/api/v1/zones/prod/ca/bundle").body;
  ASSERT_EQ(PemCount(bundle), 2u) << bundle;
  EXPECT_EQ(Call("GET", "/api/v1/zones/prod/ca").body, old_root);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 409)), "ca_rotation_pending");

  // Activate: the next root issues; the old root's certificates still verify against the bundle.
  json act = CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 200);
  EXPECT_EQ(act["ca_id"], rot["ca_id"]);
  const std::string new_root = Call("GET", "/api/v1/zones/prod/ca").body;
  ASSERT_EQ(PemCount(new_root), 1u);
  EXPECT_NE(new_root, old_root);
  EXPECT_EQ(json(act["ca"]["sha256"]), rot["ca"]["sha256"]);
  json new_cert = Issue(build);
  EXPECT_TRUE(SignedByOneOf(new_cert["pem"], new_root));
  EXPECT_FALSE(SignedByOneOf(new_cert["pem"], old_root));
  std::string after = Call("GET", "/api/v1/zones/prod/ca/bundle").body;
  ASSERT_EQ(PemCount(after), 2u) << after;  // the old root stays while its certificate is unexpired
  EXPECT_TRUE(SignedByOneOf(old_cert["pem"], after));
  EXPECT_TRUE(SignedByOneOf(new_cert["pem"], after));
  EXPECT_EQ(CallJson("GET", "/api/v1/certificates/" + old_cert["serial"].get<std::string>(), nullptr, "viewer", 200)["status"],
            "valid");

  // Revoking the old root's certificate: in the old root's CRL, signed by the old root.
  const std::string prev = act["previous_ca_id"];
  cas = CallJson("GET", "/api/v1/zones/prod/cas", nullptr, "viewer", 200);
  ASSERT_EQ(cas["items"].size(), 2u) << cas.dump();
  EXPECT_EQ(cas["items"][0]["id"], act["ca_id"]);
  EXPECT_EQ(cas["items"][0]["status"], "active");
  EXPECT_EQ(cas["items"][1]["id"], prev);
  EXPECT_EQ(cas["items"][1]["status"], "retired");
  EXPECT_FALSE(cas["items"][1]["retired_at"].is_null());
  EXPECT_EQ(cas.dump().find("key"), std::string::npos);
  auto before = CrlSerials(Call("GET", "/api/v1/zones/prod/crl?ca=" + prev).body, old_root);
  ASSERT_TRUE(before.has_value());
  EXPECT_TRUE(before->empty());
  CallJson("POST", "/api/v1/certificates/" + old_cert["serial"].get<std::string>() + "/revoke", {{"reason", "test"}}, "admin",
           200);
  auto old_crl = CrlSerials(Call("GET", "/api/v1/zones/prod/crl?ca=" + prev).body, old_root);
  ASSERT_TRUE(old_crl.has_value()) << "the old root's CRL does not verify under the old root";
  EXPECT_EQ(*old_crl, std::vector<std::string>{Lower(old_cert["serial"])});
  auto zone_crl = CrlSerials(Call("GET", "/api/v1/zones/prod/crl").body, new_root);
  ASSERT_TRUE(zone_crl.has_value()) << "the zone's CRL does not verify under the new root";
  // ?ca= the active root is the zone's CRL; an unknown one is 404.
  auto active_crl = CrlSerials(Call("GET", "/api/v1/zones/prod/crl?ca=" + act["ca_id"].get<std::string>()).body, new_root);
  EXPECT_TRUE(active_crl.has_value());
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/zones/prod/crl?ca=zca_nope", nullptr, "", 404)), "zone_ca_not_found");

  // Audited, and no key in clear anywhere: the active root's row holds no key.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'zone.ca.rotate'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'zone.ca.activate'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zone_cas WHERE id = ? AND status = 'active' AND length(key_sealed) = 0",
                  {act["ca_id"].get<std::string>()}),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zone_cas WHERE id = ? AND status = 'retired' AND length(key_sealed) > 0",
                  {prev}),
            1);

  // A second rotation retires the first rotated root through its own row.
  json rot2 = CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);
  CallJson("POST", "/api/v1/tasks/" + rot2["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  json act2 = CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 200);
  EXPECT_EQ(act2["previous_ca_id"], act["ca_id"]);
  EXPECT_TRUE(SignedByOneOf(Issue(build)["pem"], Call("GET", "/api/v1/zones/prod/ca").body));
  EXPECT_TRUE(CrlSerials(Call("GET", "/api/v1/zones/prod/crl?ca=" + act["ca_id"].get<std::string>()).body, new_root)
                  .has_value());
}

// Two members on one store (HA): the one that did not activate issues from the new root at once,
// though it had the old root's signer cached.
TEST_F(ZoneCaRotationTest, AnotherMemberIssuesFromTheActivatedRootWithoutARestart) {
  const std::string build = ApprovedBuild();
  ManagerOptions options;
  options.password_kdf = crypto::ScryptParams{1 << 10, 8, 1};
  auto other = Manager::Create(db_.get(), crypto::SecretBytes(master_.span()), &clock_, options);
  ASSERT_TRUE(other.ok());
  Principal admin = Principal::System();
  const std::string csr = test::CsrPemFor(test::Key().get(), {"web.example.com"});
  const std::string old_root = Call("GET", "/api/v1/zones/prod/ca").body;
  auto before = (*other)->IssueManual(admin, build, csr);  // caches the old root's signer there
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_TRUE(SignedByOneOf((*before)["pem"], old_root));
  json rot = CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);
  CallJson("POST", "/api/v1/tasks/" + rot["task_id"].get<std::string>() + "/approve", nullptr, "approver1", 200);
  CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 200);
  const std::string new_root = Call("GET", "/api/v1/zones/prod/ca").body;
  auto after = (*other)->IssueManual(admin, build, csr);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(SignedByOneOf((*after)["pem"], new_root));
  EXPECT_FALSE(SignedByOneOf((*after)["pem"], old_root));
}

TEST_F(ZoneCaRotationTest, OnlyAnAdminRotatesOrActivatesAndADeniedRootIsWiped) {
  for (const char* user : {"member", "approver1", "viewer"}) {
    EXPECT_EQ(Call("POST", "/api/v1/zones/prod/ca/rotate", "", user).status, 403u) << user;
    EXPECT_EQ(Call("POST", "/api/v1/zones/prod/ca/activate", "", user).status, 403u) << user;
  }
  EXPECT_EQ(Call("POST", "/api/v1/zones/prod/ca/rotate", "").status, 401u);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/ghost/ca/rotate", nullptr, "admin", 404)), "zone_not_found");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 409)), "no_approved_ca");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zone_cas"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action LIKE 'zone.ca.%'"), 0);

  json rot = CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);
  CallJson("POST", "/api/v1/tasks/" + rot["task_id"].get<std::string>() + "/deny", {{"reason", "not now"}}, "approver1", 200);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zone_cas WHERE id = ? AND status = 'denied' AND length(key_sealed) = 0",
                  {rot["ca_id"].get<std::string>()}),
            1);
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/zones/prod/ca/activate", nullptr, "admin", 409)), "no_approved_ca");
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/zones/prod/crl?ca=" + rot["ca_id"].get<std::string>(), nullptr, "", 404)),
            "zone_ca_not_found");
  CallJson("POST", "/api/v1/zones/prod/ca/rotate", nullptr, "admin", 202);  // a new attempt is allowed
}

// Offline master-key rotation (master_key.cc) re-seals zone_cas.key_sealed: a retired root's key
// opens with the new key only, and its CRL is still signed after the restart.
TEST(ZoneCaMasterKey, RetiredRootKeysAreResealedByMasterKeyRotation) {
  test::TempDir tmp{"zoneca-mk"};
  FixedClock clock{FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()))};
  InitOptions o;
  if (!TestDataDirOptions(tmp.File("data"), &o)) return;
  ASSERT_TRUE(InitDataDir(o, clock).ok());
  std::string retired, pending;
  {
    auto opened = OpenDataDirManager(o.data_dir, &clock);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Manager* m = opened->manager.get();
    store::Database* db = opened->db.get();
    ZoneSpec z;
    z.name = "prod";
    ASSERT_TRUE(m->CreateZone(Principal::System(), z).ok());
    Principal admin = Principal::System();
    auto rot = m->RotateZoneCa(admin, "prod");
    ASSERT_TRUE(rot.ok()) << rot.status().ToString();
    ASSERT_TRUE(db->Write([&](store::Transaction& tx) -> Status {
                      return tx.Exec("UPDATE zone_cas SET status = 'approved' WHERE id = ?", {(*rot)["ca_id"].get<std::string>()})
                          .status();
                    }).ok());
    auto act = m->ActivateZoneCa(admin, "prod");
    ASSERT_TRUE(act.ok()) << act.status().ToString();
    retired = (*act)["previous_ca_id"];
    auto rot2 = m->RotateZoneCa(admin, "prod");  // a pending one too
    ASSERT_TRUE(rot2.ok());
    pending = (*rot2)["ca_id"];
  }
  auto report = RotateMasterKey(o.data_dir, clock);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  auto d = OpenDataDir(o.data_dir);
  ASSERT_TRUE(d.ok());
  auto db = store::OpenDatabase(d->store_url);
  ASSERT_TRUE(db.ok());
  for (const std::string& id : {retired, pending}) {
    ASSERT_TRUE((*db)->Read([&](store::Transaction& tx) -> Status {
                      VOUCH_ASSIGN_OR_RETURN(store::Row r, tx.QueryOne("SELECT key_sealed FROM zone_cas WHERE id = ?", {id}, "ca"));
                      EXPECT_TRUE(crypto::Aes256GcmOpen(d->master_key.span(), r.Bytes(0), AsBytes(ZoneCaRowKeyAad(id))).ok()) << id;
                      return Status::Ok();
                    }).ok());
  }
  auto m = Manager::Create(db->get(), std::move(d->master_key), &clock);
  ASSERT_TRUE(m.ok());
  auto crl = (*m)->ZoneCaCrl("prod", retired);
  EXPECT_TRUE(crl.ok()) << crl.status().ToString();
}

}  // namespace
}  // namespace vouch::api
