// vouch build create | list | get | revoke
#include "cmd_common.h"

namespace vouch::cli {
namespace {

const std::vector<client::Column> kBuildColumns = {
    {"ID", "/id"},
    {"APP", "/app"},
    {"STATUS", "/status"},
    {"MRENCLAVE", "/measurements/mrenclave", ShortHex},
    {"PRODID", "/measurements/isvprodid"},
    {"SVN", "/measurements/isvsvn"},
    {"DEBUG", "/measurements/debug"},
    {"APPROVALS", "", ApprovalsCell},
    {"CREATED", "/created_at"},
};

struct BuildArgs {
  std::string id;
  std::string app;
  std::string status;
  std::string mrenclave;
  std::string mrsigner;
  int isvprodid = 0;
  int isvsvn = 0;
  bool debug = false;
  std::string image_ref;
  std::string image_digest;
  std::string reason;
  size_t limit = 0;
};

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<BuildArgs>();
  CLI::App* build = AddGroup(root, "build", "Builds: measurements allowed for an app once approved");

  CLI::App* create = build->add_subcommand("create", "Register a build; it stays pending until approved (member)");
  create->add_option("--app", a->app, "App name or id")->required();
  create->add_option("--mrenclave", a->mrenclave, "MRENCLAVE, 64 hex digits")->required();
  create->add_option("--mrsigner", a->mrsigner, "MRSIGNER, 64 hex digits")->required();
  create->add_option("--isvprodid", a->isvprodid, "ISV product id")->required()->check(CLI::Range(0, 65535));
  create->add_option("--isvsvn", a->isvsvn, "ISV security version")->required()->check(CLI::Range(0, 65535));
  create->add_flag("--debug", a->debug, "The enclave runs in debug mode");
  create->add_option("--image-ref", a->image_ref, "Container image reference");
  create->add_option("--image-digest", a->image_digest, "Container image digest (sha256:...)");
  create->callback([&global, a] {
    json body = {{"app", a->app},           {"mrenclave", a->mrenclave}, {"mrsigner", a->mrsigner},
                 {"isvprodid", a->isvprodid}, {"isvsvn", a->isvsvn},     {"debug", a->debug}};
    if (!a->image_ref.empty()) body["image_ref"] = a->image_ref;
    if (!a->image_digest.empty()) body["image_digest"] = a->image_digest;
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"builds"}), body)));
  });

  CLI::App* list = build->add_subcommand("list", "List builds");
  list->add_option("--app", a->app, "Only builds of this app");
  list->add_option("--status", a->status, "Only builds with this status")
      ->check(CLI::IsMember({"pending", "approved", "denied", "revoked"}));
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global,
              FetchList(s, WithQuery(ApiPath({"builds"}), {{"app", a->app}, {"status", a->status}}), a->limit),
              kBuildColumns);
  });

  CLI::App* get = build->add_subcommand("get", "Show a build");
  get->add_option("id", a->id, "Build id")->required();
  get->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Get(ApiPath({"builds", a->id}))));
  });

  CLI::App* revoke = build->add_subcommand("revoke", "Revoke a build and its certificates (approver)");
  revoke->add_option("id", a->id, "Build id")->required();
  revoke->add_option("--reason", a->reason, "Why (recorded in the audit log)");
  revoke->callback([&global, a] {
    json body = json::object();
    if (!a->reason.empty()) body["reason"] = a->reason;
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"builds", a->id, "revoke"}), body)));
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(build, vouch::cli::Register);
