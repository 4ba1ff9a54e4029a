// vouch sim init | quote: the INSECURE simulated TEE vendor (docs/sim.md).
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

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

namespace vouch::cli {
namespace {

struct InitArgs {
  std::string dir;
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

void RunInit(const InitArgs& a, const GlobalOptions& global) {
  auto tcb = attest::ParseSimTcb(a.tcb);
  if (!tcb.ok()) throw CliError(tcb.status().message(), 2);
  attest::SimVendorOptions options;
  options.tcb = *tcb;
  options.revoked = a.revoked;
  options.collateral_validity = std::chrono::hours(24 * a.validity_days);
  auto vendor = attest::SimVendor::Create(a.dir, options);
  if (!vendor.ok()) throw CliError("sim init: " + vendor.status().message(), 1);
  const auto& p = (*vendor)->platform();
  if (global.json()) {
    nlohmann::json j = {{"dir", a.dir},
                        {"tcb", attest::SimTcbName(*tcb)},
                        {"expected_tcb_status", attest::SimTcbStatus(*tcb)},
                        {"revoked", a.revoked},
                        {"fmspc", HexEncode(p.fmspc())},
                        {"insecure_sim", true}};
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << "INSECURE sim TEE vendor written to " << a.dir << " (not Intel; for development and tests)\n"
              << "tcb:      " << attest::SimTcbName(*tcb) << " (verdict " << attest::SimTcbStatus(*tcb) << ")\n"
              << "revoked:  " << (a.revoked ? "yes" : "no") << "\n"
              << "fmspc:    " << HexEncode(p.fmspc()) << "\n"
              << "verify:   vouch evidence verify --evidence QUOTE --collateral " << a.dir << " --allow-sim\n";
  }
}

void RunQuote(const QuoteArgs& a, const GlobalOptions& global) {
  auto vendor = attest::SimVendor::Load(a.sim);
  if (!vendor.ok()) throw CliError("sim quote: " + vendor.status().message(), 1);
  auto rd = HexDecode(a.report_data);
  if (!rd.ok() || rd->size() > 64) throw CliError("--report-data must be at most 64 bytes of hex", 2);
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
  std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(quote->data()), static_cast<std::streamsize>(quote->size()));
  if (!f) throw CliError("cannot write " + a.out, 1);
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
  i->add_option("--tcb", init->tcb, "Platform TCB level")
      ->check(CLI::IsMember({"up-to-date", "out-of-date", "sw-hardening-needed"}));
  i->add_flag("--revoked", init->revoked, "List the platform's PCK certificate in the PCK CRL");
  i->add_option("--validity-days", init->validity_days, "Lifetime of the CRLs, TCB Info and QE Identity")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  i->callback([init, &global] { RunInit(*init, global); });

  auto quote = std::make_shared<QuoteArgs>();
  auto* q = group->add_subcommand("quote", "Write an SGX quote v3 from the sim platform");
  q->add_option("--sim", quote->sim, "Sim vendor folder (from `vouch sim init`)")->required();
  q->add_option("--report-data", quote->report_data, "Report data, hex, up to 64 bytes")->required();
  q->add_option("--mrenclave", quote->mrenclave, "MRENCLAVE, 64 hex digits");
  q->add_option("--mrsigner", quote->mrsigner, "MRSIGNER, 64 hex digits");
  q->add_option("--isvprodid", quote->isvprodid, "ISV product id");
  q->add_option("--isvsvn", quote->isvsvn, "ISV security version");
  q->add_flag("--debug", quote->debug, "Set the DEBUG attribute");
  q->add_flag("--agent", quote->agent,
              "Quote as the shipped sim vouch-agent (its MRENCLAVE and MRSIGNER; docs/agent.md, \"Node identity\")");
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
