// The sev-snp sim (sim_vendor.h): an AMD-style ARK / ASK / VCEK chain, an ARK-signed CRL, and
// Milan-like ATTESTATION_REPORTs signed by the VCEK. docs/sim.md.
#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "attest/sim_pki.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/snp_cert_table.h"
#include "evidence/snp_report.h"

namespace vouch::attest {
namespace {

using crypto::EvpPkeyPtr;
using crypto::X509Ptr;
namespace off = evidence::snp_offsets;

constexpr char kAmdSimOrganization[] = "vouch sim (INSECURE, not AMD)";
// Milan B0 as go-sev-guest names it: CPUID family 0x19, model 0x01, stepping 0x01.
constexpr uint8_t kSimCpuFamily = 0x19;
constexpr uint8_t kSimCpuModel = 0x01;
constexpr uint8_t kSimCpuStepping = 0x01;
// Firmware 1.55.21 (current and committed).
constexpr uint8_t kSimFwMajor = 1, kSimFwMinor = 55, kSimFwBuild = 21;
// Guest policy: ABI 0.0, SMT allowed (bit 16), reserved bit 17 set (required by the ABI).
constexpr uint64_t kSimPolicy = (1ULL << 16) | (1ULL << 17);
constexpr uint64_t kPolicyDebug = 1ULL << 19;
constexpr uint64_t kSimPlatformInfo = 0x1;  // SMT enabled

Status WriteSimFile(const std::string& path, std::string_view data, bool secret) {
  return WriteFileAtomic(path, data, secret ? 0600 : 0644);
}

Result<std::string> KeyPem(EVP_PKEY* k) {
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes s, crypto::PrivateKeyToPem(k));
  return std::string(s.view());
}

Result<EvpPkeyPtr> SecretKey(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return InvalidArgument(std::string("sim secrets: missing ") + name, "malformed_sim");
  return crypto::PrivateKeyFromPem(it->get<std::string>());
}

void PutLe(std::vector<uint8_t>& b, size_t at, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

template <size_t N>
void PutArray(std::vector<uint8_t>& b, size_t at, const std::array<uint8_t, N>& a) {
  std::copy(a.begin(), a.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
}

}  // namespace

SimSnpPlatform::~SimSnpPlatform() = default;

Status SimVendor::CreateSnpFiles(const std::string& dir, const SimVendorOptions& options, TimePoint now) {
  const TimePoint certs_end = now + std::chrono::hours(24 * 365 * 10);
  const TimePoint coll_end = now + options.collateral_validity;
  const SimSnpTcb tcb = options.snp_tcb.value_or(SimSnpTcbFor(options.tcb));

  // AMD's ARK and ASK are RSA-4096; the VCEK is EC P-384.
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr ark_key, sim::GenerateRsa(4096));
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr ask_key, sim::GenerateRsa(4096));
  VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr vcek_key, crypto::GenerateKey(crypto::KeyType::kEcP384));
  auto chip = crypto::RandomBytes(64);
  uint64_t serial_base = 0;
  for (uint8_t b : crypto::RandomBytes(6)) serial_base = (serial_base << 8) | b;

  sim::CertSpec ark_spec;
  ark_spec.cn = std::string(kSimNamePrefix) + " ARK-Milan";
  ark_spec.subject_key = ark_key.get();
  ark_spec.issuer_key = ark_key.get();
  ark_spec.serial = serial_base + 1;
  ark_spec.not_before = now;
  ark_spec.not_after = certs_end;
  ark_spec.ca = true;
  ark_spec.pathlen = 1;
  ark_spec.organization = kAmdSimOrganization;
  ark_spec.rsa_pss_sha384 = true;
  VOUCH_ASSIGN_OR_RETURN(X509Ptr ark, sim::MakeCert(ark_spec));

  sim::CertSpec ask_spec = ark_spec;
  ask_spec.cn = std::string(kSimNamePrefix) + " SEV-Milan";
  ask_spec.subject_key = ask_key.get();
  ask_spec.issuer = ark.get();
  ask_spec.serial = serial_base + 2;
  ask_spec.pathlen = 0;
  VOUCH_ASSIGN_OR_RETURN(X509Ptr ask, sim::MakeCert(ask_spec));

  sim::CertSpec vcek_spec = ark_spec;
  vcek_spec.cn = std::string(kSimNamePrefix) + " SEV-VCEK";
  vcek_spec.subject_key = vcek_key.get();
  vcek_spec.issuer = ask.get();
  vcek_spec.issuer_key = ask_key.get();
  vcek_spec.serial = serial_base + 3;
  vcek_spec.ca = false;
  vcek_spec.pathlen = -1;
  vcek_spec.standard_extensions = false;  // as KDS issues VCEKs: AMD's extensions only
  vcek_spec.extensions = sim::AmdVcekExtensions(kSimSnpProductName, tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode, chip);
  VOUCH_ASSIGN_OR_RETURN(X509Ptr vcek, sim::MakeCert(vcek_spec));

  std::vector<X509*> revoked;
  if (options.revoked) revoked.push_back(vcek.get());
  VOUCH_ASSIGN_OR_RETURN(auto crl, sim::MakeCrl(ark.get(), ark_key.get(), now, coll_end, revoked, /*rsa_pss_sha384=*/true));

  VOUCH_ASSIGN_OR_RETURN(std::string ark_pem, crypto::CertToPem(ark.get()));
  VOUCH_ASSIGN_OR_RETURN(std::string ask_pem, crypto::CertToPem(ask.get()));
  VOUCH_ASSIGN_OR_RETURN(auto vcek_der, crypto::CertToDer(vcek.get()));

  nlohmann::json secrets = {{"version", 1},
                            {"warning", "INSECURE sim TEE vendor: test keys, not AMD"},
                            {"platform", SimTeeName(SimTee::kSevSnp)},
                            {"tcb", SimTcbName(options.tcb)},
                            {"revoked", options.revoked},
                            {"reported_tcb",
                             {{"bootloader", tcb.bootloader}, {"tee", tcb.tee}, {"snp", tcb.snp}, {"microcode", tcb.microcode}}},
                            {"chip_id", HexEncode(chip)},
                            {"platform_secret", HexEncode(crypto::RandomBytes(32))}};
  for (auto [name, key] : {std::pair{"ark_key", ark_key.get()}, std::pair{"ask_key", ask_key.get()},
                           std::pair{"vcek_key", vcek_key.get()}}) {
    VOUCH_ASSIGN_OR_RETURN(std::string pem, KeyPem(key));
    secrets[name] = pem;
  }
  const std::string d = dir + "/";
  VOUCH_RETURN_IF_ERROR(WriteSimFile(d + kSimSecretsFile, secrets.dump(2), true));
  VOUCH_RETURN_IF_ERROR(WriteSimFile(d + kSimSnpCertChainFile, ask_pem + ark_pem, false));
  VOUCH_RETURN_IF_ERROR(WriteSimFile(d + kSimSnpVcekFile, ToString(vcek_der), false));
  VOUCH_RETURN_IF_ERROR(WriteSimFile(d + kSimSnpCrlFile, ToString(crl), false));
  VOUCH_RETURN_IF_ERROR(WriteSimFile(d + "README-INSECURE-SIM.txt",
                                     "This folder is a vouch sim TEE vendor: INSECURE test keys, NOT AMD.\n"
                                     "Platform: sev-snp\n"
                                     "Verify its evidence with: vouch evidence verify --evidence EVIDENCE --collateral " +
                                         dir + " --allow-sim\n",
                                     false));
  return Status::Ok();
}

Status SimVendor::LoadSnp(const std::string& secrets_text) {
  const std::string d = dir_ + "/";
  nlohmann::json j = nlohmann::json::parse(secrets_text, nullptr, false);
  if (!j.is_object()) return InvalidArgument(d + kSimSecretsFile + " is not JSON", "malformed_sim");
  VOUCH_ASSIGN_OR_RETURN(std::string chain_pem, ReadWholeFile(d + kSimSnpCertChainFile, 1 << 20));
  VOUCH_ASSIGN_OR_RETURN(auto chain, crypto::CertsFromPem(chain_pem));
  if (chain.size() != 2 || !IsSimRootCa(chain[1].get())) {
    return InvalidArgument(d + kSimSnpCertChainFile + " must hold the sim ASK then the sim ARK", "malformed_sim");
  }
  VOUCH_ASSIGN_OR_RETURN(std::string vcek_text, ReadWholeFile(d + kSimSnpVcekFile, 1 << 20));
  auto snp = std::unique_ptr<SimSnpPlatform>(new SimSnpPlatform());
  VOUCH_ASSIGN_OR_RETURN(snp->vcek_key_, SecretKey(j, "vcek_key"));
  auto chip = HexDecode(j.value("chip_id", std::string()));
  if (!chip.ok() || chip->size() != 64) return InvalidArgument("sim secrets: bad chip_id", "malformed_sim");
  std::copy(chip->begin(), chip->end(), snp->chip_id_.begin());
  const auto& t = j.contains("reported_tcb") ? j["reported_tcb"] : nlohmann::json::object();
  auto spl = [&t](const char* name) -> Result<uint8_t> {
    auto it = t.find(name);
    if (it == t.end() || !it->is_number_unsigned() || it->get<uint64_t>() > 255) {
      return InvalidArgument(std::string("sim secrets: bad reported_tcb.") + name, "malformed_sim");
    }
    return static_cast<uint8_t>(it->get<uint64_t>());
  };
  VOUCH_ASSIGN_OR_RETURN(snp->tcb_.bootloader, spl("bootloader"));
  VOUCH_ASSIGN_OR_RETURN(snp->tcb_.tee, spl("tee"));
  VOUCH_ASSIGN_OR_RETURN(snp->tcb_.snp, spl("snp"));
  VOUCH_ASSIGN_OR_RETURN(snp->tcb_.microcode, spl("microcode"));
  snp->vcek_der_.assign(vcek_text.begin(), vcek_text.end());
  VOUCH_ASSIGN_OR_RETURN(snp->ask_der_, crypto::CertToDer(chain[0].get()));
  VOUCH_ASSIGN_OR_RETURN(snp->ark_der_, crypto::CertToDer(chain[1].get()));
  const evidence::SnpCertTableInput entries[] = {{evidence::kSnpGuidVcek, snp->vcek_der_},
                                                 {evidence::kSnpGuidAsk, snp->ask_der_},
                                                 {evidence::kSnpGuidArk, snp->ark_der_}};
  VOUCH_ASSIGN_OR_RETURN(snp->cert_table_, evidence::BuildSnpCertTable(entries));

  // The local-attestation half (a platform secret), so that platform() is usable.
  auto p = std::unique_ptr<SimPlatform>(new SimPlatform());
  p->tee_ = SimTee::kSevSnp;
  auto secret = HexDecode(j.value("platform_secret", std::string()));
  if (!secret.ok() || secret->size() != 32) return InvalidArgument("sim secrets: bad platform_secret", "malformed_sim");
  p->secret_ = crypto::SecretBytes(std::span<const uint8_t>(*secret));

  root_ = std::move(chain[1]);
  platform_ = std::move(p);
  snp_ = std::move(snp);
  return Status::Ok();
}

Result<std::vector<uint8_t>> SimSnpPlatform::Report(const SimSnpReportOptions& o,
                                                    std::span<const uint8_t> report_data) const {
  if (report_data.size() > 64) return InvalidArgument("report data is longer than 64 bytes", "invalid_report_data");
  if (o.vmpl > 3) return InvalidArgument("VMPL " + std::to_string(o.vmpl) + " is out of range 0..3", "invalid_privlevel");
  std::vector<uint8_t> b(evidence::kSnpReportSize, 0);
  const uint64_t tcb = tcb_.Raw();
  PutLe(b, off::kVersion, 3, 4);
  PutLe(b, off::kGuestSvn, o.guest_svn, 4);
  PutLe(b, off::kPolicy, kSimPolicy | (o.debug ? kPolicyDebug : 0), 8);
  PutLe(b, off::kVmpl, o.vmpl, 4);
  PutLe(b, off::kSignatureAlgo, evidence::kSnpSignatureAlgoEcdsaP384Sha384, 4);
  PutLe(b, off::kCurrentTcb, tcb, 8);
  PutLe(b, off::kPlatformInfo, kSimPlatformInfo, 8);
  PutLe(b, off::kKeyInfo, 0, 4);  // signing key 0 = VCEK, chip key not masked, no author key
  std::copy(report_data.begin(), report_data.end(), b.begin() + off::kReportData);
  PutArray(b, off::kMeasurement, o.measurement);
  PutArray(b, off::kHostData, o.host_data);
  auto report_id = crypto::RandomBytes(32);
  std::copy(report_id.begin(), report_id.end(), b.begin() + off::kReportId);
  std::fill(b.begin() + off::kReportIdMa, b.begin() + off::kReportIdMa + 32, 0xFF);  // no migration agent
  PutLe(b, off::kReportedTcb, tcb, 8);
  b[off::kCpuidFamId] = kSimCpuFamily;
  b[off::kCpuidModId] = kSimCpuModel;
  b[off::kCpuidStep] = kSimCpuStepping;
  PutArray(b, off::kChipId, chip_id_);
  PutLe(b, off::kCommittedTcb, tcb, 8);
  b[off::kCurrentBuild] = kSimFwBuild;
  b[off::kCurrentMinor] = kSimFwMinor;
  b[off::kCurrentMajor] = kSimFwMajor;
  b[off::kCommittedBuild] = kSimFwBuild;
  b[off::kCommittedMinor] = kSimFwMinor;
  b[off::kCommittedMajor] = kSimFwMajor;
  PutLe(b, off::kLaunchTcb, tcb, 8);
  // ECDSA P-384 / SHA-384 over bytes 0x000..0x29F; r and s little-endian in 72-byte fields.
  VOUCH_ASSIGN_OR_RETURN(auto der, crypto::Sign(vcek_key_.get(), std::span<const uint8_t>(b).first(evidence::kSnpSignedSize),
                                                crypto::DigestAlg::kSha384));
  VOUCH_ASSIGN_OR_RETURN(auto rs, crypto::EcdsaDerToRaw(der, 48));
  for (size_t i = 0; i < 48; ++i) {
    b[off::kSignatureR + i] = rs[47 - i];
    b[off::kSignatureS + i] = rs[95 - i];
  }
  return b;
}

Result<std::vector<uint8_t>> SimSnpPlatform::Evidence(const SimSnpReportOptions& options,
                                                      std::span<const uint8_t> report_data) const {
  VOUCH_ASSIGN_OR_RETURN(auto out, Report(options, report_data));
  out.insert(out.end(), cert_table_.begin(), cert_table_.end());
  return out;
}

}  // namespace vouch::attest
