#include "manifest/manifest.h"

#include <gtest/gtest.h>

#include "base/encoding.h"
#include "crypto/keys.h"

namespace vouch::manifest {
namespace {

EnclaveManifest Sample() {
  EnclaveManifest m;
  m.app = "web";
  m.entrypoint = {"/bin/server"};
  m.exec_path = "/bin/server";
  m.args = {"--port", "8443"};
  m.env = {"PATH=/bin", "MODE=prod"};
  m.isvprodid = 7;
  m.isvsvn = 3;
  m.ro_dirs = {"/"};
  m.rw_dirs = {"/tmp"};
  m.certificates.push_back(CertificateRequest{});
  m.files.push_back({FileEntry::Type::kFile, "/bin/server", std::string(64, 'a'), 10, 0755, {}});
  m.files.push_back({FileEntry::Type::kSymlink, "/bin/sh", {}, 0, 0, "server"});
  m.files.push_back({FileEntry::Type::kDir, "/bin", {}, 0, 0755, {}});
  std::sort(m.files.begin(), m.files.end(), [](auto& a, auto& b) { return a.path < b.path; });
  return m;
}

TEST(Manifest, CanonicalFormRoundTripsAndIsStable) {
  auto c = ToCanonical(Sample());
  ASSERT_TRUE(c.ok());
  auto parsed = Parse(*c);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*ToCanonical(*parsed), *c);
  EXPECT_EQ(parsed->isvprodid, 7u);
  EXPECT_EQ(parsed->files.size(), 3u);
  EXPECT_EQ(parsed->exec_path, "/bin/server");
  ASSERT_NE(FindEntry(*parsed, "/bin"), nullptr);
  EXPECT_EQ(FindEntry(*parsed, "/bin")->type, FileEntry::Type::kDir);
  EXPECT_EQ(FindEntry(*parsed, "/bin/x"), nullptr);
  // Sorted keys, no whitespace.
  EXPECT_EQ(c->find(' '), std::string::npos);
  EXPECT_LT(c->find("\"agent_socket\""), c->find("\"allow_cmdline_args\""));
  EXPECT_EQ(HexEncode(Mrenclave(*c)), HexEncode(crypto::Sha256(*c)));
}

TEST(Manifest, RejectsNonCanonicalBytes) {
  std::string c = *ToCanonical(Sample());
  EXPECT_EQ(Parse(c + " ").status().reason(), "invalid_manifest");
  std::string spaced = c;
  spaced.insert(1, " ");
  EXPECT_FALSE(Parse(spaced).ok());
  EnclaveManifest unsorted = Sample();
  std::swap(unsorted.files[0], unsorted.files[2]);
  EXPECT_FALSE(Parse(*ToCanonical(unsorted)).ok());
  EnclaveManifest relative = Sample();
  relative.files[0].path = "bin/x";
  EXPECT_FALSE(Parse(*ToCanonical(relative)).ok());
  EXPECT_FALSE(Parse("{}").ok());
  EXPECT_FALSE(Parse("[").ok());
}

TEST(Manifest, ProgramMustBeAListedExecutableAndFormatOneIsRefused) {
  EnclaveManifest m = Sample();
  m.exec_path = "/bin/other";
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  m.exec_path = "/bin/sh";  // a symlink: the converter records the resolved file
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  m.exec_path = "/bin";
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  m = Sample();
  m.files[1].mode = 0644;  // /bin/server not executable
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  m = Sample();
  m.certificates[0].key_path = "key.pem";
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  m.certificates[0].key_path = "/key.pem";  // the credentials directory would be /
  EXPECT_EQ(Parse(*ToCanonical(m)).status().reason(), "invalid_manifest");
  std::string v1 = *ToCanonical(Sample());
  v1.replace(v1.find(kFormat), kFormat.size(), kFormatV1);
  EXPECT_EQ(Parse(v1).status().reason(), "manifest_format_unsupported");
  EXPECT_EQ(CredentialDirs(Sample()), std::vector<std::string>{"/run/vouch/certs"});
}

TEST(Manifest, EscapesNonAsciiAndRefusesInvalidUtf8) {
  EnclaveManifest m = Sample();
  m.env.push_back("GREETING=gr\xc3\xbc\xc3\x9f");
  auto c = ToCanonical(m);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->find("\\u00fc"), std::string::npos);
  EXPECT_TRUE(Parse(*c).ok());
  m.env.push_back("BAD=\xff");
  EXPECT_FALSE(ToCanonical(m).ok());
}

TEST(Manifest, SignsWithP256AndRsa3072Only) {
  std::string c = *ToCanonical(Sample());
  for (crypto::KeyType t : {crypto::KeyType::kEcP256, crypto::KeyType::kRsa3072}) {
    auto key = crypto::GenerateKey(t);
    ASSERT_TRUE(key.ok());
    auto sig = Sign(key->get(), c);
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(VerifySignature(key->get(), c, *sig).ok());
    EXPECT_EQ(VerifySignature(key->get(), c + "x", *sig).reason(), "bad_manifest_signature");
    auto mrsigner = Mrsigner(key->get());
    ASSERT_TRUE(mrsigner.ok());
    EXPECT_EQ(*mrsigner, crypto::Sha256(*crypto::PublicKeyToDer(key->get())));
  }
  auto p384 = crypto::GenerateKey(crypto::KeyType::kEcP384);
  EXPECT_EQ(Sign(p384->get(), c).status().reason(), "invalid_signing_key");
}

TEST(Manifest, MostSpecificDirectoryWins) {
  std::vector<std::string> ro = {"/", "/tmp/keep"}, rw = {"/tmp", "/etc/hosts"};
  EXPECT_TRUE(IsProtected("/bin/sh", ro, rw));
  EXPECT_FALSE(IsProtected("/tmp/x", ro, rw));
  EXPECT_TRUE(IsProtected("/tmp/keep/x", ro, rw));
  EXPECT_FALSE(IsProtected("/etc/hosts", ro, rw));
  EXPECT_TRUE(IsProtected("/etc/hostsx", ro, rw));
  EXPECT_FALSE(IsProtected("/bin/sh", {"/usr"}, {}));
}

}  // namespace
}  // namespace vouch::manifest
