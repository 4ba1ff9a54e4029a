#include "pki/certificate.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <set>
#include <thread>

#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "pki/ca.h"
#include "pki/crl.h"
#include "pki/service.h"
#include "testing/command.h"
#include "testing/csr.h"
#include "testing/temp_dir.h"

namespace vouch::pki {
namespace {

using namespace std::chrono_literals;
using test::CsrPem;
using test::Key;
using test::MakeCsr;

const TimePoint kNow = FromUnixSeconds(1795000000);  // 2026-11-18

struct Ca {
  CaMaterial material;
  std::unique_ptr<CaSigner> signer;
};

Ca MakeCa(CaKeyAlgorithm alg = CaKeyAlgorithm::kEcP256, std::chrono::seconds validity = 5 * 8766h) {
  RootCaOptions options;
  options.common_name = "zone prod root CA";
  options.organization = "vouch";
  options.key_algorithm = alg;
  options.validity = validity;
  FixedClock clock(kNow - 1h);
  auto material = CreateRootCa(options, clock);
  EXPECT_TRUE(material.ok()) << material.status().ToString();
  auto signer = CaSigner::Create(*material);
  EXPECT_TRUE(signer.ok()) << signer.status().ToString();
  return {std::move(material).value(), std::move(signer).value()};
}

Measurement SampleMeasurement() {
  Measurement m;
  m.platform = "sgx";
  m.mrenclave.assign(32, 0xaa);
  m.mrsigner.assign(32, 0xbb);
  m.isvprodid = 7;
  m.isvsvn = 300;
  return m;
}

IssueRequest WorkloadRequest(const Csr& csr) {
  IssueRequest req = IssueRequest::ForCsr(csr, CertificateProfile::kWorkload);
  req.common_name = "web";
  req.dns_names = {"web.prod.example", "web"};
  req.uris = {SpiffeId("prod", "web")};
  req.measurement = SampleMeasurement();
  req.validity = 24h;
  return req;
}

Csr ParseOk(EVP_PKEY* key) {
  auto csr = ParseCsr(CsrPem(MakeCsr(key).get()));
  EXPECT_TRUE(csr.ok()) << csr.status().ToString();
  return std::move(csr).value();
}

crypto::X509Ptr Parse(const IssuedCertificate& issued) {
  auto cert = crypto::CertFromDer(issued.der);
  EXPECT_TRUE(cert.ok());
  auto from_pem = crypto::CertFromPem(issued.pem);
  EXPECT_TRUE(from_pem.ok());
  EXPECT_EQ(X509_cmp(cert->get(), from_pem->get()), 0);
  return std::move(cert).value();
}

std::vector<uint8_t> Bytes(const ASN1_STRING* s) {
  return {ASN1_STRING_get0_data(s), ASN1_STRING_get0_data(s) + ASN1_STRING_length(s)};
}

// The names of one type in the subjectAltName extension, in order.
std::vector<std::string> Sans(X509* cert, int type) {
  std::vector<std::string> out;
  crypto::GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != type) continue;
    if (type == GEN_IPADD) {
      auto b = Bytes(gn->d.iPAddress);
      out.push_back(HexEncode(b));
    } else {
      auto b = Bytes(gn->d.ia5);
      out.emplace_back(b.begin(), b.end());
    }
  }
  return out;
}

bool IsCritical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

TEST(CreateRootCa, DefaultsToP256FiveYearsCriticalCaExtensions) {
  Ca ca = MakeCa();
  X509* cert = ca.material.cert.get();
  EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
  EXPECT_EQ(crypto::DescribeKey(ca.material.key.get()), "EC P-256");
  EXPECT_EQ(crypto::SubjectCommonName(cert), "zone prod root CA");
  EXPECT_EQ(crypto::NameToString(X509_get_subject_name(cert)), "CN=zone prod root CA,O=vouch");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);
  EXPECT_EQ(crypto::NotAfter(cert) - crypto::NotBefore(cert), std::chrono::seconds(5 * 8766h));
  EXPECT_TRUE(X509_get_extension_flags(cert) & EXFLAG_CA);
  EXPECT_TRUE(IsCritical(cert, NID_basic_constraints));
  EXPECT_TRUE(IsCritical(cert, NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_get_pathlen(cert), 0);
  ASSERT_NE(X509_get0_subject_key_id(cert), nullptr);
  EXPECT_EQ(X509_get0_subject_key_id(cert)->length, 20);
  EXPECT_EQ(X509_verify(cert, ca.material.key.get()), 1);
  EXPECT_EQ(X509_check_issued(cert, cert), X509_V_OK);
  EXPECT_EQ(crypto::SerialHex(cert).size(), 32u);
}

TEST(CreateRootCa, SupportsP384Rsa3072AndUnlimitedPathLength) {
  RootCaOptions options;
  options.common_name = "p384";
  options.key_algorithm = CaKeyAlgorithm::kEcP384;
  options.path_length = std::nullopt;
  auto p384 = CreateRootCa(options);
  ASSERT_TRUE(p384.ok()) << p384.status().ToString();
  EXPECT_EQ(crypto::DescribeKey(p384->key.get()), "EC P-384");
  EXPECT_EQ(X509_get_signature_nid(p384->cert.get()), NID_ecdsa_with_SHA384);
  EXPECT_EQ(X509_get_pathlen(p384->cert.get()), -1);

  options.common_name = "rsa";
  options.key_algorithm = CaKeyAlgorithm::kRsa3072;
  options.path_length = 2;
  auto rsa = CreateRootCa(options);
  ASSERT_TRUE(rsa.ok()) << rsa.status().ToString();
  EXPECT_EQ(crypto::DescribeKey(rsa->key.get()), "RSA 3072");
  EXPECT_EQ(X509_get_signature_nid(rsa->cert.get()), NID_sha256WithRSAEncryption);
  EXPECT_EQ(X509_get_pathlen(rsa->cert.get()), 2);
  EXPECT_TRUE(CaSigner::Create(*rsa).ok());
}

TEST(CreateRootCa, RejectsBadOptions) {
  RootCaOptions options;
  EXPECT_EQ(CreateRootCa(options).status().code(), StatusCode::kInvalidArgument);  // no CN
  options.common_name = std::string(65, 'x');
  EXPECT_EQ(CreateRootCa(options).status().code(), StatusCode::kInvalidArgument);
  options.common_name = "ok";
  options.validity = 0s;
  EXPECT_EQ(CreateRootCa(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(CaSigner, RejectsKeyThatDoesNotMatch) {
  Ca ca = MakeCa();
  auto other = Key(crypto::KeyType::kEcP256);
  auto signer = CaSigner::Create(ca.material.cert.get(), other.get());
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().reason(), "ca_key_mismatch");
}

TEST(CaSigner, RejectsLeafCertificate) {
  Ca ca = MakeCa();
  auto leaf_key = Key(crypto::KeyType::kEcP256);
  auto issued = IssueCertificate(*ca.signer, WorkloadRequest(ParseOk(leaf_key.get())));
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto leaf = Parse(*issued);
  auto signer = CaSigner::Create(leaf.get(), leaf_key.get());
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().reason(), "not_a_ca");
}

TEST(CaSigner, LoadsFromPem) {
  Ca ca = MakeCa();
  auto key_pem = crypto::PrivateKeyToPem(ca.material.key.get());
  ASSERT_TRUE(key_pem.ok());
  auto signer = CaSigner::CreateFromPem(ca.material.cert_pem, key_pem->view());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ((*signer)->cert_pem(), ca.material.cert_pem);
  EXPECT_EQ(HexEncode((*signer)->key_id()), HexEncode(Bytes(X509_get0_subject_key_id(ca.material.cert.get()))));
}

TEST(IssueCertificate, WorkloadProfileHasEveryField) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  Csr csr = ParseOk(key.get());
  FixedClock clock(kNow);
  auto issued = IssueCertificate(*ca.signer, WorkloadRequest(csr), clock);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto cert = Parse(*issued);
  X509* x = cert.get();

  EXPECT_EQ(X509_get_version(x), X509_VERSION_3);
  // Serial: 16 bytes, positive, first byte >= 0x10, hex form matches.
  const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
  EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER);  // not V_ASN1_NEG_INTEGER
  EXPECT_EQ(ASN1_STRING_length(serial), 16);
  EXPECT_EQ(issued->serial_hex, crypto::SerialHex(x));
  EXPECT_EQ(issued->serial_hex.size(), 32u);
  // Names.
  EXPECT_EQ(crypto::NameToString(X509_get_subject_name(x)), "CN=web");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca.material.cert.get())), 0);
  EXPECT_EQ(Sans(x, GEN_DNS), (std::vector<std::string>{"web.prod.example", "web"}));
  EXPECT_EQ(Sans(x, GEN_URI), (std::vector<std::string>{"spiffe://prod/app/web"}));
  EXPECT_FALSE(IsCritical(x, NID_subject_alt_name));
  // Validity: backdated one minute, 24 hours long.
  EXPECT_EQ(crypto::NotBefore(x), kNow - 60s);
  EXPECT_EQ(crypto::NotAfter(x), kNow - 60s + 24h);
  EXPECT_EQ(issued->not_before, crypto::NotBefore(x));
  EXPECT_EQ(issued->not_after, crypto::NotAfter(x));
  // The subject key is the CSR's key, byte for byte.
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(x), key.get()), 1);
  unsigned char* spki = nullptr;
  int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
  EXPECT_EQ(std::vector<uint8_t>(spki, spki + spki_len), csr.spki_der);
  OPENSSL_free(spki);
  // Extensions.
  uint32_t flags = X509_get_extension_flags(x);
  EXPECT_FALSE(flags & EXFLAG_INVALID);
  EXPECT_FALSE(flags & EXFLAG_CA);
  EXPECT_TRUE(flags & EXFLAG_BCONS);
  EXPECT_TRUE(IsCritical(x, NID_basic_constraints));
  EXPECT_TRUE(IsCritical(x, NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(x), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_FALSE(IsCritical(x, NID_ext_key_usage));
  EXPECT_EQ(X509_get_extended_key_usage(x), static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
  EXPECT_EQ(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
  // SKI = SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)); AKI = the CA's SKI.
  const unsigned char* pk = nullptr;
  int pk_len = 0;
  ASSERT_EQ(X509_PUBKEY_get0_param(nullptr, &pk, &pk_len, nullptr, X509_get_X509_PUBKEY(x)), 1);
  unsigned char sha1[20];
  SHA1(pk, static_cast<size_t>(pk_len), sha1);
  ASSERT_NE(X509_get0_subject_key_id(x), nullptr);
  EXPECT_EQ(Bytes(X509_get0_subject_key_id(x)), std::vector<uint8_t>(sha1, sha1 + 20));
  ASSERT_NE(X509_get0_authority_key_id(x), nullptr);
  EXPECT_EQ(Bytes(X509_get0_authority_key_id(x)), Bytes(X509_get0_subject_key_id(ca.material.cert.get())));
  // Measurement extension: present, non-critical, decodes to the request's measurement.
  crypto::Asn1ObjectPtr oid(OBJ_txt2obj(std::string(kMeasurementExtensionOid).c_str(), 1));
  int idx = X509_get_ext_by_OBJ(x, oid.get(), -1);
  ASSERT_GE(idx, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(x, idx)), 0);
  auto m = ReadMeasurementExtension(x);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, SampleMeasurement());
  // Exactly these seven extensions.
  EXPECT_EQ(X509_get_ext_count(x), 7);
  // Signed by the CA.
  EXPECT_EQ(X509_verify(x, ca.material.key.get()), 1);
  EXPECT_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_check_issued(ca.material.cert.get(), x), X509_V_OK);
}

TEST(IssueCertificate, VerifiesAgainstTheCaInProcessAndWithTheOpensslTool) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  auto issued = IssueCertificate(*ca.signer, WorkloadRequest(ParseOk(key.get())));
  ASSERT_TRUE(issued.ok());
  auto cert = Parse(*issued);

  crypto::X509StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.material.cert.get());
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr), 1);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));

  test::TempDir dir("pki");
  std::string ca_file = dir.Write("ca.pem", ca.material.cert_pem);
  std::string leaf = dir.Write("leaf.pem", issued->pem);
  auto verify = test::Run("openssl verify -x509_strict -purpose sslserver -CAfile " + ca_file + " " + leaf);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find(": OK"), std::string::npos) << verify.output;
  auto client = test::Run("openssl verify -x509_strict -purpose sslclient -CAfile " + ca_file + " " + leaf);
  EXPECT_EQ(client.exit_code, 0) << client.output;
  // A different CA does not verify it.
  Ca other = MakeCa();
  std::string other_file = dir.Write("other.pem", other.material.cert_pem);
  EXPECT_NE(test::Run("openssl verify -CAfile " + other_file + " " + leaf).exit_code, 0);
  // The text form shows the profile, including the measurement extension's OID.
  auto text = test::Run("openssl x509 -noout -text -in " + leaf);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("CA:FALSE"), std::string::npos);
  EXPECT_NE(text.output.find("TLS Web Server Authentication, TLS Web Client Authentication"), std::string::npos);
  EXPECT_NE(text.output.find("URI:spiffe://prod/app/web"), std::string::npos);
  EXPECT_NE(text.output.find(std::string(kMeasurementExtensionOid)), std::string::npos) << text.output;
}

TEST(IssueCertificate, RsaKeysGetKeyEncipherment) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kRsa2048);
  auto issued = IssueCertificate(*ca.signer, WorkloadRequest(ParseOk(key.get())));
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto cert = Parse(*issued);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()), 1);
  EXPECT_EQ(X509_verify(cert.get(), ca.material.key.get()), 1);
}

TEST(IssueCertificate, P384KeyAndP384Ca) {
  Ca ca = MakeCa(CaKeyAlgorithm::kEcP384);
  auto key = Key(crypto::KeyType::kEcP384);
  auto csr = ParseCsr(CsrPem(MakeCsr(key.get()).get()));
  ASSERT_TRUE(csr.ok());
  auto issued = IssueCertificate(*ca.signer, WorkloadRequest(*csr));
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto cert = Parse(*issued);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()), 1);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA384);
  EXPECT_EQ(X509_verify(cert.get(), ca.material.key.get()), 1);
}

TEST(IssueCertificate, ServerAndNodeClientProfiles) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  Csr csr = ParseOk(key.get());

  IssueRequest server = IssueRequest::ForCsr(csr, CertificateProfile::kServer);
  server.dns_names = {"localhost", "vouch.example"};
  server.ip_addresses = {"127.0.0.1", "::1"};
  auto s = IssueCertificate(*ca.signer, server);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto sc = Parse(*s);
  EXPECT_EQ(crypto::SubjectCommonName(sc.get()), "localhost");  // defaults to the first DNS name
  EXPECT_EQ(X509_get_extended_key_usage(sc.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(Sans(sc.get(), GEN_IPADD), (std::vector<std::string>{"7f000001", "00000000000000000000000000000001"}));
  EXPECT_FALSE(ReadMeasurementExtension(sc.get()).ok());
  EXPECT_EQ(ReadMeasurementExtension(sc.get()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(X509_check_host(sc.get(), "vouch.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(sc.get(), "127.0.0.1", 0), 1);

  IssueRequest node = IssueRequest::ForCsr(csr, CertificateProfile::kNodeClient);
  node.common_name = "node_1234";
  node.uris = {"spiffe://prod/node/node_1234"};
  auto n = IssueCertificate(*ca.signer, node);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto nc = Parse(*n);
  EXPECT_EQ(X509_get_extended_key_usage(nc.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_check_purpose(nc.get(), X509_PURPOSE_SSL_SERVER, 0), 0);
  EXPECT_EQ(X509_check_purpose(nc.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
}

TEST(IssueCertificate, ClampsValidityToTheCa) {
  Ca ca = MakeCa(CaKeyAlgorithm::kEcP256, 3h);  // CA valid from kNow-1h to kNow+2h
  auto key = Key(crypto::KeyType::kEcP256);
  IssueRequest req = WorkloadRequest(ParseOk(key.get()));
  req.not_before = kNow;
  req.validity = 24h;
  auto issued = IssueCertificate(*ca.signer, req);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(issued->not_after, kNow + 2h);
  EXPECT_EQ(crypto::NotAfter(Parse(*issued).get()), kNow + 2h);

  req.not_before = kNow + 3h;  // after the CA expired
  auto late = IssueCertificate(*ca.signer, req);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().reason(), "ca_expired");
}

TEST(IssueCertificate, UsesGeneralizedTimeFrom2050AndUtf8CommonNames) {
  Ca ca = MakeCa(CaKeyAlgorithm::kEcP256, 30 * 8766h);
  auto key = Key(crypto::KeyType::kEcP256);
  IssueRequest req = WorkloadRequest(ParseOk(key.get()));
  auto start = ParseRfc3339("2049-12-31T23:00:00Z");
  ASSERT_TRUE(start.ok());
  req.not_before = *start;
  req.validity = 2h;
  req.common_name = "caf\xc3\xa9";
  auto issued = IssueCertificate(*ca.signer, req);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  auto cert = Parse(*issued);
  EXPECT_EQ(ASN1_STRING_type(X509_get0_notBefore(cert.get())), V_ASN1_UTCTIME);
  EXPECT_EQ(ASN1_STRING_type(X509_get0_notAfter(cert.get())), V_ASN1_GENERALIZEDTIME);
  EXPECT_EQ(crypto::NotBefore(cert.get()), *start);
  EXPECT_EQ(crypto::NotAfter(cert.get()), *start + 2h);
  EXPECT_EQ(crypto::SubjectCommonName(cert.get()), "caf\xc3\xa9");
  req.common_name = "bad\xff";
  EXPECT_EQ(IssueCertificate(*ca.signer, req).status().reason(), "invalid_common_name");
}

TEST(IssueCertificate, RejectsBadRequests) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  Csr csr = ParseOk(key.get());
  auto reason = [&](const IssueRequest& r) { return IssueCertificate(*ca.signer, r).status().reason(); };

  IssueRequest req = WorkloadRequest(csr);
  req.measurement.reset();
  EXPECT_EQ(reason(req), "measurement_required");
  for (const std::string& bad : std::vector<std::string>{"-bad.example", "a..b", "under_score.example", "sp ace", "", std::string(64, 'a') + ".x",
                          "x.*.example", "é.example"}) {
    req = WorkloadRequest(csr);
    req.dns_names = {bad};
    EXPECT_EQ(reason(req), "invalid_dns_name") << bad;
  }
  req = WorkloadRequest(csr);
  req.dns_names = {"*.wildcard.example"};
  EXPECT_TRUE(IssueCertificate(*ca.signer, req).ok());
  req = WorkloadRequest(csr);
  req.uris = {"no scheme"};
  EXPECT_EQ(reason(req), "invalid_uri");
  req.uris = {"spiffe://prod/app/\x01"};
  EXPECT_EQ(reason(req), "invalid_uri");
  req = WorkloadRequest(csr);
  req.ip_addresses = {"300.1.1.1"};
  EXPECT_EQ(reason(req), "invalid_ip_address");
  req = WorkloadRequest(csr);
  req.common_name = std::string(65, 'c');
  EXPECT_EQ(reason(req), "invalid_common_name");
  req.common_name = "tab\there";
  EXPECT_EQ(reason(req), "invalid_common_name");
  req = WorkloadRequest(csr);
  req.spki_der = {0x30, 0x00};
  EXPECT_EQ(reason(req), "invalid_key");
  req = WorkloadRequest(csr);
  req.dns_names.clear();
  req.uris.clear();
  EXPECT_EQ(IssueCertificate(*ca.signer, req).status().code(), StatusCode::kInvalidArgument);
}

TEST(IssueCertificate, SerialsAreUniqueAndPositiveOver10000IssuancesOnFourThreads) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  const IssueRequest req = WorkloadRequest(ParseOk(key.get()));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::vector<std::vector<std::string>> serials(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto issued = IssueCertificate(*ca.signer, req);
        if (!issued.ok()) {
          ++failures[static_cast<size_t>(t)];
          continue;
        }
        serials[static_cast<size_t>(t)].push_back(issued->serial_hex);
        if (i % 500 == 0) {  // spot-check the DER of some: positive, 16 or 17 content bytes
          auto cert = crypto::CertFromDer(issued->der);
          if (!cert.ok() || X509_verify(cert->get(), ca.material.key.get()) != 1) ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> unique;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[static_cast<size_t>(t)], 0);
    for (const auto& s : serials[static_cast<size_t>(t)]) {
      ASSERT_EQ(s.size(), 32u);
      ASSERT_GE(s[0], '1');  // first byte >= 0x10: never zero, 32 hex digits
      unique.insert(s);
    }
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(RandomSerial, EncodesAs16Or17DerBytes) {
  bool saw_pad = false, saw_no_pad = false;
  for (int i = 0; i < 200; ++i) {
    auto serial = RandomSerial();
    ASSERT_GE(serial[0], 0x10);
    crypto::BnPtr bn(BN_bin2bn(serial.data(), 16, nullptr));
    crypto::Asn1IntegerPtr integer(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    unsigned char* der = nullptr;
    int len = i2d_ASN1_INTEGER(integer.get(), &der);
    OPENSSL_free(der);
    int content = len - 2;
    ASSERT_TRUE(content == 16 || content == 17) << content;
    (content == 17 ? saw_pad : saw_no_pad) = true;
    EXPECT_EQ(content == 17, (serial[0] & 0x80) != 0);
  }
  EXPECT_TRUE(saw_pad);
  EXPECT_TRUE(saw_no_pad);
}

TEST(Measurement, EncodingIsPinned) {
  Measurement m;
  m.platform = "sgx";
  m.mrenclave = {0x01, 0x02};
  m.mrsigner = {0x03};
  m.isvprodid = 1;
  m.isvsvn = 128;
  const std::vector<uint8_t> expected = {0x30, 0x13,                          // SEQUENCE
                                         0x0c, 0x03, 's', 'g', 'x',           // UTF8String
                                         0x04, 0x02, 0x01, 0x02,              // OCTET STRING
                                         0x04, 0x01, 0x03,                    // OCTET STRING
                                         0x02, 0x01, 0x01,                    // INTEGER 1
                                         0x02, 0x02, 0x00, 0x80};             // INTEGER 128
  EXPECT_EQ(EncodeMeasurement(m), expected);
  auto back = DecodeMeasurement(expected);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
  for (size_t len = 0; len < expected.size(); ++len) {
    EXPECT_FALSE(DecodeMeasurement(std::span(expected).first(len)).ok()) << len;
  }
  // The OID lives under the UUID arc.
  crypto::Asn1ObjectPtr oid(OBJ_txt2obj(std::string(kMeasurementExtensionOid).c_str(), 1));
  ASSERT_TRUE(oid);
  char text[128];
  OBJ_obj2txt(text, sizeof(text), oid.get(), 1);
  EXPECT_EQ(std::string(text), kMeasurementExtensionOid);
}

TEST(BuildCrl, ListsRevokedSerialsAndReadsBackWithOpenssl) {
  Ca ca = MakeCa();
  auto key = Key(crypto::KeyType::kEcP256);
  const IssueRequest req = WorkloadRequest(ParseOk(key.get()));
  std::vector<RevokedCertificate> revoked;
  for (auto reason : {RevocationReason::kKeyCompromise, RevocationReason::kUnspecified, RevocationReason::kSuperseded}) {
    auto issued = IssueCertificate(*ca.signer, req);
    ASSERT_TRUE(issued.ok());
    revoked.push_back({issued->serial_hex, kNow - 10min, reason});
  }
  auto crl = BuildCrl(*ca.signer, revoked, kNow, kNow + 24h, 42);
  ASSERT_TRUE(crl.ok()) << crl.status().ToString();

  auto parsed = crypto::CrlFromDerOrPem(crl->der);
  ASSERT_TRUE(parsed.ok());
  X509_CRL* c = parsed->get();
  EXPECT_EQ(X509_CRL_get_version(c), X509_CRL_VERSION_2);
  EXPECT_EQ(X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(ca.material.cert.get())), 0);
  EXPECT_EQ(crypto::Asn1TimeToTimePoint(X509_CRL_get0_lastUpdate(c)), kNow);
  EXPECT_EQ(crypto::Asn1TimeToTimePoint(X509_CRL_get0_nextUpdate(c)), kNow + 24h);
  EXPECT_EQ(X509_CRL_verify(c, ca.material.key.get()), 1);
  crypto::Asn1IntegerPtr number(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(c, NID_crl_number, nullptr, nullptr)));
  ASSERT_TRUE(number);
  EXPECT_EQ(ASN1_INTEGER_get(number.get()), 42);
  std::unique_ptr<AUTHORITY_KEYID, crypto::OsslDeleter<AUTHORITY_KEYID_free>> akid(
      static_cast<AUTHORITY_KEYID*>(X509_CRL_get_ext_d2i(c, NID_authority_key_identifier, nullptr, nullptr)));
  ASSERT_TRUE(akid && akid->keyid);
  EXPECT_EQ(Bytes(akid->keyid), Bytes(X509_get0_subject_key_id(ca.material.cert.get())));
  STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(c);
  ASSERT_EQ(sk_X509_REVOKED_num(entries), 3);
  std::set<std::string> listed;
  for (int i = 0; i < 3; ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(entries, i);
    crypto::BnPtr bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), nullptr));
    char* hex = BN_bn2hex(bn.get());
    std::string s(hex);
    OPENSSL_free(hex);
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    listed.insert(s);
    EXPECT_EQ(crypto::Asn1TimeToTimePoint(X509_REVOKED_get0_revocationDate(r)), kNow - 10min);
  }
  for (const auto& r : revoked) EXPECT_TRUE(listed.count(r.serial_hex)) << r.serial_hex;

  // An issued, revoked certificate now fails verification with the CRL.
  auto leaf = crypto::CertFromPem(IssueCertificate(*ca.signer, req)->pem);
  test::TempDir dir("pki");
  std::string ca_file = dir.Write("ca.pem", ca.material.cert_pem);
  std::string crl_file = dir.Write("crl.pem", crl->pem);
  auto text = test::Run("openssl crl -noout -text -in " + crl_file);
  ASSERT_EQ(text.exit_code, 0) << text.output;
  for (const auto& r : revoked) {
    std::string upper = r.serial_hex;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_NE(text.output.find(upper), std::string::npos) << upper << "\n" << text.output;
  }
  EXPECT_NE(text.output.find("Key Compromise"), std::string::npos);
  EXPECT_NE(text.output.find("Superseded"), std::string::npos);
  EXPECT_NE(text.output.find("X509v3 CRL Number"), std::string::npos);
  auto der_file = dir.Write("crl.der", std::string(crl->der.begin(), crl->der.end()));
  EXPECT_EQ(test::Run("openssl crl -inform DER -noout -in " + der_file + " -CAfile " + ca_file).exit_code, 0);

  // `openssl verify -crl_check` rejects a revoked certificate and accepts a good one.
  auto bad_issued = IssueCertificate(*ca.signer, req);
  ASSERT_TRUE(bad_issued.ok());
  revoked.push_back({bad_issued->serial_hex, kNow, RevocationReason::kKeyCompromise});
  auto crl2 = BuildCrl(*ca.signer, revoked, FromUnixSeconds(ToUnixSeconds(SystemClock::Get().Now()) - 60),
                       SystemClock::Get().Now() + 24h, 43);
  ASSERT_TRUE(crl2.ok());
  std::string crl2_file = dir.Write("crl2.pem", crl2->pem);
  std::string revoked_leaf = dir.Write("revoked.pem", bad_issued->pem);
  std::string good_leaf = dir.Write("good.pem", IssueCertificate(*ca.signer, req)->pem);
  auto rv = test::Run("openssl verify -crl_check -CAfile " + ca_file + " -CRLfile " + crl2_file + " " + revoked_leaf);
  EXPECT_NE(rv.exit_code, 0) << rv.output;
  EXPECT_NE(rv.output.find("revoked"), std::string::npos) << rv.output;
  auto gv = test::Run("openssl verify -crl_check -CAfile " + ca_file + " -CRLfile " + crl2_file + " " + good_leaf);
  EXPECT_EQ(gv.exit_code, 0) << gv.output;
}

TEST(BuildCrl, EmptyCrlAndBadInput) {
  Ca ca = MakeCa();
  auto empty = BuildCrl(*ca.signer, {}, kNow, kNow + 1h, 1);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  auto parsed = crypto::CrlFromDerOrPem(empty->der);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(X509_CRL_get_REVOKED(parsed->get()), nullptr);  // no revokedCertificates field
  EXPECT_EQ(X509_CRL_verify(parsed->get(), ca.material.key.get()), 1);
  std::vector<RevokedCertificate> bad = {{"xyz", kNow, RevocationReason::kUnspecified}};
  EXPECT_EQ(BuildCrl(*ca.signer, bad, kNow, kNow + 1h, 2).status().reason(), "invalid_serial");
  EXPECT_FALSE(BuildCrl(*ca.signer, {}, kNow, kNow, 2).ok());
}

TEST(CreateServiceCertificates, ChainVerifiesForTlsServerOnLocalhost) {
  auto svc = CreateServiceCertificates();
  ASSERT_TRUE(svc.ok()) << svc.status().ToString();
  auto ca = crypto::CertFromPem(svc->ca_cert_pem);
  auto server = crypto::CertFromPem(svc->server_cert_pem);
  ASSERT_TRUE(ca.ok() && server.ok());
  EXPECT_EQ(crypto::SubjectCommonName(ca->get()), "vouch service CA");
  EXPECT_EQ(X509_check_host(server->get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server->get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(server->get(), "::1", 0), 1);
  auto key = crypto::PrivateKeyFromPem(svc->server_key_pem.view());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(X509_check_private_key(server->get(), key->get()), 1);
  auto chain = crypto::CertsFromPem(svc->server_chain_pem);
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(chain->size(), 2u);
  test::TempDir dir("pki");
  auto v = test::Run("openssl verify -x509_strict -purpose sslserver -CAfile " + dir.Write("ca.pem", svc->ca_cert_pem) +
                        " " + dir.Write("server.pem", svc->server_cert_pem));
  EXPECT_EQ(v.exit_code, 0) << v.output;
}

}  // namespace
}  // namespace vouch::pki
