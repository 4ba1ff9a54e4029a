// vouch zone create | list | get | update | ca | crl | join-token | join-tokens
#include <iostream>

#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<std::string> kTcbStatuses = {"UpToDate",  "SWHardeningNeeded", "ConfigurationNeeded",
                                               "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                                               "OutOfDateConfigurationNeeded"};

// Policy flags shared by create and update; only flags given on the command line go in the body.
struct PolicyArgs {
  std::string allow_sim;  // create: flag; update: true|false
  std::string allow_debug;
  std::string min_tcb;
  int approvals = 0;
  int cert_validity_hours = 0;
  std::vector<std::string> advisories;
  bool clear_advisories = false;
  CLI::Option* approvals_opt = nullptr;
  CLI::Option* validity_opt = nullptr;
  CLI::Option* advisories_opt = nullptr;
};

void AddPolicyOptions(CLI::App* cmd, PolicyArgs& a, bool update) {
  if (update) {
    cmd->add_option("--allow-sim", a.allow_sim, "Accept simulated-TEE evidence (insecure)")
        ->check(CLI::IsMember({"true", "false"}));
    cmd->add_option("--allow-debug", a.allow_debug, "Accept debug-mode enclaves")
        ->check(CLI::IsMember({"true", "false"}));
    cmd->add_flag("--clear-advisories", a.clear_advisories, "Tolerate no advisories");
  } else {
    cmd->add_flag_callback("--allow-sim", [&a] { a.allow_sim = "true"; }, "Accept simulated-TEE evidence (insecure)");
    cmd->add_flag_callback("--allow-debug", [&a] { a.allow_debug = "true"; }, "Accept debug-mode enclaves");
  }
  cmd->add_option("--min-tcb", a.min_tcb, "Weakest accepted TCB status")->check(CLI::IsMember(kTcbStatuses));
  a.approvals_opt =
      cmd->add_option("--approvals", a.approvals, "Distinct approvals a build needs")->check(CLI::PositiveNumber);
  a.validity_opt = cmd->add_option("--cert-validity-hours", a.cert_validity_hours, "Workload certificate validity")
                       ->check(CLI::PositiveNumber);
  a.advisories_opt = cmd->add_option("--tolerated-advisory", a.advisories,
                                     "Advisory ID tolerated with SWHardeningNeeded (repeatable), e.g. INTEL-SA-00615");
}

json PolicyBody(const PolicyArgs& a) {
  json body = json::object();
  if (!a.allow_sim.empty()) body["allow_sim"] = a.allow_sim == "true";
  if (!a.allow_debug.empty()) body["allow_debug"] = a.allow_debug == "true";
  if (!a.min_tcb.empty()) body["min_tcb"] = a.min_tcb;
  if (a.approvals_opt->count() > 0) body["approvals_required"] = a.approvals;
  if (a.validity_opt->count() > 0) body["cert_validity_hours"] = a.cert_validity_hours;
  if (a.advisories_opt->count() > 0) body["tolerated_advisories"] = a.advisories;
  if (a.clear_advisories) {
    if (a.advisories_opt->count() > 0) UsageError("--clear-advisories and --tolerated-advisory exclude each other");
    body["tolerated_advisories"] = json::array();
  }
  return body;
}

const std::vector<client::Column> kZoneColumns = {
    {"NAME", "/name"},
    {"ID", "/id"},
    {"MIN_TCB", "/policy/min_tcb"},
    {"ALLOW_SIM", "/policy/allow_sim"},
    {"APPROVALS", "/policy/approvals_required"},
    {"CERT_HOURS", "/policy/cert_validity_hours"},
    {"CREATED", "/created_at"},
};

const std::vector<client::Column> kJoinTokenColumns = {
    {"ID", "/id"}, {"ZONE", "/zone"}, {"USES_LEFT", "/uses_left"}, {"EXPIRES", "/expires_at"}, {"CREATED", "/created_at"},
};

struct ZoneArgs {
  std::string name;
  PolicyArgs create_policy;
  PolicyArgs update_policy;
  std::string crl_out;
  std::string ca_out;
  int ttl = 3600;
  int uses = 1;
  CLI::Option* ttl_opt = nullptr;
  CLI::Option* uses_opt = nullptr;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<ZoneArgs>();
  CLI::App* zone = AddGroup(root, "zone", "Zones: trust domains, each with its own root CA and policy");

  CLI::App* create = zone->add_subcommand("create", "Create a zone and its root CA (admin)");
  create->add_option("name", a->name, "Zone name")->required();
  AddPolicyOptions(create, a->create_policy, /*update=*/false);
  create->callback([&global, a] {
    json body = PolicyBody(a->create_policy);
    body["name"] = a->name;
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"zones"}), body)));
  });

  CLI::App* list = zone->add_subcommand("list", "List zones");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"zones"}), a->limit), kZoneColumns);
  });

  CLI::App* get = zone->add_subcommand("get", "Show a zone");
  get->add_option("name", a->name, "Zone name or id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"zones", a->name}))));
  });

  CLI::App* update = zone->add_subcommand("update", "Change a zone's policy (admin)");
  update->add_option("name", a->name, "Zone name or id")->required();
  AddPolicyOptions(update, a->update_policy, /*update=*/true);
  update->callback([&global, a] {
    json body = PolicyBody(a->update_policy);
    if (body.empty()) UsageError("zone update: give at least one policy option (see --help)");
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Patch(ApiPath({"zones", a->name}), body)));
  });

  CLI::App* ca = zone->add_subcommand("ca", "Print the zone's root CA certificate (PEM)");
  ca->add_option("name", a->name, "Zone name or id")->required();
  ca->add_option("--out", a->ca_out, "Write the PEM to FILE instead of stdout");
  ca->callback([&global, a] {
    Session s = Connect(global, /*need_token=*/false);
    const std::string pem = Check(s.api->GetRaw(ApiPath({"zones", a->name, "ca"})));
    if (a->ca_out.empty()) {
      std::cout << pem;
    } else {
      WriteFileOrDie(a->ca_out, pem, 0644);
    }
  });

  CLI::App* crl = zone->add_subcommand("crl", "Print the zone's CRL as PEM, or write it as DER with --out");
  crl->add_option("name", a->name, "Zone name or id")->required();
  crl->add_option("--out", a->crl_out, "Write the CRL in DER form to FILE");
  crl->callback([&global, a] {
    Session s = Connect(global, /*need_token=*/false);
    if (a->crl_out.empty()) {
      std::cout << Check(s.api->GetRaw(WithQuery(ApiPath({"zones", a->name, "crl"}), {{"format", "pem"}})));
    } else {
      WriteFileOrDie(a->crl_out, Check(s.api->GetRaw(ApiPath({"zones", a->name, "crl"}))), 0644);
    }
  });

  CLI::App* token = zone->add_subcommand("join-token", "Create a node join token; prints the token alone (admin)");
  token->add_option("name", a->name, "Zone name or id")->required();
  a->ttl_opt = token->add_option("--ttl", a->ttl, "Validity in seconds (server default 3600)")->check(CLI::PositiveNumber);
  a->uses_opt = token->add_option("--uses", a->uses, "Number of nodes it may provision (server default 1)")
                    ->check(CLI::PositiveNumber);
  token->callback([&global, a] {
    json body = json::object();
    if (a->ttl_opt->count() > 0) body["ttl_seconds"] = a->ttl;
    if (a->uses_opt->count() > 0) body["uses"] = a->uses;
    Session s = Connect(global);
    json created = Check(s.api->Post(ApiPath({"zones", a->name, "join-tokens"}), body));
    if (global.json()) {
      PrintJson(created);
    } else {
      if (!created.value("token", json()).is_string()) throw CliError("the server's answer has no token");
      std::cout << created["token"].get<std::string>() << "\n";
    }
  });

  CLI::App* tokens = zone->add_subcommand("join-tokens", "List a zone's join tokens, without secrets (admin)");
  tokens->add_option("name", a->name, "Zone name or id")->required();
  AddLimitOption(tokens, a->limit);
  tokens->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"zones", a->name, "join-tokens"}), a->limit), kJoinTokenColumns);
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(zone, vouch::cli::Register);
