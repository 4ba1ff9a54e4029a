#include "attest/sim_vendor.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "attest/dcap_collateral.h"
#include "attest/pck_extension.h"
#include "attest/sim_pki.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"

namespace vouch::attest {
namespace {

using crypto::EvpPkeyPtr;
using crypto::X509Ptr;
using ojson = nlohmann::ordered_json;

constexpr char kReportKeyLabel[] = "vouch-sim-report-key-v1";
constexpr uint16_t kSimPcesvn = 13;
constexpr std::array<uint8_t, 6> kSimFmspc = {0x00, 0x90, 0x6E, 0xD5, 0x00, 0x00};  // sim-only value
constexpr std::array<uint8_t, 6> kSimTdxFmspc = {0x00, 0x80, 0x6F, 0xD5, 0x00, 0x00};  // sim-only value (TDX)
constexpr std::array<uint8_t, 2> kSimPceId = {0x00, 0x00};

using sim::CertSpec;
using sim::MakeCert;
using sim::MakeCrl;
using sim::SgxExtensionDer;

// The TDX TCB components of every sim TDX level: [0] module SVN, [1] module major (both skipped
// when matching a quote with a major version, QVL's rule), [2] late microcode.
constexpr std::array<uint8_t, 16> kSimTdxTcbComponents = {kSimTdxModuleSvn, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
// The TD report's TEE_TCB_SVN.
constexpr std::array<uint8_t, 16> kSimTeeTcbSvn = {kSimTdxModuleSvn, kSimTdxModuleMajor, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

ojson SgxLevel(uint8_t comp, const char* date, const char* status, std::vector<std::string> advisories, bool tdx = false) {
  ojson comps = ojson::array();
  std::array<uint8_t, 16> svns{comp, comp, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (uint8_t s : svns) comps.push_back({{"svn", s}});
  ojson tcb = {{"sgxtcbcomponents", comps}, {"pcesvn", kSimPcesvn}};
  if (tdx) {
    ojson t = ojson::array();
    for (uint8_t s : kSimTdxTcbComponents) t.push_back({{"svn", s}});
    tcb["tdxtcbcomponents"] = t;
  }
  ojson level = {{"tcb", tcb}, {"tcbDate", date}, {"tcbStatus", status}};
  if (!advisories.empty()) level["advisoryIDs"] = advisories;
  return level;
}

uint8_t CompSvnFor(SimTcb tcb) {
  switch (tcb) {
    case SimTcb::kUpToDate: return 12;
    case SimTcb::kSwHardeningNeeded: return 11;
    case SimTcb::kOutOfDate: return 10;
  }
  return 10;
}

Status WriteFile(const std::string& path, std::string_view data, bool secret) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) return Internal("cannot write " + path, "io_error");
    if (secret) {
      std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::replace, ec);
      if (ec) return Internal("cannot restrict permissions of " + path, "io_error");
    }
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!f) return Internal("cannot write " + path, "io_error");
  }
  return Status::Ok();
}

Result<std::string> Pem(X509* c) { return crypto::CertToPem(c); }

std::array<uint8_t, 32> SimQeMrSigner() { return crypto::Sha256(std::string_view("vouch INSECURE SIM quoting enclave signer")); }
std::array<uint8_t, 32> SimQeMrEnclave() { return crypto::Sha256(std::string_view("vouch INSECURE SIM quoting enclave")); }
std::array<uint8_t, 32> SimTdQeMrSigner() { return crypto::Sha256(std::string_view("vouch INSECURE SIM TD quoting enclave signer")); }
std::array<uint8_t, 32> SimTdQeMrEnclave() { return crypto::Sha256(std::string_view("vouch INSECURE SIM TD quoting enclave")); }
std::array<uint8_t, 48> SimMrSeam() {
  auto d = crypto::Sha384(AsBytes("vouch INSECURE SIM TDX module"));
  std::array<uint8_t, 48> out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

Status WrongPlatform(const std::string& what, SimTee have) {
  return Status(StatusCode::kFailedPrecondition,
                what + " needs another sim platform; this folder is " + std::string(SimTeeName(have)),
                std::string(kSimWrongPlatform));
}

Result<std::array<uint8_t, 64>> RawPoint(EVP_PKEY* key) {
  VOUCH_ASSIGN_OR_RETURN(auto enc, crypto::EcPublicPointEncoded(key));
  if (enc.size() != 65 || enc[0] != 0x04) return Internal("unexpected EC point encoding");
  std::array<uint8_t, 64> out{};
  std::copy(enc.begin() + 1, enc.end(), out.begin());
  return out;
}

Result<std::vector<uint8_t>> Hex(const nlohmann::json& j, const char* key, size_t n) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return InvalidArgument(std::string("sim secrets: missing ") + key, "malformed_sim");
  VOUCH_ASSIGN_OR_RETURN(auto b, HexDecode(it->get<std::string>()));
  if (b.size() != n) return InvalidArgument(std::string("sim secrets: bad ") + key, "malformed_sim");
  return b;
}

Result<EvpPkeyPtr> Key(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return InvalidArgument(std::string("sim secrets: missing ") + key, "malformed_sim");
  return crypto::PrivateKeyFromPem(it->get<std::string>());
}

}  // namespace

bool IsSimRootCa(X509* cert) {
  if (cert == nullptr) return false;
  if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0) return false;
  return crypto::SubjectCommonName(cert).rfind(kSimNamePrefix, 0) == 0;
}

std::string_view SimTeeName(SimTee tee) {
  switch (tee) {
    case SimTee::kSgx: return "sgx";
    case SimTee::kTdx: return "tdx";
    case SimTee::kSevSnp: return "sev-snp";
  }
  return "sgx";
}

Result<SimTee> ParseSimTee(std::string_view name) {
  for (SimTee t : {SimTee::kSgx, SimTee::kTdx, SimTee::kSevSnp}) {
    if (name == SimTeeName(t)) return t;
  }
  return InvalidArgument("sim platform \"" + std::string(name) + "\", expected sgx, tdx or sev-snp", "invalid_sim_platform");
}

uint64_t SimSnpTcb::Raw() const {
  return static_cast<uint64_t>(bootloader) | (static_cast<uint64_t>(tee) << 8) | (static_cast<uint64_t>(snp) << 48) |
         (static_cast<uint64_t>(microcode) << 56);
}

SimSnpTcb SimSnpTcbFor(SimTcb tcb) {
  switch (tcb) {
    case SimTcb::kUpToDate: return {4, 0, 22, 213};
    case SimTcb::kSwHardeningNeeded: return {3, 0, 20, 209};
    case SimTcb::kOutOfDate: return {2, 0, 8, 115};
  }
  return {4, 0, 22, 213};
}

std::string_view SimTcbName(SimTcb tcb) {
  switch (tcb) {
    case SimTcb::kUpToDate: return "up-to-date";
    case SimTcb::kSwHardeningNeeded: return "sw-hardening-needed";
    case SimTcb::kOutOfDate: return "out-of-date";
  }
  return "up-to-date";
}

std::string_view SimTcbStatus(SimTcb tcb) {
  switch (tcb) {
    case SimTcb::kUpToDate: return "UpToDate";
    case SimTcb::kSwHardeningNeeded: return "SWHardeningNeeded";
    case SimTcb::kOutOfDate: return "OutOfDate";
  }
  return "UpToDate";
}

Result<SimTcb> ParseSimTcb(std::string_view name) {
  for (SimTcb t : {SimTcb::kUpToDate, SimTcb::kSwHardeningNeeded, SimTcb::kOutOfDate}) {
    if (name == SimTcbName(t)) return t;
  }
  return InvalidArgument("sim TCB \"" + std::string(name) + "\", expected up-to-date, out-of-date or sw-hardening-needed",
                         "invalid_sim_tcb");
}

SimPlatform::~SimPlatform() = default;
SimVendor::~SimVendor() = default;

Result<std::unique_ptr<SimVendor>> SimVendor::Create(const std::string& dir, const SimVendorOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Internal("cannot create " + dir + ": " + ec.message(), "io_error");
  if (std::filesystem::exists(dir + "/" + kSimSecretsFile, ec)) {
    return AlreadyExists(dir + " already holds a sim vendor", "already_exists");
  }
  const TimePoint now = options.now.value_or(std::chrono::system_clock::now() - std::chrono::hours(1));
  if (options.tee == SimTee::kSevSnp) {
    VOUCH_RETURN_IF_ERROR(CreateSnpFiles(dir, options, now));
    return Load(dir);
  }
  const bool tdx = options.tee == SimTee::kTdx;
  const std::array<uint8_t, 6>& fmspc = tdx ? kSimTdxFmspc : kSimFmspc;
  const TimePoint certs_end = now + std::chrono::hours(24 * 365 * 10);
  const TimePoint coll_end = now + options.collateral_validity;

  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr root_key, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr ca_key, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr tcb_key, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr pck_key, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr att_key, crypto::GenerateP256());

  auto platform = std::unique_ptr<SimPlatform>(new SimPlatform());
  platform->fmspc_ = fmspc;
  uint8_t c = CompSvnFor(options.tcb);
  platform->comp_svns_ = {c, c, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  platform->cpusvn_ = platform->comp_svns_;
  platform->pcesvn_ = kSimPcesvn;
  auto qe_id = crypto::RandomBytes(16);
  std::copy(qe_id.begin(), qe_id.end(), platform->qe_id_.begin());
  platform->secret_ = crypto::RandomSecret(32);
  auto ppid = crypto::RandomBytes(16);
  uint64_t serial_base = 0;
  for (uint8_t b : crypto::RandomBytes(6)) serial_base = (serial_base << 8) | b;

  CertSpec root_spec{kSimRootCommonName, root_key.get(), nullptr, root_key.get(), serial_base + 1, now, certs_end, true, 1, {}, {}, false, {}, true};
  VOUCH_ASSIGN_OR_RETURN(X509Ptr root, MakeCert(root_spec));
  CertSpec ca_spec{tdx ? "vouch INSECURE SIM TDX PCK Platform CA" : "vouch INSECURE SIM SGX PCK Platform CA", ca_key.get(), root.get(), root_key.get(), serial_base + 2,
                   now, certs_end, true, 0, {}, {}, false, {}, true};
  VOUCH_ASSIGN_OR_RETURN(X509Ptr ca, MakeCert(ca_spec));
  CertSpec tcb_spec{"vouch INSECURE SIM SGX TCB Signing", tcb_key.get(), root.get(), root_key.get(), serial_base + 3,
                    now, certs_end, false, -1, {}, {}, false, {}, true};
  VOUCH_ASSIGN_OR_RETURN(X509Ptr tcb_cert, MakeCert(tcb_spec));
  CertSpec pck_spec{"vouch INSECURE SIM SGX PCK Certificate", pck_key.get(), ca.get(), ca_key.get(), serial_base + 4,
                    now, certs_end, false, -1, SgxExtensionDer(platform->comp_svns_, platform->pcesvn_, platform->cpusvn_, ppid, kSimPceId, platform->fmspc_), {}, false, {}, true};
  VOUCH_ASSIGN_OR_RETURN(X509Ptr pck, MakeCert(pck_spec));

  VOUCH_ASSIGN_OR_RETURN(auto root_crl, MakeCrl(root.get(), root_key.get(), now, coll_end, {}));
  std::vector<X509*> revoked;
  if (options.revoked) revoked.push_back(pck.get());
  VOUCH_ASSIGN_OR_RETURN(auto pck_crl, MakeCrl(ca.get(), ca_key.get(), now, coll_end, revoked));

  // TCB Info v3 (SGX or TDX), levels newest first.
  ojson tcb_info = {{"id", tdx ? "TDX" : "SGX"},
                    {"version", 3},
                    {"issueDate", FormatRfc3339(now)},
                    {"nextUpdate", FormatRfc3339(coll_end)},
                    {"fmspc", HexEncode(fmspc)},
                    {"pceId", HexEncode(kSimPceId)},
                    {"tcbType", 0},
                    {"tcbEvaluationDataNumber", 1}};
  if (tdx) {
    // As Intel's: a zero MRSIGNER for the module (Intel signs the TDX module), attributes 0
    // under a full mask, and the identity of major version 1 with its own levels.
    const std::string zero48(96, '0');
    tcb_info["tdxModule"] = {{"mrsigner", zero48}, {"attributes", "0000000000000000"}, {"attributesMask", "FFFFFFFFFFFFFFFF"}};
    tcb_info["tdxModuleIdentities"] = ojson::array(
        {{{"id", "TDX_01"},
          {"mrsigner", zero48},
          {"attributes", "0000000000000000"},
          {"attributesMask", "FFFFFFFFFFFFFFFF"},
          {"tcbLevels",
           {{{"tcb", {{"isvsvn", kSimTdxModuleSvn}}}, {"tcbDate", "2025-01-01T00:00:00Z"}, {"tcbStatus", "UpToDate"}},
            {{"tcb", {{"isvsvn", 2}}},
             {"tcbDate", "2023-08-09T00:00:00Z"},
             {"tcbStatus", "OutOfDate"},
             {"advisoryIDs", {"INTEL-SA-01036"}}}}}}});
  }
  tcb_info["tcbLevels"] = {SgxLevel(12, "2025-01-01T00:00:00Z", "UpToDate", {}, tdx),
                           SgxLevel(11, "2024-06-01T00:00:00Z", "SWHardeningNeeded", {kSimAdvisoryId}, tdx),
                           SgxLevel(10, "2023-01-01T00:00:00Z", "OutOfDate", {kSimAdvisoryId, "INTEL-SA-00828"}, tdx)};
  VOUCH_ASSIGN_OR_RETURN(std::string tcb_info_text, sim::SignedJson("tcbInfo", tcb_info.dump(), tcb_key.get()));
  ojson qe_identity = {{"id", tdx ? "TD_QE" : "QE"},
                       {"version", 2},
                       {"issueDate", FormatRfc3339(now)},
                       {"nextUpdate", FormatRfc3339(coll_end)},
                       {"tcbEvaluationDataNumber", 1},
                       {"miscselect", "00000000"},
                       {"miscselectMask", "FFFFFFFF"},
                       {"attributes", "11000000000000000000000000000000"},
                       {"attributesMask", "FBFFFFFFFFFFFFFF0000000000000000"},
                       {"mrsigner", HexEncode(tdx ? SimTdQeMrSigner() : SimQeMrSigner())},
                       {"isvprodid", tdx ? kSimTdQeIsvProdId : kSimQeIsvProdId},
                       {"tcbLevels",
                        {{{"tcb", {{"isvsvn", tdx ? kSimTdQeIsvSvn : kSimQeIsvSvn}}},
                          {"tcbDate", "2025-01-01T00:00:00Z"},
                          {"tcbStatus", "UpToDate"}},
                         {{"tcb", {{"isvsvn", tdx ? 2 : 6}}}, {"tcbDate", "2023-01-01T00:00:00Z"}, {"tcbStatus", "OutOfDate"}}}}};
  VOUCH_ASSIGN_OR_RETURN(std::string qe_identity_text, sim::SignedJson("enclaveIdentity", qe_identity.dump(), tcb_key.get()));

  VOUCH_ASSIGN_OR_RETURN(std::string root_pem, Pem(root.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string ca_pem, Pem(ca.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string tcb_pem, Pem(tcb_cert.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string pck_pem, Pem(pck.get()));

  auto pem_key = [](EVP_PKEY* k) -> Result<std::string> {
    VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes s, crypto::PrivateKeyToPem(k));
    return std::string(s.view());
  };
  nlohmann::json secrets = {{"version", 1},
                            {"warning", "INSECURE sim TEE vendor: test keys, not Intel"},
                            {"platform", SimTeeName(options.tee)},
                            {"tcb", SimTcbName(options.tcb)},
                            {"revoked", options.revoked},
                            {"platform_secret", HexEncode(platform->secret_.span())},
                            {"qe_id", HexEncode(platform->qe_id_)}};
  for (auto [name, key] : {std::pair{"root_key", root_key.get()}, std::pair{"pck_ca_key", ca_key.get()},
                           std::pair{"tcb_signing_key", tcb_key.get()}, std::pair{"pck_key", pck_key.get()},
                           std::pair{"attestation_key", att_key.get()}}) {
    VOUCH_ASSIGN_OR_RETURN(std::string pem, pem_key(key));
    secrets[name] = pem;
  }

  const std::string d = dir + "/";
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kSimSecretsFile, secrets.dump(2), true));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kTrustedRootFile, root_pem, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kRootCaCrlFile, ToString(root_crl), false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kPckCrlFile, ToString(pck_crl), false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kTcbSignChainFile, tcb_pem + root_pem, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kTcbInfoFile, tcb_info_text, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kQeIdentityFile, qe_identity_text, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kPckCertFile, pck_pem, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + kPckSignChainFile, ca_pem + root_pem, false));
  VOUCH_RETURN_IF_ERROR(WriteFile(d + "README-INSECURE-SIM.txt",
                                  "This folder is a vouch sim TEE vendor: INSECURE test keys, NOT Intel.\n"
                                  "Platform: " + std::string(SimTeeName(options.tee)) +
                                      "\nVerify its quotes with: vouch evidence verify --evidence QUOTE --collateral " +
                                      dir + " --allow-sim\n",
                                  false));
  return Load(dir);
}

Result<int> SimTcbRecovery(const std::string& dir) {
  auto secrets_text = ReadWholeFile(dir + "/" + kSimSecretsFile, 1 << 20);
  if (secrets_text.ok()) {
    auto j = nlohmann::json::parse(*secrets_text, nullptr, false);
    if (j.is_object() && j.value("platform", std::string("sgx")) == "sev-snp") {
      return WrongPlatform("tcb-recovery (a sev-snp sim has no TCB Info)", SimTee::kSevSnp);
    }
  }
  auto info_text = ReadWholeFile(dir + "/" + kTcbInfoFile, 1 << 20);
  if (!secrets_text.ok() || !info_text.ok()) return NotFound(dir + " is not a sim vendor folder", "not_found");
  auto secrets = nlohmann::json::parse(*secrets_text, nullptr, false);
  ojson info = ojson::parse(*info_text, nullptr, false);
  if (!secrets.is_object() || !info.is_object() || !info.contains("tcbInfo") || !info["tcbInfo"].is_object() ||
      !info["tcbInfo"].contains("tcbLevels") || !info["tcbInfo"]["tcbLevels"].is_array()) {
    return InvalidArgument(dir + " holds a corrupt sim vendor", "malformed_sim");
  }
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr key, Key(secrets, "tcb_signing_key"));
  ojson body = info["tcbInfo"];
  const int number = body.value("tcbEvaluationDataNumber", 1) + 1;
  body["tcbEvaluationDataNumber"] = number;
  body["issueDate"] = FormatRfc3339(std::chrono::system_clock::now() - std::chrono::minutes(1));
  for (auto& level : body["tcbLevels"]) level["tcbStatus"] = "OutOfDate";
  VOUCH_ASSIGN_OR_RETURN(std::string text, sim::SignedJson("tcbInfo", body.dump(), key.get()));
  VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kTcbInfoFile, text, 0644));
  return number;
}

Result<std::unique_ptr<SimVendor>> SimVendor::Load(const std::string& dir) {
  const std::string d = dir + "/";
  auto text = ReadWholeFile(d + kSimSecretsFile, 1 << 20);
  if (!text.ok()) return NotFound(dir + " holds no sim vendor (" + text.status().message() + ")", "not_found");
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(d + kSimSecretsFile + " is not JSON", "malformed_sim");
  auto v = std::unique_ptr<SimVendor>(new SimVendor());
  v->dir_ = dir;
  auto tcb = ParseSimTcb(j.value("tcb", std::string()));
  if (!tcb.ok()) return tcb.status();
  v->tcb_ = *tcb;
  v->revoked_ = j.value("revoked", false);
  // Folders written before issue 14 name no platform: they are sgx.
  auto tee = ParseSimTee(j.contains("platform") && j["platform"].is_string() ? j["platform"].get<std::string>() : "sgx");
  if (!tee.ok()) return tee.status();
  v->tee_ = *tee;
  if (v->tee_ == SimTee::kSevSnp) {
    VOUCH_RETURN_IF_ERROR(v->LoadSnp(*text));
    return v;
  }
  VOUCH_ASSIGN_OR_RETURN(std::string root_pem, ReadWholeFile(d + kTrustedRootFile));
  VOUCH_ASSIGN_OR_RETURN(v->root_, crypto::CertFromPem(root_pem));
  if (!IsSimRootCa(v->root_.get())) return InvalidArgument(d + kTrustedRootFile + " is not a sim root", "malformed_sim");
  VOUCH_ASSIGN_OR_RETURN(std::string pck_pem, ReadWholeFile(d + kPckCertFile));
  VOUCH_ASSIGN_OR_RETURN(std::string chain_pem, ReadWholeFile(d + kPckSignChainFile));
  VOUCH_ASSIGN_OR_RETURN(X509Ptr pck, crypto::CertFromPem(pck_pem));
  VOUCH_ASSIGN_OR_RETURN(PckSgxExtension ext, ParsePckSgxExtension(pck.get()));

  auto p = std::unique_ptr<SimPlatform>(new SimPlatform());
  p->tee_ = v->tee_;
  VOUCH_ASSIGN_OR_RETURN(p->pck_key_, Key(j, "pck_key"));
  VOUCH_ASSIGN_OR_RETURN(p->attestation_key_, Key(j, "attestation_key"));
  VOUCH_ASSIGN_OR_RETURN(auto secret, Hex(j, "platform_secret", 32));
  p->secret_ = crypto::SecretBytes(std::span<const uint8_t>(secret));
  VOUCH_ASSIGN_OR_RETURN(auto qe_id, Hex(j, "qe_id", 16));
  std::copy(qe_id.begin(), qe_id.end(), p->qe_id_.begin());
  p->chain_pem_ = pck_pem + chain_pem;
  p->fmspc_ = ext.fmspc;
  p->comp_svns_ = ext.comp_svns;
  p->cpusvn_ = ext.cpusvn;
  p->pcesvn_ = ext.pcesvn;
  VOUCH_ASSIGN_OR_RETURN(p->attestation_key_raw_, RawPoint(p->attestation_key_.get()));
  v->platform_ = std::move(p);
  return v;
}

Result<std::vector<uint8_t>> SimPlatform::Quote(std::span<const uint8_t> report_body,
                                                std::span<const uint8_t> report_data) const {
  VOUCH_ASSIGN_OR_RETURN(evidence::SgxReportBody body, evidence::ParseSgxReportBody(report_body));
  return Quote(body, report_data);
}

namespace {
void PutU16(std::vector<uint8_t>* q, uint16_t x) {
  q->push_back(static_cast<uint8_t>(x));
  q->push_back(static_cast<uint8_t>(x >> 8));
}
void PutU32(std::vector<uint8_t>* q, uint32_t x) {
  for (int i = 0; i < 4; ++i) q->push_back(static_cast<uint8_t>(x >> (8 * i)));
}
void PutBytes(std::vector<uint8_t>* q, std::span<const uint8_t> b) { q->insert(q->end(), b.begin(), b.end()); }

// The 48-byte quote header (ATTESTATION-FORMATS.md §1.1): SGX v3 carries the QE and PCE SVNs;
// TDX quotes leave those two words zero, as real ones do. User data = QE ID ‖ 4 zero bytes.
void PutHeader(std::vector<uint8_t>* q, uint16_t version, uint32_t tee_type, uint16_t qe_svn, uint16_t pce_svn,
               const std::array<uint8_t, 16>& qe_id) {
  PutU16(q, version);
  PutU16(q, evidence::kAttKeyTypeEcdsaP256);
  PutU32(q, tee_type);
  PutU16(q, qe_svn);
  PutU16(q, pce_svn);
  PutBytes(q, evidence::kIntelQeVendorId);
  PutBytes(q, qe_id);
  PutU32(q, 0);
}

// A TD report (1.0: 584 bytes, 1.5: 648) in the layout of docs/formats/tdx-quote.md.
std::vector<uint8_t> EncodeTdReport(const SimTdxQuoteOptions& o, std::span<const uint8_t> report_data) {
  std::vector<uint8_t> b;
  PutBytes(&b, kSimTeeTcbSvn);
  PutBytes(&b, SimMrSeam());
  b.resize(b.size() + 48, 0);  // MRSIGNERSEAM: zero (Intel's module)
  b.resize(b.size() + 8, 0);   // SEAMATTRIBUTES
  std::array<uint8_t, 8> td_attributes{};
  td_attributes[0] = o.debug ? 0x01 : 0x00;
  PutBytes(&b, td_attributes);
  const std::array<uint8_t, 8> xfam = {0xE7, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00};
  PutBytes(&b, xfam);
  PutBytes(&b, o.mr_td);
  PutBytes(&b, o.mr_config_id);
  PutBytes(&b, o.mr_owner);
  PutBytes(&b, o.mr_owner_config);
  for (const auto& r : o.rtmr) PutBytes(&b, r);
  std::array<uint8_t, 64> rd{};
  std::copy(report_data.begin(), report_data.end(), rd.begin());
  PutBytes(&b, rd);
  if (o.td_report_15) {
    PutBytes(&b, kSimTeeTcbSvn);  // TEE_TCB_SVN2
    b.resize(b.size() + 48, 0);   // MRSERVICETD
  }
  return b;
}
}  // namespace

Result<std::vector<uint8_t>> SimPlatform::Quote(const evidence::SgxReportBody& body_in,
                                                std::span<const uint8_t> report_data) const {
  if (tee_ != SimTee::kSgx) return WrongPlatform("an SGX quote", tee_);
  if (report_data.size() > 64) return InvalidArgument("report data is longer than 64 bytes", "invalid_report_data");
  evidence::SgxReportBody body = body_in;
  body.report_data.fill(0);
  std::copy(report_data.begin(), report_data.end(), body.report_data.begin());
  std::vector<uint8_t> q;
  PutHeader(&q, 3, evidence::kTeeTypeSgx, kSimQeIsvSvn, pcesvn_, qe_id_);
  auto enc = evidence::EncodeSgxReportBody(body);
  PutBytes(&q, enc);
  return SignQuote(std::move(q));
}

Result<std::vector<uint8_t>> SimPlatform::TdxQuote(const SimTdxQuoteOptions& o, std::span<const uint8_t> report_data) const {
  if (tee_ != SimTee::kTdx) return WrongPlatform("a TDX quote", tee_);
  if (report_data.size() > 64) return InvalidArgument("report data is longer than 64 bytes", "invalid_report_data");
  if (o.version != 4 && o.version != 5) {
    return InvalidArgument("TDX quote version " + std::to_string(o.version) + ", expected 4 or 5", "invalid_quote_version");
  }
  if (o.td_report_15 && o.version != 5) return InvalidArgument("TD report 1.5 needs quote version 5", "invalid_quote_version");
  std::vector<uint8_t> q;
  PutHeader(&q, static_cast<uint16_t>(o.version), evidence::kTeeTypeTdx, 0, 0, qe_id_);
  std::vector<uint8_t> body = EncodeTdReport(o, report_data);
  if (o.version == 5) {
    PutU16(&q, static_cast<uint16_t>(o.td_report_15 ? evidence::QuoteBodyType::kTdReport15 : evidence::QuoteBodyType::kTdReport10));
    PutU32(&q, static_cast<uint32_t>(body.size()));
  }
  PutBytes(&q, body);
  return SignQuote(std::move(q));
}

// Appends the signature data to `q` (header ‖ [descriptor ‖] body): quote signature by the
// attestation key, the attestation key, then for SGX v3 the QE report, its signature, the auth
// data and certification data type 5; for TDX (v4/v5) certification data type 6 wrapping
// exactly that (QE report certification data, ATTESTATION-FORMATS.md §2).
Result<std::vector<uint8_t>> SimPlatform::SignQuote(std::vector<uint8_t> q) const {
  if (!pck_key_ || !attestation_key_) return WrongPlatform("a DCAP quote", tee_);
  const bool tdx = tee_ == SimTee::kTdx;
  VOUCH_ASSIGN_OR_RETURN(auto qsig_der, crypto::Sign(attestation_key_.get(), q));
  VOUCH_ASSIGN_OR_RETURN(auto qsig, crypto::EcdsaDerToRaw(qsig_der, 32));
  // QE report binding the attestation key and the auth data.
  std::array<uint8_t, 32> auth{};
  for (size_t i = 0; i < auth.size(); ++i) auth[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> bound(attestation_key_raw_.begin(), attestation_key_raw_.end());
  bound.insert(bound.end(), auth.begin(), auth.end());
  evidence::SgxReportBody qe;
  qe.cpu_svn = cpusvn_;
  qe.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit | evidence::kSgxFlagProvisionKey;
  qe.attribute_xfrm = 0xE7;
  qe.mr_enclave = tdx ? SimTdQeMrEnclave() : SimQeMrEnclave();
  qe.mr_signer = tdx ? SimTdQeMrSigner() : SimQeMrSigner();
  qe.isv_prod_id = tdx ? kSimTdQeIsvProdId : kSimQeIsvProdId;
  qe.isv_svn = tdx ? kSimTdQeIsvSvn : kSimQeIsvSvn;
  auto h = crypto::Sha256(bound);
  std::copy(h.begin(), h.end(), qe.report_data.begin());
  auto qe_bytes = evidence::EncodeSgxReportBody(qe);
  VOUCH_ASSIGN_OR_RETURN(auto qe_sig_der, crypto::Sign(pck_key_.get(), qe_bytes));
  VOUCH_ASSIGN_OR_RETURN(auto qe_sig, crypto::EcdsaDerToRaw(qe_sig_der, 32));
  // Certification data type 5: the PEM chain with a trailing NUL, as real QEs emit it.
  std::string cert = chain_pem_;
  cert.push_back('\0');
  std::vector<uint8_t> qe_part;  // QE report ‖ signature ‖ auth ‖ type-5 certification data
  PutBytes(&qe_part, qe_bytes);
  PutBytes(&qe_part, qe_sig);
  PutU16(&qe_part, static_cast<uint16_t>(auth.size()));
  PutBytes(&qe_part, auth);
  PutU16(&qe_part, static_cast<uint16_t>(evidence::CertDataType::kPckChain));
  PutU32(&qe_part, static_cast<uint32_t>(cert.size()));
  PutBytes(&qe_part, AsBytes(cert));
  std::vector<uint8_t> sig;
  PutBytes(&sig, qsig);
  PutBytes(&sig, attestation_key_raw_);
  if (tdx) {
    PutU16(&sig, static_cast<uint16_t>(evidence::CertDataType::kQeReportCertData));
    PutU32(&sig, static_cast<uint32_t>(qe_part.size()));
  }
  PutBytes(&sig, qe_part);
  PutU32(&q, static_cast<uint32_t>(sig.size()));
  PutBytes(&q, sig);
  return q;
}

crypto::SecretBytes SimPlatform::ReportKey(std::span<const uint8_t, 32> target_mrenclave) const {
  std::vector<uint8_t> msg(kReportKeyLabel, kReportKeyLabel + sizeof(kReportKeyLabel) - 1);
  msg.insert(msg.end(), target_mrenclave.begin(), target_mrenclave.end());
  auto mac = crypto::HmacSha256(secret_.span(), msg);
  crypto::SecretBytes key(std::span<const uint8_t>(mac.data(), 16));
  OPENSSL_cleanse(mac.data(), mac.size());
  return key;
}

Result<std::array<uint8_t, 16>> SimAesCmac128(const crypto::SecretBytes& key, std::span<const uint8_t> data) {
  if (key.size() != 16) return InvalidArgument("AES-128-CMAC needs a 16-byte key", "invalid_key");
  // Fetched once: the implementation is immutable and shared by all threads.
  static const crypto::EvpMacPtr mac(EVP_MAC_fetch(nullptr, "CMAC", nullptr));
  if (!mac) return crypto::OpensslError("EVP_MAC_fetch(CMAC)");
  crypto::EvpMacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  char cipher[] = "AES-128-CBC";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0), OSSL_PARAM_construct_end()};
  std::array<uint8_t, 16> out{};
  size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size()) {
    return crypto::OpensslError("AES-CMAC");
  }
  return out;
}

Result<std::array<uint8_t, evidence::kSgxReportSize>> SimPlatform::MakeReport(
    const evidence::SgxReportBody& body, std::span<const uint8_t, 32> target_mrenclave) const {
  evidence::SgxReport report;
  report.body = body;
  report.body.raw = evidence::EncodeSgxReportBody(body);
  auto key_id = crypto::RandomBytes(evidence::kSgxReportKeyIdSize);
  std::copy(key_id.begin(), key_id.end(), report.key_id.begin());
  VOUCH_ASSIGN_OR_RETURN(report.mac, SimAesCmac128(ReportKey(target_mrenclave), report.body.raw));
  return evidence::EncodeSgxReport(report);
}

bool SimPlatform::VerifyReport(std::span<const uint8_t> report, std::span<const uint8_t, 32> my_mrenclave) const {
  return VerifyReportWithKey(report, ReportKey(my_mrenclave));
}

bool SimPlatform::VerifyReportWithKey(std::span<const uint8_t> report, const crypto::SecretBytes& report_key) {
  if (report.size() != evidence::kSgxReportSize) return false;
  auto mac = SimAesCmac128(report_key, report.first(evidence::kSgxReportBodySize));
  if (!mac.ok()) return false;
  return crypto::ConstantTimeEquals(*mac, report.subspan(evidence::sgx_report_offsets::kMac, evidence::kSgxReportMacSize));
}

}  // namespace vouch::attest
