// vouch zone create | list | get | update | ca | cas | ca-rotate | ca-activate | ca-bundle | crl | join-token | join-tokens | node-identity add|list|remove
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

const std::vector<client::Column> kZoneCaColumns = {
    {"ID", "/id"},           {"STATUS", "/status"},         {"NOT_AFTER", "/ca/not_after"}, {"SHA256", "/ca/sha256"},
    {"ACTIVATED", "/activated_at"}, {"RETIRED", "/retired_at"}, {"TASK", "/task_id"},
};

const std::vector<client::Column> kJoinTokenColumns = {
    {"ID", "/id"}, {"ZONE", "/zone"}, {"USES_LEFT", "/uses_left"}, {"EXPIRES", "/expires_at"}, {"CREATED", "/created_at"},
};

const std::vector<client::Column> kNodeIdentityColumns = {
    {"ID", "/id"},         {"PLATFORM", "/platform"},     {"STATUS", "/status"},          {"MRENCLAVE", "/rule/mrenclave"},
    {"MRSIGNER", "/rule/mrsigner"}, {"MRTD", "/rule/mrtd"}, {"MEASUREMENT", "/rule/measurement"}, {"TASK", "/task_id"},
};

// `zone node-identity add`: the rule's fields; the server validates the combination.
struct IdentityArgs {
  std::string platform = "sgx";
  std::string mrenclave, mrsigner, mrtd, measurement, host_data, note;
  std::string rtmr[4];
  int isvprodid = 0;
  int min_isvsvn = 0;
  CLI::Option* isvprodid_opt = nullptr;
  CLI::Option* min_isvsvn_opt = nullptr;
  std::string id;
};

json IdentityRule(const IdentityArgs& a) {
  json rule = {{"platform", a.platform}};
  auto put = [&rule](const char* key, const std::string& v) {
    if (!v.empty()) rule[key] = v;
  };
  put("mrenclave", a.mrenclave);
  put("mrsigner", a.mrsigner);
  put("mrtd", a.mrtd);
  for (int i = 0; i < 4; ++i) put(("rtmr" + std::to_string(i)).c_str(), a.rtmr[i]);
  put("measurement", a.measurement);
  put("host_data", a.host_data);
  if (a.isvprodid_opt->count() > 0) rule["isvprodid"] = a.isvprodid;
  if (a.min_isvsvn_opt->count() > 0) rule["min_isvsvn"] = a.min_isvsvn;
  return rule;
}

struct ZoneArgs {
  std::string name;
  PolicyArgs create_policy;
  PolicyArgs update_policy;
  std::string crl_out;
  std::string crl_ca;  // zone CA id: a retired or next root's CRL
  std::string ca_out;
  int ttl = 3600;
  int uses = 1;
  CLI::Option* ttl_opt = nullptr;
  CLI::Option* uses_opt = nullptr;
  size_t limit = 0;
  IdentityArgs identity;
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
  crl->add_option("--ca", a->crl_ca, "The CRL of this root (a zone CA id from ca-activate: a retired or next root)");
  crl->callback([&global, a] {
    Session s = Connect(global, /*need_token=*/false);
    std::string path = ApiPath({"zones", a->name, "crl"});
    if (!a->crl_ca.empty()) path = WithQuery(path, {{"ca", a->crl_ca}});
    if (a->crl_out.empty()) {
      path += (path.find('?') == std::string::npos ? "?" : "&") + std::string("format=pem");
      std::cout << Check(s.api->GetRaw(path));
    } else {
      WriteFileOrDie(a->crl_out, Check(s.api->GetRaw(path)), 0644);
    }
  });

  // Zone CA rotation (docs/operations.md "Rotating a zone CA").
  CLI::App* rotate = zone->add_subcommand("ca-rotate", "Make the zone's next root CA; pending until its approval task "
                                                       "reaches the zone's quorum (admin)");
  rotate->add_option("name", a->name, "Zone name or id")->required();
  rotate->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"zones", a->name, "ca", "rotate"}), json::object())));
  });
  CLI::App* activate = zone->add_subcommand("ca-activate", "Make the approved next root CA the zone's issuer; the "
                                                           "previous root stays trusted until its certificates expire (admin)");
  activate->add_option("name", a->name, "Zone name or id")->required();
  activate->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"zones", a->name, "ca", "activate"}), json::object())));
  });
  CLI::App* cas = zone->add_subcommand("cas", "List the zone's root CAs (active, next, retired) with their ids and dates");
  cas->add_option("name", a->name, "Zone name or id")->required();
  cas->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"zones", a->name, "cas"}), 0), kZoneCaColumns);
  });
  CLI::App* bundle = zone->add_subcommand("ca-bundle", "Print the roots to trust across a CA rotation (PEM: active, "
                                                       "next, retired with unexpired certificates)");
  bundle->add_option("name", a->name, "Zone name or id")->required();
  bundle->add_option("--out", a->ca_out, "Write the PEM to FILE instead of stdout");
  bundle->callback([&global, a] {
    Session s = Connect(global, /*need_token=*/false);
    const std::string pem = Check(s.api->GetRaw(ApiPath({"zones", a->name, "ca", "bundle"})));
    if (a->ca_out.empty()) {
      std::cout << pem;
    } else {
      WriteFileOrDie(a->ca_out, pem, 0644);
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

  // Node identities (docs/policy.md, "Node identity").
  CLI::App* ni = zone->add_subcommand("node-identity", "The vouch-agent identities a zone accepts as nodes");
  ni->require_subcommand(1);
  CLI::App* ni_add = ni->add_subcommand("add", "Request an accepted agent identity; pending until its approval task "
                                               "reaches the zone's quorum (admin)");
  ni_add->add_option("name", a->name, "Zone name or id")->required();
  IdentityArgs& id = a->identity;
  ni_add->add_option("--platform", id.platform, "sgx (default), tdx or sev-snp")
      ->check(CLI::IsMember({"sgx", "tdx", "sev-snp"}));
  ni_add->add_option("--mrenclave", id.mrenclave, "SGX: exact MRENCLAVE (64 hex digits)");
  ni_add->add_option("--mrsigner", id.mrsigner, "SGX: MRSIGNER (64 hex digits), with --isvprodid and --min-isvsvn");
  id.isvprodid_opt = ni_add->add_option("--isvprodid", id.isvprodid, "SGX: ISVPRODID")->check(CLI::Range(0, 65535));
  id.min_isvsvn_opt = ni_add->add_option("--min-isvsvn", id.min_isvsvn, "SGX: minimum ISVSVN")->check(CLI::Range(0, 65535));
  ni_add->add_option("--mrtd", id.mrtd, "TDX: MRTD (96 hex digits)");
  for (int i = 0; i < 4; ++i) {
    ni_add->add_option("--rtmr" + std::to_string(i), id.rtmr[i], "TDX: RTMR" + std::to_string(i) + " (96 hex digits)");
  }
  ni_add->add_option("--measurement", id.measurement, "SEV-SNP: MEASUREMENT (96 hex digits)");
  ni_add->add_option("--host-data", id.host_data, "SEV-SNP: HOST_DATA (64 hex digits)");
  ni_add->add_option("--note", id.note, "What this identity is (e.g. agent version)");
  ni_add->callback([&global, a] {
    json body = {{"rule", IdentityRule(a->identity)}};
    if (!a->identity.note.empty()) body["note"] = a->identity.note;
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"zones", a->name, "node-identities"}), body)));
  });
  CLI::App* ni_list = ni->add_subcommand("list", "List a zone's node identities (active, pending, denied)");
  ni_list->add_option("name", a->name, "Zone name or id")->required();
  ni_list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global, FetchList(s, ApiPath({"zones", a->name, "node-identities"}), 0), kNodeIdentityColumns);
  });
  CLI::App* ni_remove = ni->add_subcommand("remove", "Stop accepting an agent identity, at once; no quorum (admin)");
  ni_remove->add_option("name", a->name, "Zone name or id")->required();
  ni_remove->add_option("id", a->identity.id, "Node identity id (from list)")->required();
  ni_remove->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Delete(ApiPath({"zones", a->name, "node-identities", a->identity.id}))));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(zone, vouch::cli::Register);
