// Mutation tests of the DCAP verifier: every signature, every chain link and every field a check
// reads is broken one at a time, and the verdict must be "not genuine" with the right code (or,
// for TCB-relevant fields re-signed by the sim's keys, the right status). Real vectors cover what
// can be reached without Intel's keys; the sim (whose keys we hold) covers the rest.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "attest/sim_pki.h"
#include "attest/sim_vendor.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/dcap_collateral.h"
#include "evidence/dcap_quote.h"
#include "testing/temp_dir.h"

namespace vouch::attest {
namespace {

namespace fs = std::filesystem;

std::string Shared(const std::string& rel) { return std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel; }

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
std::string ReadText(const std::string& path) {
  auto b = ReadBytes(path);
  return {b.begin(), b.end()};
}

std::string Code(const Verdict& v) { return v.error.has_value() ? v.error->reason() : std::string("genuine"); }

Verdict VerifyWith(std::span<const uint8_t> quote, const CollateralFiles& files, TimePoint at, DcapTrustOptions trust) {
  auto c = DcapCollateral::Create(files);
  if (!c.ok()) {
    Verdict v;
    v.error = Status(StatusCode::kInvalidArgument, c.status().message(), "malformed_collateral");
    return v;
  }
  auto verifier = DcapVerifier::Create(*c, trust);
  EXPECT_TRUE(verifier.ok());
  return (*verifier)->Verify(quote, at);
}

void PutU16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

// SGX v3 offsets (ATTESTATION-FORMATS.md §1.3).
constexpr size_t kSig = 436;
constexpr size_t kAttKey = kSig + 64;
constexpr size_t kQeReport = kSig + 128;
constexpr size_t kQeSig = kSig + 512;
constexpr size_t kAuthSize = kSig + 576;

// A sim vendor whose keys we hold, to forge precisely mutated evidence and collateral.
class Forge {
 public:
  Forge() {
    dir_ = tmp_.File("sim");
    SimVendorOptions o;
    o.now = now_ - std::chrono::hours(1);
    auto v = SimVendor::Create(dir_, o);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    vendor_ = std::move(*v);
    auto secrets = nlohmann::json::parse(ReadText(dir_ + "/" + kSimSecretsFile));
    root_key_ = Key(secrets, "root_key");
    ca_key_ = Key(secrets, "pck_ca_key");
    tcb_key_ = Key(secrets, "tcb_signing_key");
    pck_key_ = Key(secrets, "pck_key");
    att_key_ = Key(secrets, "attestation_key");
    auto files = ReadCollateralDir(dir_);
    EXPECT_TRUE(files.ok());
    files_ = *files;
    auto chain = crypto::CertsFromPem(*files_.pck_cert_pem + *files_.pck_sign_chain_pem);
    EXPECT_TRUE(chain.ok());
    pck_ = std::move((*chain)[0]);
    ca_ = std::move((*chain)[1]);
    root_ = std::move((*chain)[2]);
    auto tcb = crypto::CertsFromPem(*files_.tcb_sign_chain_pem);
    EXPECT_TRUE(tcb.ok());
    tcb_ = std::move((*tcb)[0]);
    evidence::SgxReportBody body;
    body.mr_enclave.fill(0x11);
    body.isv_prod_id = 1;
    const uint8_t rd[] = {1, 2, 3};
    auto q = vendor_->platform().Quote(body, rd);
    EXPECT_TRUE(q.ok());
    quote_ = *q;
  }

  Verdict Verify(std::span<const uint8_t> quote, const CollateralFiles& files) const {
    DcapTrustOptions trust;
    trust.allow_sim = true;
    return VerifyWith(quote, files, now_, trust);
  }
  Verdict Verify(std::span<const uint8_t> quote) const { return Verify(quote, files_); }

  void ResignQuote(std::vector<uint8_t>& q) const { Resign(q, 0, 432, kSig, att_key_.get()); }
  void ResignQe(std::vector<uint8_t>& q) const { Resign(q, kQeReport, 384, kQeSig, pck_key_.get()); }

  // Replaces the type-5 chain of a sim quote.
  std::vector<uint8_t> WithChain(const std::vector<uint8_t>& q, const std::string& pem) const {
    uint16_t auth = LoadU16(q, kAuthSize);
    size_t cert_size_off = kAuthSize + 2 + auth + 2;
    std::vector<uint8_t> out(q.begin(), q.begin() + static_cast<long>(cert_size_off + 4));
    PutU32(out, cert_size_off, static_cast<uint32_t>(pem.size()));
    out.insert(out.end(), pem.begin(), pem.end());
    PutU32(out, 432, static_cast<uint32_t>(out.size() - kSig));
    return out;
  }

  std::string Pem(X509* c) const { return *crypto::CertToPem(c); }

  crypto::X509Ptr Cert(const std::string& cn, EVP_PKEY* subject, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                       std::vector<uint8_t> ext = {}) const {
    sim::CertSpec s{cn, subject, issuer, issuer_key, 777, now_ - std::chrono::hours(2), now_ + std::chrono::hours(24 * 30),
                    ca, ca ? 0 : -1, std::move(ext), {}, false, {}, true};
    auto c = sim::MakeCert(s);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
  std::string Crl(X509* issuer, EVP_PKEY* key, const std::vector<X509*>& revoked) const {
    auto der = sim::MakeCrl(issuer, key, now_ - std::chrono::hours(1), now_ + std::chrono::hours(24), revoked);
    EXPECT_TRUE(der.ok());
    return ToString(*der);
  }
  std::vector<uint8_t> PckExtension() const {
    const auto& p = vendor_->platform();
    std::array<uint8_t, 16> ppid{};
    std::array<uint8_t, 2> pce{};
    return sim::SgxExtensionDer(p.comp_svns(), p.pcesvn(), p.comp_svns(), ppid, pce, p.fmspc());
  }

  // Re-signs a collateral document after `edit` changed its body text.
  std::string Resigned(const std::string& doc, const char* key, const std::function<void(nlohmann::ordered_json&)>& edit) const {
    auto raw = evidence::FindTopLevelJsonMember(doc, key);
    EXPECT_TRUE(raw.has_value());
    auto body = nlohmann::ordered_json::parse(*raw);
    edit(body);
    auto signed_doc = sim::SignedJson(key, body.dump(), tcb_key_.get());
    EXPECT_TRUE(signed_doc.ok());
    return *signed_doc;
  }

  TimePoint now_ = std::chrono::system_clock::now();
  test::TempDir tmp_{"forge"};
  std::string dir_;
  std::unique_ptr<SimVendor> vendor_;
  crypto::EvpPkeyPtr root_key_, ca_key_, tcb_key_, pck_key_, att_key_;
  crypto::X509Ptr root_, ca_, tcb_, pck_;
  CollateralFiles files_;
  std::vector<uint8_t> quote_;

 private:
  static crypto::EvpPkeyPtr Key(const nlohmann::json& j, const char* k) {
    auto key = crypto::PrivateKeyFromPem(j[k].get<std::string>());
    EXPECT_TRUE(key.ok());
    return std::move(*key);
  }
  static void Resign(std::vector<uint8_t>& q, size_t off, size_t len, size_t sig_off, EVP_PKEY* key) {
    auto der = crypto::Sign(key, std::span<const uint8_t>(q).subspan(off, len));
    ASSERT_TRUE(der.ok());
    auto raw = crypto::EcdsaDerToRaw(*der, 32);
    ASSERT_TRUE(raw.ok());
    std::copy(raw->begin(), raw->end(), q.begin() + static_cast<long>(sig_off));
  }
};

TEST(DcapMutation, SimBaselineIsGenuine) {
  Forge f;
  Verdict v = f.Verify(f.quote_);
  EXPECT_TRUE(v.genuine) << Code(v);
  EXPECT_EQ(v.tcb_status, "UpToDate");
}

TEST(DcapMutation, EverySignatureFlipIsCaught) {
  Forge f;
  auto q = f.quote_;
  q[kSig + 10] ^= 1;
  EXPECT_EQ(Code(f.Verify(q)), "invalid_quote_signature");
  q = f.quote_;
  q[kSig + 40] ^= 1;  // s
  EXPECT_EQ(Code(f.Verify(q)), "invalid_quote_signature");
  q = f.quote_;
  q[kQeSig + 3] ^= 1;
  EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_signature");
  q = f.quote_;
  q[kQeSig + 60] ^= 1;
  EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_signature");

  auto flip_sig = [](std::string doc) {
    size_t pos = doc.find("\"signature\":\"") + 14;
    doc[pos] = doc[pos] == '0' ? '1' : '0';
    return doc;
  };
  CollateralFiles c = f.files_;
  c.tcb_info_json = flip_sig(*c.tcb_info_json);
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_collateral_signature");
  c = f.files_;
  c.qe_identity_json = flip_sig(*c.qe_identity_json);
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_collateral_signature");
  // A body edit without re-signing.
  c = f.files_;
  std::string& t = *c.tcb_info_json;
  t.replace(t.find("\"tcbEvaluationDataNumber\":1"), 27, "\"tcbEvaluationDataNumber\":2");
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_collateral_signature");
  // CRLs signed by the wrong key.
  c = f.files_;
  c.pck_crl = f.Crl(f.ca_.get(), f.root_key_.get(), {});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_collateral_signature");
  c = f.files_;
  c.root_ca_crl = f.Crl(f.root_.get(), f.ca_key_.get(), {});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_collateral_signature");
}

TEST(DcapMutation, EveryChainLinkIsChecked) {
  Forge f;
  auto other_key = crypto::GenerateP256();
  ASSERT_TRUE(other_key.ok());
  const std::string root_pem = f.Pem(f.root_.get());
  const std::string ca_pem = f.Pem(f.ca_.get());
  const std::string leaf_pem = f.Pem(f.pck_.get());
  // Leaf signed by a key other than the CA's (same issuer name).
  auto bad_leaf = f.Cert("vouch INSECURE SIM SGX PCK Certificate", X509_get0_pubkey(f.pck_.get()), f.ca_.get(),
                         other_key->get(), false, f.PckExtension());
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, f.Pem(bad_leaf.get()) + ca_pem + root_pem))),
            "invalid_certificate_signature");
  // CA signed by a key other than the root's.
  auto bad_ca = f.Cert("vouch INSECURE SIM SGX PCK Platform CA", X509_get0_pubkey(f.ca_.get()), f.root_.get(),
                       other_key->get(), true);
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, leaf_pem + f.Pem(bad_ca.get()) + root_pem))),
            "invalid_certificate_signature");
  // A whole chain under another root (same name, other key): untrusted.
  auto other_root = f.Cert(kSimRootCommonName, other_key->get(), nullptr, other_key->get(), true);
  auto ca2 = f.Cert("vouch INSECURE SIM SGX PCK Platform CA", X509_get0_pubkey(f.ca_.get()), other_root.get(),
                    other_key->get(), true);
  auto leaf2 = f.Cert("vouch INSECURE SIM SGX PCK Certificate", X509_get0_pubkey(f.pck_.get()), ca2.get(),
                      f.ca_key_.get(), false, f.PckExtension());
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, f.Pem(leaf2.get()) + f.Pem(ca2.get()) + f.Pem(other_root.get())))),
            "chain_untrusted");
  // Wrong length, wrong leaf name, no SGX extension, garbage.
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, leaf_pem + root_pem))), "malformed_pck_chain");
  auto misnamed = f.Cert("vouch INSECURE SIM leaf", X509_get0_pubkey(f.pck_.get()), f.ca_.get(), f.ca_key_.get(),
                         false, f.PckExtension());
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, f.Pem(misnamed.get()) + ca_pem + root_pem))), "malformed_pck_chain");
  auto no_ext = f.Cert("vouch INSECURE SIM SGX PCK Certificate", X509_get0_pubkey(f.pck_.get()), f.ca_.get(),
                       f.ca_key_.get(), false);
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, f.Pem(no_ext.get()) + ca_pem + root_pem))), "malformed_pck_extension");
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, "not a certificate"))), "malformed_pck_chain");
  // A PCK with another key: the QE report signature no longer verifies.
  auto stranger = f.Cert("vouch INSECURE SIM SGX PCK Certificate", other_key->get(), f.ca_.get(), f.ca_key_.get(),
                         false, f.PckExtension());
  EXPECT_EQ(Code(f.Verify(f.WithChain(f.quote_, f.Pem(stranger.get()) + ca_pem + root_pem))),
            "invalid_qe_report_signature");

  // TCB Signing chain.
  CollateralFiles c = f.files_;
  auto bad_tcb = f.Cert("vouch INSECURE SIM SGX TCB Signing", X509_get0_pubkey(f.tcb_.get()), f.root_.get(),
                        other_key->get(), false);
  c.tcb_sign_chain_pem = f.Pem(bad_tcb.get()) + root_pem;
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "invalid_certificate_signature");
  c.tcb_sign_chain_pem = f.Pem(f.tcb_.get()) + f.Pem(other_root.get());
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "chain_untrusted");
  c.tcb_sign_chain_pem = f.Pem(f.tcb_.get());
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "chain_untrusted");

  // CRLs: issuer mismatch, CA revoked by the root, TCB Signing revoked by the root.
  c = f.files_;
  c.pck_crl = f.Crl(f.root_.get(), f.root_key_.get(), {});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "crl_mismatch");
  c = f.files_;
  c.root_ca_crl = f.Crl(f.root_.get(), f.root_key_.get(), {f.ca_.get()});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "pck_revoked");
  c = f.files_;
  c.root_ca_crl = f.Crl(f.root_.get(), f.root_key_.get(), {f.tcb_.get()});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "cert_revoked");
  c = f.files_;
  c.pck_crl = f.Crl(f.ca_.get(), f.ca_key_.get(), {f.pck_.get()});
  EXPECT_EQ(Code(f.Verify(f.quote_, c)), "pck_revoked");
}

TEST(DcapMutation, EveryQuoteFieldACheckReads) {
  Forge f;
  auto q = f.quote_;
  PutU16(q, 0, 9);
  EXPECT_EQ(Code(f.Verify(q)), "malformed_quote");
  q = f.quote_;
  q[12] ^= 1;  // QE vendor id
  EXPECT_EQ(Code(f.Verify(q)), "malformed_quote");
  // Report body fields are covered by the quote signature...
  for (size_t off : {48 + 64, 48 + 128, 48 + 256, 48 + 258, 48 + 48, 48 + 320, 8, 10, 28}) {
    q = f.quote_;
    q[off] ^= 1;
    EXPECT_EQ(Code(f.Verify(q)), "invalid_quote_signature") << off;
  }
  // ... and a re-signed body is accepted and reported.
  q = f.quote_;
  q[48 + 64] = 0x99;
  f.ResignQuote(q);
  Verdict v = f.Verify(q);
  ASSERT_TRUE(v.genuine) << Code(v);
  EXPECT_EQ(v.measurements["mrenclave"].get<std::string>().substr(0, 4), "9911");
  // The attestation key and the auth data are bound by the QE report data.
  q = f.quote_;
  q[kAttKey + 5] ^= 1;
  EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_data");
  q = f.quote_;
  q[kAuthSize + 2 + 4] ^= 1;
  EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_data");
  // QE report fields are covered by the QE report signature...
  for (size_t off : {16, 48, 128, 256, 258, 320, 360}) {
    q = f.quote_;
    q[kQeReport + off] ^= 1;
    EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_signature") << off;
  }
  // ... and once re-signed by the PCK key, each reaches its own check.
  q = f.quote_;
  q[kQeReport + 360] ^= 1;  // report data bytes 32..63 must be zero
  f.ResignQe(q);
  EXPECT_EQ(Code(f.Verify(q)), "invalid_qe_report_data");
  for (size_t off : {size_t{128}, size_t{256}, size_t{16}, size_t{48}}) {  // mrsigner, isvprodid, miscselect, attributes
    q = f.quote_;
    q[kQeReport + off] ^= 1;
    f.ResignQe(q);
    EXPECT_EQ(Code(f.Verify(q)), "qe_identity_mismatch") << off;
  }
  // A QE with an older ISVSVN lowers the TCB status (QVL convergence).
  q = f.quote_;
  PutU16(q, kQeReport + 258, 6);
  f.ResignQe(q);
  v = f.Verify(q);
  ASSERT_TRUE(v.genuine) << Code(v);
  EXPECT_EQ(v.tcb_status, "OutOfDate");
  EXPECT_EQ(v.details["qe_tcb_status"], "OutOfDate");
  PutU16(q, kQeReport + 258, 5);
  f.ResignQe(q);
  v = f.Verify(q);
  ASSERT_TRUE(v.genuine) << Code(v);
  EXPECT_EQ(v.tcb_status, "TcbLevelNotSupported");
  EXPECT_EQ(v.ExitCode(), 1);
}

TEST(DcapMutation, EveryCollateralFieldACheckReads) {
  Forge f;
  struct Case {
    const char* doc;
    std::function<void(nlohmann::ordered_json&)> edit;
    const char* code;
  };
  const Case cases[] = {
      {"tcbInfo", [](auto& b) { b["fmspc"] = "00906ed50001"; }, "tcb_info_mismatch"},
      {"tcbInfo", [](auto& b) { b["pceId"] = "0100"; }, "tcb_info_mismatch"},
      {"tcbInfo", [](auto& b) { b["nextUpdate"] = "2000-01-01T00:00:00Z"; }, "collateral_expired"},
      {"tcbInfo", [](auto& b) { b["issueDate"] = "2199-01-01T00:00:00Z"; }, "collateral_expired"},
      {"enclaveIdentity", [](auto& b) { b["id"] = "TD_QE"; }, "qe_identity_mismatch"},
      {"enclaveIdentity", [](auto& b) { b["mrsigner"] = std::string(64, 'A'); }, "qe_identity_mismatch"},
      {"enclaveIdentity", [](auto& b) { b["isvprodid"] = 2; }, "qe_identity_mismatch"},
      {"enclaveIdentity", [](auto& b) { b["miscselect"] = "00000001"; }, "qe_identity_mismatch"},
      {"enclaveIdentity", [](auto& b) { b["attributes"] = "13000000000000000000000000000000"; }, "qe_identity_mismatch"},
      {"enclaveIdentity", [](auto& b) { b["nextUpdate"] = "2000-01-01T00:00:00Z"; }, "collateral_expired"},
  };
  for (const auto& c : cases) {
    CollateralFiles files = f.files_;
    std::string& doc = std::string(c.doc) == "tcbInfo" ? *files.tcb_info_json : *files.qe_identity_json;
    doc = f.Resigned(doc, c.doc, c.edit);
    Verdict v = f.Verify(f.quote_, files);
    EXPECT_FALSE(v.genuine) << c.doc << " " << c.code;
    EXPECT_EQ(Code(v), c.code) << c.doc << ": " << (v.error ? v.error->message() : "");
  }
  // TCB levels: remove the level the platform matches -> the next one; remove all that match -> not supported.
  CollateralFiles files = f.files_;
  *files.tcb_info_json = f.Resigned(*files.tcb_info_json, "tcbInfo", [](auto& b) { b["tcbLevels"].erase(0); });
  Verdict v = f.Verify(f.quote_, files);
  ASSERT_TRUE(v.genuine);
  EXPECT_EQ(v.tcb_status, "SWHardeningNeeded");
  EXPECT_EQ(v.advisory_ids, std::vector<std::string>{kSimAdvisoryId});
  files = f.files_;
  *files.tcb_info_json = f.Resigned(*files.tcb_info_json, "tcbInfo", [](auto& b) {
    for (auto& l : b["tcbLevels"]) l["tcb"]["pcesvn"] = 14;
  });
  v = f.Verify(f.quote_, files);
  ASSERT_TRUE(v.genuine);
  EXPECT_EQ(v.tcb_status, "TcbLevelNotSupported");
  EXPECT_TRUE(v.advisory_ids.empty());
  // Time outside the chain's validity.
  DcapTrustOptions trust;
  trust.allow_sim = true;
  EXPECT_EQ(Code(VerifyWith(f.quote_, f.files_, f.now_ - std::chrono::hours(3), trust)), "collateral_expired");
  EXPECT_EQ(Code(VerifyWith(f.quote_, f.files_, f.now_ + std::chrono::hours(24 * 366), trust)), "crl_expired");
}

struct RealCase {
  const char* folder;
  const char* at;
  size_t sig;  // start of the signature data
  size_t qe_report;
  size_t qe_sig;
  size_t auth;
};

const RealCase kReal[] = {
    {"sgx-dcap/dcap-rs-icx-2025-02", "2025-02-13T04:00:32Z", 436, 436 + 128, 436 + 512, 436 + 578},
    {"tdx/dcap-rs-spr-v4-2025-02", "2025-02-13T04:00:32Z", 636, 636 + 134, 636 + 134 + 384, 636 + 134 + 450},
};

TEST(DcapMutation, RealQuotesCatchEverySignatureAndBinding) {
  for (const auto& c : kReal) {
    SCOPED_TRACE(c.folder);
    auto files = ReadCollateralDir(Shared(c.folder));
    ASSERT_TRUE(files.ok());
    auto quote = ReadBytes(Shared(c.folder) + "/quote.dat");
    auto at = *ParseRfc3339(c.at);
    auto collateral = DcapCollateral::Create(*files);
    ASSERT_TRUE(collateral.ok());
    auto verifier = DcapVerifier::Create(*collateral);
    ASSERT_TRUE(verifier.ok());
    auto verify = [&](const std::vector<uint8_t>& q) { return Code((*verifier)->Verify(q, at)); };
    ASSERT_EQ(verify(quote), "genuine");
    auto q = quote;
    q[c.sig + 1] ^= 1;
    EXPECT_EQ(verify(q), "invalid_quote_signature");
    q = quote;
    q[100] ^= 1;  // inside the body
    EXPECT_EQ(verify(q), "invalid_quote_signature");
    q = quote;
    q[c.qe_sig + 1] ^= 1;
    EXPECT_EQ(verify(q), "invalid_qe_report_signature");
    q = quote;
    q[c.qe_report + 130] ^= 1;
    EXPECT_EQ(verify(q), "invalid_qe_report_signature");
    q = quote;
    q[c.sig + 64 + 3] ^= 1;  // attestation key
    EXPECT_EQ(verify(q), "invalid_qe_report_data");
    q = quote;
    q[c.auth] ^= 1;
    EXPECT_EQ(verify(q), "invalid_qe_report_data");
    // Every 13th byte of the PCK chain PEM: never genuine, never a crash.
    auto parsed = evidence::ParseDcapQuote(quote);
    ASSERT_TRUE(parsed.ok());
    std::string pem = ToString(parsed->cert_data.data);
    size_t pem_off = static_cast<size_t>(std::search(quote.begin(), quote.end(), pem.begin(), pem.end()) - quote.begin());
    for (size_t i = 0; i < pem.size(); i += 13) {
      q = quote;
      q[pem_off + i] ^= 0x01;
      EXPECT_NE(verify(q), "genuine") << i;
    }
  }
}

TEST(DcapMutation, RealTdxModuleFieldsAreChecked) {
  const std::string dir = Shared("tdx/dcap-rs-spr-v4-2025-02");
  auto files = ReadCollateralDir(dir);
  ASSERT_TRUE(files.ok());
  auto quote = ReadBytes(dir + "/quote.dat");
  auto at = *ParseRfc3339("2025-02-13T04:00:32Z");
  auto q = quote;
  q[48 + 64 + 5] ^= 1;  // MRSIGNERSEAM
  EXPECT_EQ(Code(VerifyWith(q, *files, at, {})), "tdx_module_mismatch");
  q = quote;
  q[48 + 112] = 1;  // SEAMATTRIBUTES
  EXPECT_EQ(Code(VerifyWith(q, *files, at, {})), "tdx_module_mismatch");
  q = quote;
  q[48 + 1] = 2;  // tee_tcb_svn[1]: TDX_02 is not in the TCB Info
  EXPECT_EQ(Code(VerifyWith(q, *files, at, {})), "tdx_module_mismatch");
  q = quote;
  q[48 + 1] = 3;  // TDX_03 exists: passes the module check, then the quote signature fails
  EXPECT_EQ(Code(VerifyWith(q, *files, at, {})), "invalid_quote_signature");
}

TEST(DcapMutation, RealCollateralOfTheWrongKindIsRejected) {
  // Same day, same Intel signing key: valid signatures, wrong documents.
  auto sgx = ReadCollateralDir(Shared("sgx-dcap/dcap-rs-icx-2025-02"));
  auto tdx = ReadCollateralDir(Shared("tdx/dcap-rs-spr-v4-2025-02"));
  ASSERT_TRUE(sgx.ok() && tdx.ok());
  auto at = *ParseRfc3339("2025-02-13T04:00:32Z");
  auto sgx_quote = ReadBytes(Shared("sgx-dcap/dcap-rs-icx-2025-02/quote.dat"));
  auto tdx_quote = ReadBytes(Shared("tdx/dcap-rs-spr-v4-2025-02/quote.dat"));
  CollateralFiles c = *sgx;
  c.qe_identity_json = tdx->qe_identity_json;
  EXPECT_EQ(Code(VerifyWith(sgx_quote, c, at, {})), "qe_identity_mismatch");
  c = *sgx;
  c.tcb_info_json = tdx->tcb_info_json;
  EXPECT_EQ(Code(VerifyWith(sgx_quote, c, at, {})), "tcb_info_mismatch");
  c = *tdx;
  c.tcb_info_json = sgx->tcb_info_json;
  EXPECT_EQ(Code(VerifyWith(tdx_quote, c, at, {})), "tcb_info_mismatch");
  c = *tdx;
  c.root_ca_crl = tdx->pck_crl;  // the PCK CRL is not signed by the root
  EXPECT_EQ(Code(VerifyWith(tdx_quote, c, at, {})), "invalid_collateral_signature");
}

TEST(DcapMutation, TruncationAtEveryLengthIsMalformed) {
  for (const auto& c : kReal) {
    auto files = ReadCollateralDir(Shared(c.folder));
    ASSERT_TRUE(files.ok());
    auto collateral = DcapCollateral::Create(*files);
    ASSERT_TRUE(collateral.ok());
    auto verifier = DcapVerifier::Create(*collateral);
    ASSERT_TRUE(verifier.ok());
    auto quote = ReadBytes(Shared(c.folder) + "/quote.dat");
    auto parsed = evidence::ParseDcapQuote(quote);
    ASSERT_TRUE(parsed.ok());
    auto at = *ParseRfc3339(c.at);
    const size_t end = quote.size() - parsed->trailing_bytes;
    for (size_t n = 0; n < end; ++n) {
      Verdict v = (*verifier)->Verify(std::span<const uint8_t>(quote).first(n), at);
      ASSERT_FALSE(v.genuine) << n;
      ASSERT_EQ(Code(v), "malformed_quote") << n;
      ASSERT_EQ(v.ExitCode(), 2);
    }
  }
}

}  // namespace
}  // namespace vouch::attest
