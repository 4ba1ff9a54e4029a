// vouchd master-key split|combine|rotate: custody of the cluster master key (docs/custody.md).
#include "master_key_cmd.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/bootstrap.h"
#include "api/master_key.h"
#include "base/encoding.h"
#include "base/file.h"
#include "custody/share.h"
#include "store/audit.h"
#include "store/database.h"

namespace vouchd {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "vouchd: %s\n", message.c_str());
  return 1;
}

[[noreturn]] void Finish(int rc) {
  if (rc == 0) throw CLI::Success();
  throw CLI::RuntimeError(rc);
}

// True when something accepts connections on the data directory's listen address: a vouchd
// serving the store would keep sealing under the old key, so rotation is refused.
bool SomethingListens(const std::string& listen) {
  std::string host;
  uint16_t port = 0;
  if (!vouch::api::ParseListen(listen, &host, &port).ok()) return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return false;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
    if (connected) return true;
  }
  return false;
}

struct SplitArgs {
  std::string data_dir;
  int threshold = 0;
  int shares = 0;
  std::string out_dir;
  std::vector<std::string> custodian_keys;  // PEM files, one per share (optional)
};

int RunSplit(const SplitArgs& a) {
  auto dir = vouch::api::OpenDataDir(a.data_dir);
  if (!dir.ok()) return Fail(dir.status().message());
  auto db = vouch::store::OpenDatabase(dir->store_url);
  if (!db.ok()) return Fail(db.status().message());
  // Shares of a key that no longer opens the store would restore nothing.
  if (auto st = vouch::api::CheckMasterKeyOpensStore(**db, dir->master_key); !st.ok()) return Fail(st.message());
  std::vector<std::string> pems;
  for (const std::string& f : a.custodian_keys) {
    auto pem = vouch::ReadWholeFile(f, 1 << 16);
    if (!pem.ok()) return Fail(pem.status().message());
    pems.push_back(*pem);
  }
  auto paths = vouch::custody::WriteShareFiles(dir->master_key.span(), a.threshold, a.shares, a.out_dir, pems);
  if (!paths.ok()) return Fail(paths.status().message());
  const std::string key_id = vouch::HexEncode(vouch::custody::SecretKeyId(dir->master_key.span()));
  auto audited = (*db)->Write([&](vouch::store::Transaction& tx) -> vouch::Status {
    return vouch::store::AppendAudit(tx, vouch::SystemClock::Get().Now(), "system:master-key-split", "master_key.split",
                                     "master-key", "ok",
                                     {{"threshold", a.threshold},
                                      {"shares", a.shares},
                                      {"key_id", key_id},
                                      {"encrypted_to_custodians", !pems.empty()}});
  });
  std::printf("master key %s split into %d shares, any %d of which recover it:\n", key_id.c_str(), a.shares,
              a.threshold);
  for (const std::string& p : *paths) std::printf("  %s\n", p.c_str());
  std::printf("Hand one file to each custodian and delete it here; the shares are written once.\n");
  if (!audited.ok()) return Fail("the shares were written but the split was not audited: " + audited.message());
  return 0;
}

int RunDecryptShare(const std::string& share, const std::string& key_file, const std::string& out) {
  if (vouch::FileExists(out)) return Fail(out + " exists: a share is never written over a file");
  auto text = vouch::ReadWholeFile(share, 64 << 10);
  if (!text.ok()) return Fail(text.status().message());
  auto pem = vouch::ReadWholeFile(key_file, 1 << 16);
  if (!pem.ok()) return Fail(pem.status().message());
  auto plain = vouch::custody::DecryptShareFile(*text, *pem);
  std::fill(pem->begin(), pem->end(), '\0');
  if (!plain.ok()) return Fail(share + ": " + plain.status().message() + " [" + plain.status().reason() + "]");
  if (auto st = vouch::WriteFileAtomic(out, *plain, 0600); !st.ok()) return Fail(st.message());
  std::printf("share decrypted into %s (mode 0600)\n", out.c_str());
  return 0;
}

int RunCombine(const std::vector<std::string>& shares, const std::string& out) {
  if (vouch::FileExists(out)) return Fail(out + " exists: the combined key is never written over a file");
  auto key = vouch::custody::CombineShareFiles(shares);
  if (!key.ok()) return Fail(key.status().message() + " [" + key.status().reason() + "]");
  if (auto st = vouch::WriteFileAtomic(out, key->view(), 0600); !st.ok()) return Fail(st.message());
  std::printf("master key %s recovered from %zu shares into %s (mode 0600)\n",
              vouch::HexEncode(vouch::custody::SecretKeyId(key->span())).c_str(), shares.size(), out.c_str());
  return 0;
}

int RunRotate(const std::string& data_dir, const std::string& crash_at) {
  auto dir = vouch::api::OpenDataDir(data_dir);
  if (!dir.ok()) return Fail(dir.status().message());
  if (SomethingListens(dir->listen)) {
    return Fail("something accepts connections on " + dir->listen +
                ": a serving vouchd rotates the master key itself: run `vouch master-key rotate` (an admin; "
                "docs/custody.md \"Online rotation\"), or stop vouchd (every member of the cluster) to rotate offline");
  }
  vouch::api::RotateOptions options;
  if (!crash_at.empty()) {
    // Test knob: a real SIGKILL from the kernel at that step (no clean-up, no destructors), what
    // `kill -9` does, timed to the step.
    options.step_hook = [crash_at](std::string_view step) -> vouch::Status {
      if (step == crash_at) {
        std::fprintf(stderr, "vouchd: --test-crash-at %s: SIGKILL now\n", crash_at.c_str());
        std::fflush(stderr);
        ::kill(::getpid(), SIGKILL);
        ::_exit(137);  // not reached
      }
      return vouch::Status::Ok();
    };
  }
  auto r = vouch::api::RotateMasterKey(data_dir, vouch::SystemClock::Get(), options);
  if (!r.ok()) return Fail(r.status().message());
  std::printf("master key rotated: %d zone CA key(s), %s, the TLS key re-sealed; audited as %s\n", r->zone_ca_keys,
              r->node_ca_key ? "the node CA key" : "no node CA yet", r->audit_action.c_str());
  std::printf("Shares split before this rotation no longer recover the key: run vouchd master-key split again.\n");
  std::printf("Other cluster members hold the old key: they refuse to start and must re-join (docs/custody.md).\n");
  return 0;
}

// Which key the data directory and its store are under: master.key's id, and every sealed value
// of the store and the TLS key file opened with it. Exit 0 only when all of them open.
int RunCheck(const std::string& data_dir, bool as_json) {
  auto dir = vouch::api::OpenDataDir(data_dir);  // finishes or rolls back an interrupted rotation
  if (!dir.ok()) return Fail(dir.status().message());
  auto db = vouch::store::OpenDatabase(dir->store_url);
  if (!db.ok()) return Fail(db.status().message());
  auto census = vouch::api::CensusSealedValues(**db, dir->master_key);
  if (!census.ok()) return Fail(census.status().message());
  // OpenDataDir opened the TLS key with master.key, or it would have failed.
  census->opens["tls/server.key.sealed"] = 1;
  census->fails["tls/server.key.sealed"] = 0;
  const std::string key_id = vouch::api::MasterKeyIdHex(dir->master_key.span());
  const bool wholly = census->Failed() == 0;
  if (as_json) {
    nlohmann::json out = {{"key_id", key_id}, {"wholly_under_key", wholly}, {"opens", census->opens},
                          {"does_not_open", census->fails}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("master key %s: %lld sealed value(s) open with it, %lld do not%s\n", key_id.c_str(),
                static_cast<long long>(census->Opened()), static_cast<long long>(census->Failed()),
                wholly ? ": the store is wholly under this key" : "");
    for (const auto& [column, n] : census->fails) {
      if (n > 0) std::printf("  %s: %lld do not open\n", column.c_str(), static_cast<long long>(n));
    }
  }
  return wholly ? 0 : 1;
}

}  // namespace

void RegisterMasterKeyCommands(CLI::App& app) {
  auto* group = app.add_subcommand("master-key", "Master-key custody: split it among custodians, combine, rotate");
  group->require_subcommand(1);

  auto split = std::make_shared<SplitArgs>();
  auto* split_cmd = group->add_subcommand("split", "Split the master key m-of-n into one share file per custodian");
  split_cmd->add_option("--data-dir", split->data_dir, "Data directory")->required();
  split_cmd->add_option("--threshold", split->threshold, "Shares needed to recover the key (m)")
      ->required()
      ->check(CLI::Range(2, 255));
  split_cmd->add_option("--shares", split->shares, "Shares to make (n)")->required()->check(CLI::Range(2, 255));
  split_cmd->add_option("--out", split->out_dir, "Folder for the share files (created, 0700)")->required();
  split_cmd->add_option("--custodian-key", split->custodian_keys,
                        "A custodian's EC P-256 public key (PEM); give one per share, in order, to write each share "
                        "encrypted to its custodian");
  split_cmd->callback([split] { Finish(RunSplit(*split)); });

  auto enc_share = std::make_shared<std::string>();
  auto enc_key = std::make_shared<std::string>();
  auto enc_out = std::make_shared<std::string>();
  auto* decrypt_cmd =
      group->add_subcommand("decrypt-share", "Decrypt a share encrypted to you with your private key (for combine)");
  decrypt_cmd->add_option("--share", *enc_share, "The encrypted share file")->required();
  decrypt_cmd->add_option("--custodian-private-key", *enc_key, "Your EC P-256 private key (PEM)")->required();
  decrypt_cmd->add_option("--out", *enc_out, "File for the plain share (must not exist; 0600)")->required();
  decrypt_cmd->callback([enc_share, enc_key, enc_out] { Finish(RunDecryptShare(*enc_share, *enc_key, *enc_out)); });

  auto shares = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto* combine_cmd = group->add_subcommand("combine", "Recover the master key from m share files");
  combine_cmd->add_option("--share", *shares, "A share file (repeat for each)")->required();
  combine_cmd->add_option("--out", *out, "File to write the key to (must not exist; 0600)")->required();
  combine_cmd->callback([shares, out] { Finish(RunCombine(*shares, *out)); });

  auto rotate_dir = std::make_shared<std::string>();
  auto crash_at = std::make_shared<std::string>();
  auto* rotate_cmd = group->add_subcommand(
      "rotate", "Re-seal every sealed secret under a new master key (offline: stop vouchd first)");
  rotate_cmd->add_option("--data-dir", *rotate_dir, "Data directory")->required();
  rotate_cmd->add_option("--test-crash-at", *crash_at)
      ->check(CLI::IsMember({"next_written", "in_transaction", "committed", "tls_renamed"}))
      ->group("");  // hidden: tests/e2e/master_key_test.sh
  rotate_cmd->callback([rotate_dir, crash_at] { Finish(RunRotate(*rotate_dir, *crash_at)); });

  auto check_dir = std::make_shared<std::string>();
  auto check_output = std::make_shared<std::string>("text");
  auto* check_cmd = group->add_subcommand(
      "check", "Show master.key's id and whether every sealed value of the store opens with it (exit 1 if not)");
  check_cmd->add_option("--data-dir", *check_dir, "Data directory")->required();
  check_cmd->add_option("-o,--output", *check_output, "text or json")->check(CLI::IsMember({"text", "json"}));
  check_cmd->callback([check_dir, check_output] { Finish(RunCheck(*check_dir, *check_output == "json")); });
}

vouch::Status CheckSplitArgs(int threshold, int shares, const std::vector<std::string>& custodian_key_files) {
  // The ranges `split` gives CLI11 (--threshold and --shares: 2..255); M <= N and the custodian
  // keys as custody::WriteShareFiles checks them, on a throw-away secret so nothing is written.
  for (const auto& [flag, v] : {std::pair<const char*, int>{"--split-threshold", threshold}, {"--split-shares", shares}}) {
    if (v < 2 || v > 255) {
      return vouch::InvalidArgument(std::string(flag) + ": " + std::to_string(v) + " is not in [2 - 255]",
                                    std::string(vouch::custody::kInvalidSplit));
    }
  }
  if (!custodian_key_files.empty() && custodian_key_files.size() != static_cast<size_t>(shares)) {
    return vouch::InvalidArgument("give one custodian key per share: " + std::to_string(custodian_key_files.size()) +
                                      " keys for " + std::to_string(shares) + " shares",
                                  std::string(vouch::custody::kInvalidSplit));
  }
  const std::vector<uint8_t> probe(32, 0);
  VOUCH_ASSIGN_OR_RETURN(auto split, vouch::custody::Split(probe, threshold, shares));
  for (size_t i = 0; i < custodian_key_files.size(); ++i) {
    VOUCH_ASSIGN_OR_RETURN(std::string pem, vouch::ReadWholeFile(custodian_key_files[i], 1 << 16));
    auto text = vouch::custody::EncryptedShareFileText(split[i], pem);
    if (!text.ok()) {
      return vouch::Status(text.status().code(), custodian_key_files[i] + ": " + text.status().message(),
                           text.status().reason());
    }
  }
  return vouch::Status::Ok();
}

int SplitMasterKey(const std::string& data_dir, int threshold, int shares, const std::string& out_dir,
                   const std::vector<std::string>& custodian_key_files) {
  SplitArgs a;
  a.data_dir = data_dir;
  a.threshold = threshold;
  a.shares = shares;
  a.out_dir = out_dir;
  a.custodian_keys = custodian_key_files;
  return RunSplit(a);
}

}  // namespace vouchd
