// vouch sim init | quote: the INSECURE simulated TEE vendor (docs/sim.md).
#include <fstream>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attest/sim_pki.h"
#include "attest/sim_vendor.h"
#include "base/file.h"
#include "base/clock.h"
#include "crypto/keys.h"
#include "base/encoding.h"
#include "cmd_sim_parts.h"
#include "command_registry.h"
#include "attest/sim_agent.h"
#include "evidence/sgx_report.h"
#include "evidence/snp_report.h"

namespace vouch::cli {
namespace {

struct InitArgs {
  std::string dir;
  std::string platform = "sgx";
  std::string reported_tcb;
  std::string tcb = "up-to-date";
  bool revoked = false;
  int validity_days = 365;
};

struct QuoteArgs {
  std::string sim;
  std::string report_data;
  std::string mrenclave;
  std::string mrsigner;
  int isvprodid = 0;
  int isvsvn = 0;
  bool debug = false;
  bool agent = false;
  std::string out;
  // tdx
  std::string mrtd;
  std::vector<std::string> rtmr;  // "N=HEX"
  int quote_version = 4;
  std::string td_report = "1.0";
  // sev-snp
  std::string measurement;
  std::string host_data;
  int vmpl = 0;
};

struct RecoveryArgs {
  std::string dir;
};

void RunTcbRecovery(const RecoveryArgs& a, const GlobalOptions& global) {
  auto number = attest::SimTcbRecovery(a.dir);
  if (!number.ok()) throw CliError("sim tcb-recovery: " + number.status().message(), 1);
  if (global.json()) {
    std::cout << nlohmann::json{{"dir", a.dir}, {"tcb_evaluation_data_number", *number},
                                {"expected_tcb_status", "OutOfDate"}}
                     .dump(2)
              << std::endl;
  } else {
    std::cout << "new TCB Info in " << a.dir << "/tcbInfo.json: every TCB level of this sim vendor is now OutOfDate\n";
  }
}

template <size_t N>
void HexInto(const std::string& flag, const std::string& hex, std::array<uint8_t, N>* out) {
  if (hex.empty()) return;
  auto b = HexDecode(hex);
  if (!b.ok() || b->size() != N) throw CliError(flag + " must be " + std::to_string(2 * N) + " hex digits", 2);
  std::copy(b->begin(), b->end(), out->begin());
}

// "bl=N,tee=N,snp=N,ucode=N" (each 0..255, all four).
attest::SimSnpTcb ParseReportedTcb(const std::string& text) {
  attest::SimSnpTcb t;
  bool seen[4] = {false, false, false, false};
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    size_t eq = item.find('=');
    int v = -1;
    if (eq != std::string::npos) {
      try {
        size_t used = 0;
        v = std::stoi(item.substr(eq + 1), &used);
        if (used != item.size() - eq - 1) v = -1;
      } catch (...) {
        v = -1;
      }
    }
    if (v < 0 || v > 255) throw CliError("--reported-tcb: \"" + item + "\" is not NAME=0..255", 2);
    const std::string name = item.substr(0, eq);
    const char* names[] = {"bl", "tee", "snp", "ucode"};
    uint8_t* fields[] = {&t.bootloader, &t.tee, &t.snp, &t.microcode};
    bool found = false;
    for (size_t i = 0; i < 4; ++i) {
      if (name == names[i]) {
        *fields[i] = static_cast<uint8_t>(v);
        seen[i] = found = true;
      }
    }
    if (!found) throw CliError("--reported-tcb: unknown component \"" + name + "\" (bl, tee, snp, ucode)", 2);
    pos = comma + 1;
  }
  for (bool b : seen) {
    if (!b) throw CliError("--reported-tcb needs all of bl=N,tee=N,snp=N,ucode=N", 2);
  }
  return t;
}

nlohmann::json TcbJson(const attest::SimSnpTcb& t) {
  return {{"bootloader", t.bootloader}, {"tee", t.tee}, {"snp", t.snp}, {"microcode", t.microcode}};
}

void RunInit(const InitArgs& a, const GlobalOptions& global) {
  auto tcb = attest::ParseSimTcb(a.tcb);
  if (!tcb.ok()) throw CliError(tcb.status().message(), 2);
  auto tee = attest::ParseSimTee(a.platform);
  if (!tee.ok()) throw CliError(tee.status().message(), 2);
  attest::SimVendorOptions options;
  options.tee = *tee;
  options.tcb = *tcb;
  options.revoked = a.revoked;
  options.collateral_validity = std::chrono::hours(24 * a.validity_days);
  if (!a.reported_tcb.empty()) {
    if (*tee != attest::SimTee::kSevSnp) throw CliError("--reported-tcb is for --platform sev-snp", 2);
    options.snp_tcb = ParseReportedTcb(a.reported_tcb);
  }
  auto vendor = attest::SimVendor::Create(a.dir, options);
  if (!vendor.ok()) throw CliError("sim init: " + vendor.status().message(), 1);
  if (const attest::SimSnpPlatform* snp = (*vendor)->snp(); snp != nullptr) {
    if (global.json()) {
      nlohmann::json j = {{"dir", a.dir},
                          {"platform", "sev-snp"},
                          {"tcb", attest::SimTcbName(*tcb)},
                          {"reported_tcb", TcbJson(snp->reported_tcb())},
                          {"product", attest::kSimSnpProductName},
                          {"chip_id", HexEncode(snp->chip_id())},
                          {"revoked", a.revoked},
                          {"insecure_sim", true}};
      std::cout << j.dump(2) << std::endl;
    } else {
      const auto& t = snp->reported_tcb();
      std::cout << "INSECURE sim SEV-SNP vendor written to " << a.dir << " (not AMD; for development and tests)\n"
                << "product:  " << attest::kSimSnpProductName << "\n"
                << "tcb:      bl=" << int(t.bootloader) << " tee=" << int(t.tee) << " snp=" << int(t.snp)
                << " ucode=" << int(t.microcode) << "\n"
                << "revoked:  " << (a.revoked ? "yes (VCEK listed in crl.der)" : "no") << "\n"
                << "chip id:  " << HexEncode(snp->chip_id()).substr(0, 16) << "...\n"
                << "verify:   vouch evidence verify --evidence EVIDENCE --collateral " << a.dir << " --allow-sim\n";
    }
    return;
  }
  const auto& p = (*vendor)->platform();
  if (global.json()) {
    nlohmann::json j = {{"dir", a.dir},
                        {"platform", attest::SimTeeName(*tee)},
                        {"tcb", attest::SimTcbName(*tcb)},
                        {"expected_tcb_status", attest::SimTcbStatus(*tcb)},
                        {"revoked", a.revoked},
                        {"fmspc", HexEncode(p.fmspc())},
                        {"insecure_sim", true}};
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << "INSECURE sim " << (*tee == attest::SimTee::kTdx ? "TDX" : "SGX") << " vendor written to " << a.dir
              << " (not Intel; for development and tests)\n"
              << "tcb:      " << attest::SimTcbName(*tcb) << " (verdict " << attest::SimTcbStatus(*tcb) << ")\n"
              << "revoked:  " << (a.revoked ? "yes" : "no") << "\n"
              << "fmspc:    " << HexEncode(p.fmspc()) << "\n"
              << "verify:   vouch evidence verify --evidence QUOTE --collateral " << a.dir << " --allow-sim\n";
  }
}

void WriteOut(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw CliError("cannot write " + path, 1);
}

void RejectOptions(const QuoteArgs& a, attest::SimTee tee) {
  auto bad = [tee](const char* flag) {
    throw CliError(std::string(flag) + " does not apply to a " + std::string(attest::SimTeeName(tee)) + " sim folder", 2);
  };
  const bool sgx_only = !a.mrenclave.empty() || !a.mrsigner.empty() || a.isvprodid != 0 || a.isvsvn != 0;
  const bool tdx_only = !a.mrtd.empty() || !a.rtmr.empty() || a.quote_version != 4 || a.td_report != "1.0";
  const bool snp_only = !a.measurement.empty() || !a.host_data.empty() || a.vmpl != 0;
  if (tee != attest::SimTee::kSgx && sgx_only) bad("--mrenclave/--mrsigner/--isvprodid/--isvsvn");
  if (tee != attest::SimTee::kTdx && tdx_only) bad("--mrtd/--rtmr/--quote-version/--td-report");
  if (tee != attest::SimTee::kSevSnp && snp_only) bad("--measurement/--host-data/--vmpl");
}

void RunTdxQuote(const attest::SimVendor& vendor, const QuoteArgs& a, std::span<const uint8_t> rd,
                 const GlobalOptions& global) {
  attest::SimTdxQuoteOptions o;
  o.version = a.quote_version;
  o.td_report_15 = a.td_report == "1.5";
  if (o.td_report_15 && o.version != 5) throw CliError("--td-report 1.5 needs --quote-version 5", 2);
  if (a.agent) {
    o.mr_td = attest::ShippedSimAgent().tdx_mrtd;
    o.rtmr = attest::ShippedSimAgent().tdx_rtmr;
  }
  HexInto("--mrtd", a.mrtd, &o.mr_td);
  for (const std::string& r : a.rtmr) {
    if (r.size() < 3 || r[0] < '0' || r[0] > '3' || r[1] != '=') throw CliError("--rtmr must be N=HEX with N 0..3", 2);
    HexInto("--rtmr " + r.substr(0, 1), r.substr(2), &o.rtmr[static_cast<size_t>(r[0] - '0')]);
  }
  o.debug = a.debug;
  auto quote = vendor.platform().TdxQuote(o, rd);
  if (!quote.ok()) throw CliError("sim quote: " + quote.status().message(), 1);
  WriteOut(a.out, *quote);
  if (global.json()) {
    std::cout << nlohmann::json({{"out", a.out}, {"platform", "tdx"}, {"quote_version", o.version}, {"bytes", quote->size()},
                                 {"insecure_sim", true}})
                     .dump(2)
              << std::endl;
  } else {
    std::cout << "wrote INSECURE sim TDX quote v" << o.version << " (TD report " << (o.td_report_15 ? "1.5" : "1.0") << ", "
              << quote->size() << " bytes) to " << a.out << "\n";
  }
}

void RunSnpEvidence(const attest::SimVendor& vendor, const QuoteArgs& a, std::span<const uint8_t> rd,
                    const GlobalOptions& global) {
  attest::SimSnpReportOptions o;
  if (a.agent) o.measurement = attest::ShippedSimAgent().snp_measurement;
  HexInto("--measurement", a.measurement, &o.measurement);
  HexInto("--host-data", a.host_data, &o.host_data);
  o.vmpl = static_cast<uint32_t>(a.vmpl);
  o.debug = a.debug;
  auto ev = vendor.snp()->Evidence(o, rd);
  if (!ev.ok()) throw CliError("sim quote: " + ev.status().message(), 1);
  WriteOut(a.out, *ev);
  if (global.json()) {
    std::cout << nlohmann::json({{"out", a.out},
                                 {"platform", "sev-snp"},
                                 {"bytes", ev->size()},
                                 {"report_bytes", evidence::kSnpReportSize},
                                 {"cert_table_bytes", ev->size() - evidence::kSnpReportSize},
                                 {"insecure_sim", true}})
                     .dump(2)
              << std::endl;
  } else {
    std::cout << "wrote INSECURE sim SEV-SNP evidence (report " << evidence::kSnpReportSize << " bytes + certificate table "
              << ev->size() - evidence::kSnpReportSize << " bytes) to " << a.out << "\n";
  }
}

void RunQuote(const QuoteArgs& a, const GlobalOptions& global) {
  auto vendor = attest::SimVendor::Load(a.sim);
  if (!vendor.ok()) throw CliError("sim quote: " + vendor.status().message(), 1);
  auto rd = HexDecode(a.report_data);
  if (!rd.ok() || rd->size() > 64) throw CliError("--report-data must be at most 64 bytes of hex", 2);
  RejectOptions(a, (*vendor)->tee());
  if ((*vendor)->tee() == attest::SimTee::kTdx) return RunTdxQuote(**vendor, a, *rd, global);
  if ((*vendor)->tee() == attest::SimTee::kSevSnp) return RunSnpEvidence(**vendor, a, *rd, global);
  evidence::SgxReportBody body;
  if (a.agent) {  // the shipped sim vouch-agent's identity; --mrenclave / --mrsigner still override
    body.mr_enclave = attest::ShippedSimAgent().mrenclave;
    body.mr_signer = attest::ShippedSimAgent().mrsigner;
  }
  HexInto("--mrenclave", a.mrenclave, &body.mr_enclave);
  HexInto("--mrsigner", a.mrsigner, &body.mr_signer);
  if (a.isvprodid < 0 || a.isvprodid > 0xFFFF || a.isvsvn < 0 || a.isvsvn > 0xFFFF) {
    throw CliError("--isvprodid and --isvsvn must be 0..65535", 2);
  }
  body.isv_prod_id = static_cast<uint16_t>(a.isvprodid);
  body.isv_svn = static_cast<uint16_t>(a.isvsvn);
  body.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit | (a.debug ? evidence::kSgxFlagDebug : 0);
  body.attribute_xfrm = 0x3;
  auto quote = (*vendor)->platform().Quote(body, *rd);
  if (!quote.ok()) throw CliError("sim quote: " + quote.status().message(), 1);
  WriteOut(a.out, *quote);
  if (global.json()) {
    std::cout << nlohmann::json({{"out", a.out}, {"bytes", quote->size()}, {"insecure_sim", true}}).dump(2) << std::endl;
  } else {
    std::cout << "wrote INSECURE sim SGX quote v3 (" << quote->size() << " bytes) to " << a.out << "\n";
  }
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto* group = root.add_subcommand("sim", "The INSECURE simulated TEE vendor (development and tests)");
  group->require_subcommand(1);
  auto init = std::make_shared<InitArgs>();
  auto* i = group->add_subcommand("init", "Create a sim TEE vendor (root CA, collateral) and one platform in DIR");
  i->add_option("dir", init->dir, "Folder to create")->required();
  i->add_option("--platform", init->platform, "TEE to emulate")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgx", "tdx", "sev-snp"}));
  i->add_option("--reported-tcb", init->reported_tcb,
                "sev-snp: the reported TCB, bl=N,tee=N,snp=N,ucode=N (default from --tcb)");
  i->add_option("--tcb", init->tcb, "Platform TCB level")
      ->check(CLI::IsMember({"up-to-date", "out-of-date", "sw-hardening-needed"}));
  i->add_flag("--revoked", init->revoked,
              "List the platform's PCK certificate in the PCK CRL (sev-snp: the VCEK in the ARK's CRL)");
  i->add_option("--validity-days", init->validity_days, "Lifetime of the CRLs, TCB Info and QE Identity")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  i->callback([init, &global] { RunInit(*init, global); });

  auto quote = std::make_shared<QuoteArgs>();
  auto* q = group->add_subcommand(
      "quote", "Write evidence of the folder's platform: SGX quote v3, TDX quote v4/v5, or SEV-SNP report + certificate table");
  q->add_option("--sim", quote->sim, "Sim vendor folder (from `vouch sim init`)")->required();
  q->add_option("--report-data", quote->report_data, "Report data, hex, up to 64 bytes")->required();
  q->add_option("--mrenclave", quote->mrenclave, "MRENCLAVE, 64 hex digits");
  q->add_option("--mrsigner", quote->mrsigner, "MRSIGNER, 64 hex digits");
  q->add_option("--isvprodid", quote->isvprodid, "ISV product id");
  q->add_option("--isvsvn", quote->isvsvn, "ISV security version");
  q->add_flag("--debug", quote->debug, "Set the DEBUG attribute (TDX: TD_ATTRIBUTES.DEBUG; SEV-SNP: policy DEBUG)");
  q->add_flag("--agent", quote->agent,
              "Quote as the shipped sim vouch-agent (SGX: its MRENCLAVE and MRSIGNER; TDX: its MRTD; SEV-SNP: its "
              "MEASUREMENT; docs/agent.md, \"Node identity\")");
  q->add_option("--mrtd", quote->mrtd, "TDX: MRTD, 96 hex digits");
  q->add_option("--rtmr", quote->rtmr, "TDX: RTMR N, as N=HEX (96 hex digits); repeatable");
  q->add_option("--quote-version", quote->quote_version, "TDX: quote version")->check(CLI::IsMember({4, 5}));
  q->add_option("--td-report", quote->td_report, "TDX: TD report body (1.5 needs --quote-version 5)")
      ->check(CLI::IsMember({"1.0", "1.5"}));
  q->add_option("--measurement", quote->measurement, "SEV-SNP: MEASUREMENT, 96 hex digits");
  q->add_option("--host-data", quote->host_data, "SEV-SNP: HOST_DATA, 64 hex digits");
  q->add_option("--vmpl", quote->vmpl, "SEV-SNP: VMPL of the requester")->check(CLI::Range(0, 3));
  q->add_option("--out", quote->out, "Output file")->required();
  q->callback([quote, &global] { RunQuote(*quote, global); });

  auto recovery = std::make_shared<RecoveryArgs>();
  auto* r = group->add_subcommand(
      "tcb-recovery", "Publish new TCB Info in DIR under which this sim platform is OutOfDate (tests of TCB recovery)");
  r->add_option("dir", recovery->dir, "Sim vendor folder")->required();
  r->callback([recovery, &global] { RunTcbRecovery(*recovery, global); });

  RegisterSimTsm(group, global);
  RegisterSimPcs(group, global);
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(sim, vouch::cli::Register);
