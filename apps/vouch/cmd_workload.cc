// vouch workload cert | heartbeat: a sim workload that gets its certificate through the node
// agent's socket (docs/agent.md). INSECURE: it claims whatever measurements it is given.
#include <iostream>
#include <memory>
#include <thread>
#include <tuple>
#include <string>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/file.h"
#include "command_registry.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/keys.h"
#include "workload/heartbeat_mac.h"
#include "workload/workload_client.h"

namespace vouch::cli {
namespace {

struct CertArgs {
  std::string socket;
  std::vector<std::string> dns;
  std::string out;
  std::string mrenclave;
  std::string mrsigner;
  int isvprodid = 0;
  int isvsvn = 0;
  bool debug = false;
  bool renew = false;
  int retry_seconds = 0;
};

struct HeartbeatArgs {
  std::string socket;
  std::string dir;
  int count = 1;
  int interval_ms = 0;
  std::string status = "running";
};

std::array<uint8_t, 32> Hex32(const std::string& flag, const std::string& hex, std::string_view fallback) {
  std::array<uint8_t, 32> out{};
  if (hex.empty()) {
    auto d = crypto::Sha256(fallback);
    std::copy(d.begin(), d.end(), out.begin());
    return out;
  }
  auto b = HexDecode(hex);
  if (!b.ok() || b->size() != 32) throw CliError(flag + " must be 64 hex digits", 2);
  std::copy(b->begin(), b->end(), out.begin());
  return out;
}

std::unique_ptr<workload::WorkloadClient> Connect(const std::string& socket) {
  auto c = workload::WorkloadClient::Create(socket);
  if (!c.ok()) throw CliError(c.status().message(), 1);
  return std::move(*c);
}

void RunCert(const CertArgs& a, const GlobalOptions& global) {
  if (a.isvprodid < 0 || a.isvprodid > 0xFFFF || a.isvsvn < 0 || a.isvsvn > 0xFFFF) {
    throw CliError("--isvprodid and --isvsvn must be 0..65535", 2);
  }
  workload::SimIdentity id;
  id.mrenclave = Hex32("--mrenclave", a.mrenclave, "vouch-sim-workload-mrenclave");
  id.mrsigner = Hex32("--mrsigner", a.mrsigner, "vouch-sim-workload-mrsigner");
  id.isvprodid = static_cast<uint16_t>(a.isvprodid);
  id.isvsvn = static_cast<uint16_t>(a.isvsvn);
  id.debug = a.debug;
  auto client = Connect(a.socket);
  std::string instance;
  crypto::EvpPkeyPtr key;
  if (a.renew) {
    auto text = ReadWholeFile(a.out + "/instance.json", 1 << 16);
    auto key_pem = ReadWholeFile(a.out + "/key.pem", 1 << 16);
    if (!text.ok() || !key_pem.ok()) throw CliError("--renew needs key.pem and instance.json in " + a.out, 1);
    auto j = nlohmann::json::parse(*text, nullptr, false);
    instance = j.is_object() ? j.value("instance_id", "") : "";
    auto k = crypto::PrivateKeyFromPem(*key_pem);
    if (!k.ok()) throw CliError(a.out + "/key.pem: " + k.status().message(), 1);
    key = std::move(*k);
  }
  auto creds = client->RequestCertificate(client->SimReportSource(id), a.dns, instance, key.get(),
                                          std::chrono::seconds(a.retry_seconds));
  if (!creds.ok()) {
    throw CliError("certificate refused: " + creds.status().reason() + ": " + creds.status().message(), 1);
  }
  if (auto st = MakeDirs(a.out, 0700); !st.ok()) throw CliError(st.message(), 1);
  for (auto [name, data, mode] : {std::tuple<std::string, std::string_view, unsigned>{"key.pem", creds->key_pem.view(), 0600},
                                  {"cert.pem", creds->cert_pem, 0644},
                                  {"ca.pem", creds->ca_pem, 0644}}) {
    if (auto st = WriteFileAtomic(a.out + "/" + name, data, mode); !st.ok()) throw CliError(st.message(), 1);
  }
  nlohmann::json info = {{"instance_id", creds->instance_id},
                         {"serial", creds->serial},
                         {"not_after", creds->not_after},
                         {"last_seq", 0},
                         {"key", a.out + "/key.pem"},
                         {"cert", a.out + "/cert.pem"},
                         {"ca", a.out + "/ca.pem"}};
  // MAC heartbeats (docs/formats/heartbeat-key.md): the zone's heartbeat public key; K is derived
  // again from key.pem and the serial when heartbeats are sent, never written down.
  if (!creds->heartbeat_public_pem.empty()) {
    info["heartbeat_key"] = {{"version", crypto::kHeartbeatKeyVersion}, {"public_key_pem", creds->heartbeat_public_pem}};
  }
  if (a.renew) {
    auto old = nlohmann::json::parse(ReadWholeFile(a.out + "/instance.json").value_or("{}"), nullptr, false);
    if (old.is_object()) info["last_seq"] = old.value("last_seq", 0);
  }
  if (auto st = WriteFileAtomic(a.out + "/instance.json", info.dump(2) + "\n", 0600); !st.ok()) {
    throw CliError(st.message(), 1);
  }
  if (global.json()) {
    std::cout << info.dump(2) << std::endl;
  } else {
    std::cout << "certificate " << creds->serial << " for instance " << creds->instance_id << " (valid until "
              << creds->not_after << ")\n  key:  " << a.out << "/key.pem\n  cert: " << a.out << "/cert.pem\n  ca:   "
              << a.out << "/ca.pem\n";
  }
}

void RunHeartbeat(const HeartbeatArgs& a, const GlobalOptions& global) {
  auto text = ReadWholeFile(a.dir + "/instance.json", 1 << 16);
  auto key_pem = ReadWholeFile(a.dir + "/key.pem", 1 << 16);
  if (!text.ok() || !key_pem.ok()) throw CliError(a.dir + " has no key.pem/instance.json (run vouch workload cert)", 1);
  auto info = nlohmann::json::parse(*text, nullptr, false);
  if (!info.is_object()) throw CliError(a.dir + "/instance.json is corrupt", 1);
  auto key = crypto::PrivateKeyFromPem(*key_pem);
  if (!key.ok()) throw CliError(key.status().message(), 1);
  std::string instance = info.value("instance_id", "");
  int64_t seq = info.value("last_seq", int64_t{0});
  // With a heartbeat key from the issuance (an EC P-256 key): MAC'd; else ECDSA-signed.
  crypto::SecretBytes mac_key;
  if (info.contains("heartbeat_key") && info["heartbeat_key"].is_object() &&
      info["heartbeat_key"].value("version", 0) == crypto::kHeartbeatKeyVersion) {
    auto k = workload::DeriveHeartbeatKey(key->get(), info["heartbeat_key"].value("public_key_pem", ""),
                                          info.value("serial", ""));
    if (!k.ok()) throw CliError(a.dir + "/instance.json: heartbeat key: " + k.status().message(), 1);
    mac_key = std::move(*k);
  }
  auto client = Connect(a.socket);
  int sent = 0;
  Status failure;
  for (int i = 0; i < a.count; ++i) {
    Status st = client->SendHeartbeat(key->get(), mac_key.span(), instance, seq + 1, a.status);
    if (!st.ok()) {
      failure = st;
      break;
    }
    ++seq;
    ++sent;
    // Acknowledged by the agent: remember the sequence number before sending the next one.
    info["last_seq"] = seq;
    if (auto w = WriteFileAtomic(a.dir + "/instance.json", info.dump(2) + "\n", 0600); !w.ok()) {
      throw CliError(w.message(), 1);
    }
    if (a.interval_ms > 0 && i + 1 < a.count) std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
  }
  if (global.json()) {
    nlohmann::json j = {{"instance_id", instance}, {"acknowledged", sent}, {"last_seq", seq}};
    if (!failure.ok()) j["error"] = {{"code", failure.reason()}, {"message", failure.message()}};
    std::cout << j.dump(2) << std::endl;
  } else {
    std::cout << sent << " heartbeats acknowledged by the agent (last seq " << seq << ")\n";
  }
  if (!failure.ok()) throw CliError("heartbeat refused: " + failure.reason() + ": " + failure.message(), 1);
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto* group = root.add_subcommand("workload", "A sim workload on this node (INSECURE; development and tests)");
  group->require_subcommand(1);
  auto cert = std::make_shared<CertArgs>();
  auto* c = group->add_subcommand("cert", "Get a certificate through the agent: key.pem, cert.pem, ca.pem into DIR");
  c->add_option("--socket", cert->socket, "The agent's Unix socket")->required();
  c->add_option("--dns", cert->dns, "DNS name to request (repeatable; default: the app's names)");
  c->add_option("--out", cert->out, "Output folder")->required();
  c->add_option("--mrenclave", cert->mrenclave, "Claimed MRENCLAVE, 64 hex digits");
  c->add_option("--mrsigner", cert->mrsigner, "Claimed MRSIGNER, 64 hex digits");
  c->add_option("--isvprodid", cert->isvprodid, "Claimed ISV product id");
  c->add_option("--isvsvn", cert->isvsvn, "Claimed ISV security version");
  c->add_flag("--debug", cert->debug, "Claim a debug enclave");
  c->add_flag("--renew", cert->renew, "Renew: keep the key and instance id from DIR");
  c->add_option("--retry-seconds", cert->retry_seconds, "Keep retrying this long while the manager is unreachable");
  c->callback([cert, &global] { RunCert(*cert, global); });

  auto hb = std::make_shared<HeartbeatArgs>();
  auto* h = group->add_subcommand("heartbeat", "Send heartbeats (MAC'd, or signed) for the instance in DIR through the agent");
  h->add_option("--socket", hb->socket, "The agent's Unix socket")->required();
  h->add_option("--dir", hb->dir, "Folder written by `vouch workload cert`")->required();
  h->add_option("--count", hb->count, "How many")->capture_default_str()->check(CLI::Range(1, 1000000));
  h->add_option("--interval-ms", hb->interval_ms, "Pause between heartbeats")->check(CLI::Range(0, 600000));
  h->add_option("--status", hb->status, "running or stopping")->check(CLI::IsMember({"running", "stopping"}));
  h->callback([hb, &global] { RunHeartbeat(*hb, global); });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(workload, vouch::cli::Register);
