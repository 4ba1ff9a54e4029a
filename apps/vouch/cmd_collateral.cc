// vouch collateral list | refresh | import DIR | export DIR (docs/cli.md, docs/collateral.md), and
// the --server path of `vouch evidence verify`.
#include "cmd_collateral.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "base/encoding.h"
#include "base/file.h"
#include "cmd_common.h"

namespace vouch::cli {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxImportFileBytes = 4 << 20;
constexpr char kSimSecretsFile[] = "sim-secrets.json";  // a sim vendor's private keys: never sent

// The key column: an FMSPC, a CA type, an AMD product or "product/chip/TCB" (chip shortened).
std::string KeyCell(const json& item) {
  std::string key = item.value("key", "");
  size_t slash = key.find('/');
  if (slash != std::string::npos) {
    size_t second = key.find('/', slash + 1);
    std::string chip = key.substr(slash + 1, second == std::string::npos ? std::string::npos : second - slash - 1);
    if (chip.size() > 16) chip = chip.substr(0, 16) + "…";
    key = key.substr(0, slash) + "/" + chip + (second == std::string::npos ? "" : key.substr(second));
  }
  return key;
}

std::string StateCell(const json& item) {
  std::string s = item.value("state", "");
  if (item.value("sim", false)) s += " (INSECURE sim)";
  return s;
}

const std::vector<client::Column> kCollateralColumns = {
    {"KIND", "/kind"},
    {"FMSPC/CHIP", "", KeyCell},
    {"ISSUED", "/issue_date"},
    {"NEXT UPDATE", "/next_update"},
    {"SOURCE", "/source"},
    {"STATE", "", StateCell},
    {"EVAL", "/tcb_evaluation_data_number"},
};

const std::vector<client::Column> kOutcomeColumns = {
    {"KIND", "/kind"}, {"KEY", "", KeyCell}, {"RESULT", "/result"}, {"REASON", "/reason"}, {"ORIGIN", "/origin"},
};

// A refresh or import answer: the outcomes, a count line; exits 4 when an item was refused or
// could not be fetched (the last good copy stays in use).
void PrintReport(const GlobalOptions& global, const json& report, const std::string& what) {
  if (global.json()) {
    PrintJson(report);
  } else {
    json outcomes = report.value("outcomes", json::array());
    if (!outcomes.empty()) std::cout << client::RenderTable(outcomes, kOutcomeColumns);
    std::cout << what << ": " << report.value("stored", 0) << " stored, " << report.value("unchanged", 0)
              << " unchanged, " << report.value("refused", 0) << " refused, " << report.value("failed", 0)
              << " failed\n";
  }
  int bad = report.value("refused", 0) + report.value("failed", 0);
  if (bad > 0) {
    std::cout.flush();
    throw CliError(what + ": " + std::to_string(bad) + " item(s) refused or not fetched", kExitCheckFailed);
  }
}

struct CollateralArgs {
  std::string kind;
  std::string key;
  bool all_versions = false;
  size_t limit = 0;
  std::string dir;
};

void RunImport(const CollateralArgs& a, const GlobalOptions& global) {
  std::error_code ec;
  if (!fs::is_directory(a.dir, ec)) UsageError(a.dir + " is not a directory");
  json files = json::object();
  std::vector<std::string> skipped;
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(a.dir, ec)) paths.push_back(e.path());
  if (ec) throw CliError("cannot list " + a.dir + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const std::string name = p.filename().string();
    if (name == kSimSecretsFile) {
      skipped.push_back(name + " (a sim vendor's private keys)");
      continue;
    }
    std::error_code fe;
    if (name.empty() || name[0] == '.' || !fs::is_regular_file(p, fe) || p.extension() == ".md") continue;
    if (fs::file_size(p, fe) > kMaxImportFileBytes) {
      skipped.push_back(name + " (larger than 4 MiB)");
      continue;
    }
    std::string bytes = ReadFileOrDie(p.string(), "collateral file");
    files[name] = Base64Encode(AsBytes(bytes));
  }
  for (const auto& s : skipped) std::fprintf(stderr, "vouch: not sent: %s\n", s.c_str());
  if (files.empty()) UsageError(a.dir + " holds no files to import");
  Session s = Connect(global);
  std::string origin = fs::absolute(a.dir, ec).string();
  json report = Check(s.api->Post(ApiPath({"collateral", "import"}), json{{"files", files}, {"origin", origin}}));
  PrintReport(global, report, "import " + a.dir);
}

void RunExport(const CollateralArgs& a, const GlobalOptions& global) {
  Session s = Connect(global);
  json answer = Check(s.api->Get(ApiPath({"collateral", "export"})));
  if (!answer.is_object() || !answer.value("files", json()).is_object()) {
    throw CliError("the server's export answer has no \"files\" object");
  }
  Check(MakeDirs(a.dir, 0755), "export " + a.dir);
  size_t written = 0;
  for (const auto& [name, b64] : answer["files"].items()) {
    // Plain file names only: a hostile server must not write outside DIR.
    bool plain = !name.empty() && name[0] != '.' && name.size() <= 255 &&
                 std::all_of(name.begin(), name.end(), [](unsigned char c) {
                   return std::isalnum(c) || c == '.' || c == '_' || c == '-';
                 });
    if (!plain || !b64.is_string()) throw CliError("the server's export holds a bad file name or body");
    auto bytes = Base64Decode(b64.get<std::string>());
    if (!bytes.ok()) throw CliError("the server's export of " + name + " is not base64");
    WriteFileOrDie(a.dir + "/" + name, ToString(*bytes), 0644);
    ++written;
  }
  if (global.json()) {
    PrintJson(json{{"dir", a.dir}, {"files", written}});
  } else {
    std::cout << "wrote " << written << " files to " << a.dir << " (import them with: vouch collateral import "
              << a.dir << ")\n";
  }
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<CollateralArgs>();
  CLI::App* group = AddGroup(root, "collateral",
                             "The collateral service: Intel PCS/PCCS and AMD KDS collateral kept by vouchd");

  CLI::App* list = group->add_subcommand("list", "List the collateral vouchd holds (kind, FMSPC or chip, dates, "
                                                 "source, state)");
  list->add_option("--kind", a->kind, "Only this kind (sgx_tcb_info, tdx_tcb_info, qe_identity, td_qe_identity, "
                                      "pck_crl, root_ca_crl, amd_vcek, amd_cert_chain, amd_crl)");
  list->add_option("--key", a->key, "Only this key (an FMSPC, processor/platform, an AMD product, ...)");
  list->add_flag("--all-versions", a->all_versions, "Every stored version, not only the current ones");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    std::string path = WithQuery(ApiPath({"collateral"}),
                                 {{"kind", a->kind}, {"key", a->key}, {"versions", a->all_versions ? "all" : ""}});
    PrintList(global, FetchList(s, path, a->limit), kCollateralColumns);
  });

  CLI::App* refresh = group->add_subcommand(
      "refresh", "Fetch collateral again now (every held item, or --kind/--key); exits 4 if any is refused or fails");
  refresh->add_option("--kind", a->kind, "Only this kind");
  refresh->add_option("--key", a->key, "Only this key (with --kind)");
  refresh->callback([&global, a] {
    if (!a->key.empty() && a->kind.empty()) UsageError("--key needs --kind");
    json body = json::object();
    if (!a->kind.empty()) body["kind"] = a->kind;
    if (!a->key.empty()) body["key"] = a->key;
    Session s = Connect(global);
    PrintReport(global, Check(s.api->Post(ApiPath({"collateral", "refresh"}), body)), "refresh");
  });

  CLI::App* import = group->add_subcommand(
      "import", "Import a folder of collateral (PCS files, a sim vendor folder, or an export); each item is verified");
  import->add_option("DIR", a->dir, "The folder")->required();
  import->callback([&global, a] { RunImport(*a, global); });

  CLI::App* exp = group->add_subcommand("export", "Write every stored version of the collateral to a folder");
  exp->add_option("DIR", a->dir, "The folder (created if missing)")->required();
  exp->callback([&global, a] { RunExport(*a, global); });
}

}  // namespace

bool ServerFlagOnCommandLine() {
  // `--server` may also come from $VOUCH_SERVER, set for the API commands; `vouch evidence verify`
  // stays offline unless the flag itself is on the command line (INTERFACES.md).
  std::string args = ReadFileOrDie("/proc/self/cmdline", "/proc/self/cmdline");
  size_t start = 0;
  while (start < args.size()) {
    size_t end = args.find('\0', start);
    if (end == std::string::npos) end = args.size();
    std::string_view arg(args.data() + start, end - start);
    if (arg == "--") return false;
    if (arg == "--server" || arg.rfind("--server=", 0) == 0) return true;
    start = end + 1;
  }
  return false;
}

void VerifyEvidenceOnServer(const std::string& evidence_file, const std::string& at, bool local_flags,
                            const GlobalOptions& global) {
  if (local_flags) UsageError("--collateral, --trust-root and --allow-sim are for local verification, not --server");
  std::string bytes = ReadFileOrDie(evidence_file, "--evidence");
  json body = {{"evidence", Base64Encode(AsBytes(bytes))}};
  if (!at.empty()) body["at"] = at;
  Session s = Connect(global);
  json v = Check(s.api->Post(ApiPath({"evidence", "verify"}), body));
  if (!v.is_object() || !v.value("genuine", json()).is_boolean()) {
    throw CliError("the server's verdict has no \"genuine\" field");
  }
  const bool genuine = v["genuine"].get<bool>();
  const std::string tcb = v.value("tcb_status", json()).is_string() ? v["tcb_status"].get<std::string>() : "";
  if (global.json()) {
    std::cout << v.dump(2) << std::endl;
  } else {
    std::cout << "evidence:      " << evidence_file << "\n";
    std::cout << "verified by:   " << s.api->current_base_url() << "\n";
    std::cout << "platform:      " << client::CellText(v.value("platform", json())) << "\n";
    std::cout << "genuine:       " << (genuine ? "yes" : "NO") << "\n";
    if (v.value("insecure_sim", false)) std::cout << "WARNING:       insecure-sim (simulated TEE, not real hardware)\n";
    if (genuine) {
      std::cout << "tcb status:    " << (tcb.empty() ? "-" : tcb) << "\n";
      std::string adv;
      for (const auto& x : v.value("advisory_ids", json::array())) adv += (adv.empty() ? "" : ", ") + client::CellText(x);
      std::cout << "advisories:    " << (adv.empty() ? "-" : adv) << "\n";
    } else if (v.value("error", json()).is_object()) {
      std::cout << "error:         " << client::CellText(v["error"].value("code", json())) << ": "
                << client::Sanitize(client::CellText(v["error"].value("message", json()))) << "\n";
    }
    std::cout.flush();
  }
  // The exit codes of the local verification (attest::Verdict::ExitCode).
  int code = 1;
  if (!genuine) {
    code = 2;
  } else {
    for (const char* ok : {"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}) {
      if (tcb == ok) code = 0;
    }
  }
  if (code == 2 && v.value("error", json()).is_object()) {
    std::fprintf(stderr, "vouch: evidence not genuine: %s\n", client::CellText(v["error"].value("code", json())).c_str());
  }
  if (code != 0) throw CliExit(code);
}

}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(collateral, vouch::cli::Register);
