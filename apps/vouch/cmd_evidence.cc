// vouch evidence verify: offline verification of TEE evidence (Intel SGX DCAP quote v3, TDX quote
// v4/v5, AMD SEV-SNP report, or SEV-SNP evidence = report ‖ GHCB certificate table) against
// collateral in a folder. Output keys and exit codes are fixed
// by INTERFACES.md: 0 genuine with an acceptable TCB, 1 genuine but OutOfDate/Revoked/not
// supported, 2 not genuine or unparsable.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "attest/dcap_verifier.h"
#include "attest/snp_verifier.h"
#include "attest/verdict.h"
#include "base/byte_reader.h"
#include "base/clock.h"
#include "base/file.h"
#include "cmd_collateral.h"
#include "command_registry.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"

namespace vouch::cli {
namespace {

struct VerifyArgs {
  std::string evidence;
  std::string collateral;
  std::string at;
  std::string trust_root;
  bool allow_sim = false;
};

// SEV-SNP: a 1184-byte report whose u32 version is 2, 3 or 5, possibly followed by the
// certificate table (evidence/snp_cert_table.h).
bool LooksLikeSnpReport(std::span<const uint8_t> b) {
  if (b.size() < 1184) return false;
  uint32_t version = LoadU32(b, 0);
  return version == 2 || version == 3 || version == 5;
}

attest::Verdict NotGenuine(std::string code, std::string message) {
  attest::Verdict v;
  v.error = Status(StatusCode::kInvalidArgument, std::move(message), std::move(code));
  return v;
}

void PrintSummary(const attest::Verdict& v, const std::string& evidence) {
  std::cout << "evidence:      " << evidence << "\n";
  std::cout << "platform:      " << attest::PlatformName(v.platform) << "\n";
  std::cout << "genuine:       " << (v.genuine ? "yes" : "NO") << "\n";
  if (v.insecure_sim) std::cout << "WARNING:       insecure-sim (simulated TEE, not real hardware)\n";
  if (v.genuine) {
    std::cout << "tcb status:    " << (v.tcb_status.empty() ? "-" : v.tcb_status) << "\n";
    std::string adv;
    for (const auto& a : v.advisory_ids) adv += (adv.empty() ? "" : ", ") + a;
    std::cout << "advisories:    " << (adv.empty() ? "-" : adv) << "\n";
  } else if (v.error.has_value()) {
    std::cout << "error:         " << v.error->reason() << ": " << v.error->message() << "\n";
  }
  for (const char* key : {"mrenclave", "mrsigner", "isvprodid", "isvsvn", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
                          "mrsignerseam", "measurement", "host_data", "vmpl", "debug"}) {
    if (v.measurements.contains(key)) {
      std::string label = std::string(key) + ":";
      if (label.size() < 15) label.resize(15, ' ');
      const auto& m = v.measurements[key];
      std::cout << label << (m.is_string() ? m.get<std::string>() : m.dump()) << "\n";
    }
  }
  if (!v.report_data_hex.empty()) std::cout << "report data:   " << v.report_data_hex << "\n";
  for (const char* key : {"fmspc", "tcb_date", "qe_tcb_status", "tdx_module_tcb_status", "tcb_status_partial"}) {
    if (v.details.contains(key)) {
      std::string label = std::string(key) + ":";
      if (label.size() < 15) label.resize(15, ' ');
      const auto& d = v.details[key];
      std::cout << label << (d.is_string() ? d.get<std::string>() : d.dump()) << "\n";
    }
  }
}

void RunVerify(const VerifyArgs& a, const GlobalOptions& global) {
  if (!global.server.empty() && ServerFlagOnCommandLine()) {  // --server URL: the verdict from vouchd (cmd_collateral.cc)
    VerifyEvidenceOnServer(a.evidence, a.at, !a.collateral.empty() || !a.trust_root.empty() || a.allow_sim, global);
    return;
  }
  TimePoint at = std::chrono::system_clock::now();
  if (!a.at.empty()) {
    auto t = ParseRfc3339(a.at);
    if (!t.ok()) throw CliError("--at: " + t.status().message(), 2);
    at = *t;
  }
  auto text = ReadWholeFile(a.evidence, 1 << 20);
  if (!text.ok()) throw CliError("cannot read " + a.evidence + ": " + text.status().message(), 2);
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(text->data()), text->size());
  std::optional<std::string> dir;
  if (!a.collateral.empty()) dir = a.collateral;

  attest::Verdict v;
  if (evidence::LooksLikeDcapQuote(bytes)) {
    attest::DcapTrustOptions trust;
    trust.allow_sim = a.allow_sim;
    crypto::X509Ptr root;
    if (!a.trust_root.empty()) {
      auto pem = ReadWholeFile(a.trust_root);
      if (!pem.ok()) throw CliError("cannot read " + a.trust_root + ": " + pem.status().message(), 2);
      auto cert = crypto::CertFromPem(*pem);
      if (!cert.ok()) throw CliError(a.trust_root + ": " + cert.status().message(), 2);
      root = std::move(*cert);
      trust.trust_root = root.get();
    }
    v = attest::VerifyDcapQuote(bytes, dir, at, trust);
  } else if (LooksLikeSnpReport(bytes)) {
    if (bytes.size() == 1184 && !a.allow_sim) {
      v = attest::VerifySnpReport(bytes, dir, at);  // a bare report against a folder, as before issue 14
    } else {
      // Evidence with its certificate table (or a sim report): table first, then the folder's
      // certificates and its crl.der; a sim ARK only with --allow-sim.
      attest::SnpCollateral collateral;
      if (dir.has_value()) {
        auto loaded = attest::LoadSnpCollateralDir(*dir);
        if (loaded.ok()) collateral = std::move(*loaded);
      }
      attest::SnpTrustOptions trust;
      trust.allow_sim = a.allow_sim;
      v = attest::VerifySnpEvidence(bytes, collateral, at, trust);
    }
  } else {
    v = NotGenuine("malformed_evidence", "not an Intel DCAP quote (u16 version 3/4/5, key type 2) nor a SEV-SNP "
                                         "report (1184 bytes, optionally followed by its certificate table); got " + std::to_string(bytes.size()) + " bytes");
  }

  if (global.json()) {
    std::cout << v.ToJson().dump(2) << std::endl;
  } else {
    PrintSummary(v, a.evidence);
    std::cout.flush();
  }
  int code = v.ExitCode();
  if (code == 2 && v.error.has_value()) {
    std::fprintf(stderr, "vouch: evidence not genuine: %s\n", v.error->reason().c_str());
  }
  if (code != 0) throw CliExit(code);
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto* group = root.add_subcommand("evidence", "Verify TEE evidence offline, or with --server by vouchd (SGX DCAP, TDX, SEV-SNP)");
  group->require_subcommand(1);
  auto args = std::make_shared<VerifyArgs>();
  auto* verify = group->add_subcommand(
      "verify",
      "Verify a quote or report; exit 0 genuine and acceptable TCB, 1 genuine but outdated/revoked, 2 not genuine");
  verify->add_option("--evidence", args->evidence,
                     "Evidence file (SGX/TDX quote, SEV-SNP report, or SEV-SNP report followed by its certificate table)")
      ->required();
  verify->add_option("--collateral", args->collateral,
                     "Collateral folder (tcbInfo.json, qeIdentity.json, rootCaCrl.der, intermediateCaCrl.der, "
                     "tcbSignChain.pem, ...; VCEK/VLEK and chain for SEV-SNP)");
  verify->add_option("--at", args->at, "Verification time, RFC 3339 (default: now)");
  verify->add_flag("--allow-sim", args->allow_sim,
                   "Trust an INSECURE sim root (the collateral folder's, or a sim ARK in SEV-SNP evidence)");
  verify->add_option("--trust-root", args->trust_root,
                     "PEM trust anchor to use instead of the built-in Intel SGX Root CA (e.g. a test root)");
  verify->callback([args, &global] { RunVerify(*args, global); });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(evidence, vouch::cli::Register);
