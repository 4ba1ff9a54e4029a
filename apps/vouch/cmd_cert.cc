// vouch cert list | counts | get | revoke | issue
#include <iostream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kCertColumns = {
    {"SERIAL", "/serial"},       {"APP", "/app"},     {"ZONE", "/zone"}, {"STATUS", "/status"},
    {"NOT_AFTER", "/not_after"}, {"SUBJECT", "/subject"},
};

struct CertArgs {
  std::string serial;
  std::string app;
  std::string zone;
  std::string status;
  std::string reason;
  std::string build;
  std::string csr_file;
  std::string out;
  bool pem = false;
  size_t limit = 0;
  int expiring_days = 0;
};

// A certificate: its PEM alone with --pem, else the object (PEMs left out of the table view).
void PrintCertificate(const GlobalOptions& global, const json& cert, bool pem_only) {
  if (pem_only) {
    if (!cert.value("pem", json()).is_string()) throw CliError("the certificate has no PEM");
    std::cout << cert["pem"].get<std::string>();
    return;
  }
  PrintObject(global, cert, {"pem", "ca_pem"});
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<CertArgs>();
  CLI::App* cert = AddGroup(root, "cert", "Workload certificates");

  CLI::App* list = cert->add_subcommand("list", "List certificates");
  list->add_option("--app", a->app, "Only certificates of this app");
  list->add_option("--zone", a->zone, "Only certificates of this zone");
  list->add_option("--status", a->status, "Only certificates with this status")
      ->check(CLI::IsMember({"valid", "revoked", "expired"}));
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    const std::string path =
        WithQuery(ApiPath({"certificates"}), {{"app", a->app}, {"zone", a->zone}, {"status", a->status}});
    PrintList(global, FetchList(s, path, a->limit), kCertColumns);
  });

  CLI::App* counts = cert->add_subcommand("counts", "Count certificates by status, and those expiring soon");
  counts->add_option("--expiring-within-days", a->expiring_days, "Window for the expiring count (days)")
      ->check(CLI::Range(1, 3650));
  counts->callback([&global, a] {
    Session s = Connect(global);
    const std::string days = a->expiring_days > 0 ? std::to_string(a->expiring_days) : std::string();
    PrintObject(global,
                Check(s.api->Get(WithQuery(ApiPath({"certificates", "counts"}), {{"expiring_within_days", days}}))));
  });

  CLI::App* get = cert->add_subcommand("get", "Show a certificate");
  get->add_option("serial", a->serial, "Serial number (hex)")->required();
  get->add_flag("--pem", a->pem, "Print only the certificate PEM");
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintCertificate(global, Check(s.api->Get(ApiPath({"certificates", a->serial}))), a->pem);
  });

  CLI::App* revoke = cert->add_subcommand("revoke", "Revoke a certificate; it appears on the zone CRL (admin)");
  revoke->add_option("serial", a->serial, "Serial number (hex)")->required();
  revoke->add_option("--reason", a->reason, "Why (recorded in the audit log)");
  revoke->callback([&global, a] {
    json body = json::object();
    if (!a->reason.empty()) body["reason"] = a->reason;
    Session s = Connect(global);
    PrintCertificate(global, Check(s.api->Post(ApiPath({"certificates", a->serial, "revoke"}), body)), false);
  });

  CLI::App* issue = cert->add_subcommand("issue", "Issue a certificate for a CSR under an approved build (admin)");
  issue->add_option("--build", a->build, "Build id")->required();
  issue->add_option("--csr", a->csr_file, "PKCS#10 CSR in PEM form (- for stdin)")->required();
  issue->add_option("--out", a->out, "Also write the certificate PEM to FILE");
  issue->add_flag("--pem", a->pem, "Print only the certificate PEM");
  issue->callback([&global, a] {
    const std::string csr = ReadFileOrDie(a->csr_file, "CSR");
    Session s = Connect(global);
    json issued = Check(s.api->Post(ApiPath({"certificates"}), {{"build_id", a->build}, {"csr", csr}}));
    if (!a->out.empty()) {
      if (!issued.value("pem", json()).is_string()) throw CliError("the issued certificate has no PEM");
      WriteFileOrDie(a->out, issued["pem"].get<std::string>(), 0644);
    }
    PrintCertificate(global, issued, a->pem);
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(cert, vouch::cli::Register);
