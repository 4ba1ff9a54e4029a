// Signed workload heartbeats, node check-ins and the status they imply (docs/agent.md).
#include <algorithm>
#include <unordered_map>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "workload/wire.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

// ---------------------------------------------------------------- heartbeats

Result<json> Manager::IngestHeartbeats(const Principal& node, const json& node_info, const std::vector<Heartbeat>& hbs) {
  if (node.kind != Principal::Kind::kNode)
    return PermissionDenied("only node agents may do this", std::string(kNodeIdentityRequired));
  int64_t now = Now();
  struct Item {
    const Heartbeat* hb;
    std::string result = "ok";
  };
  std::vector<Item> items;
  items.reserve(hbs.size());
  for (const Heartbeat& h : hbs) items.push_back({&h});

  // 1. Look up each instance's current certificate (serial and status); the certificate itself
  //    is read and its key decoded only for a serial whose key is not cached yet.
  struct Cert {
    std::string serial;
    bool valid = false;
    std::shared_ptr<EVP_PKEY> key;
  };
  std::unordered_map<std::string, Cert> inst;  // instance id -> its certificate
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    inst.clear();
    for (Item& it : items) {
      if (inst.count(it.hb->instance_id)) continue;
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT i.serial, c.status FROM instances i JOIN certificates c ON "
                                                 "c.serial = i.serial WHERE i.id = ? AND i.node_id = ?",
                                                 {it.hb->instance_id, node.id}));
      if (rows.empty()) continue;
      Cert c;
      c.serial = rows[0].Str(0);
      c.valid = rows[0].Str(1) == "valid";
      if (c.valid) {
        {
          std::lock_guard<std::mutex> lock(keys_mu_);
          auto k = heartbeat_keys_.find(c.serial);
          if (k != heartbeat_keys_.end()) c.key = k->second;
        }
        if (!c.key) {
          VOUCH_ASSIGN_OR_RETURN(Rows pem, tx.Query("SELECT pem FROM certificates WHERE serial = ?", {c.serial}));
          auto cert = pem.empty() ? Result<crypto::X509Ptr>(NotFound("gone")) : crypto::CertFromPem(pem[0].Str(0));
          if (cert.ok()) {
            c.key = std::shared_ptr<EVP_PKEY>(X509_get_pubkey(cert->get()), EVP_PKEY_free);  // new reference
            if (c.key) {
              std::lock_guard<std::mutex> lock(keys_mu_);
              if (heartbeat_keys_.size() > 500000) heartbeat_keys_.clear();
              heartbeat_keys_[c.serial] = c.key;
            }
          }
        }
      }
      inst.emplace(it.hb->instance_id, std::move(c));
    }
    return Status::Ok();
  }));
  // 2. Verify signatures outside any transaction.
  for (Item& it : items) {
    const Heartbeat& h = *it.hb;
    auto found = inst.find(h.instance_id);
    if (found == inst.end() || (found->second.valid && !found->second.key)) {
      it.result = "unknown_instance";
      continue;
    }
    if (!found->second.valid) {
      it.result = "certificate_revoked";
      continue;
    }
    if (h.status != "running" && h.status != "stopping") {
      it.result = "invalid_status";
      continue;
    }
    if (h.timestamp > now + 300) {
      it.result = "bad_timestamp";
      continue;
    }
    std::string msg = workload::HeartbeatMessage(h.instance_id, h.seq, h.timestamp, h.status);
    if (!crypto::Verify(found->second.key.get(), AsBytes(msg), h.signature)) it.result = "bad_signature";
  }
  // 3. Record, in sequence order per instance; a sequence number not above the last is a replay.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return items[a].hb->seq < items[b].hb->seq; });
  int64_t accepted = 0;
  json rejected = json::array();
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    accepted = 0;
    for (size_t idx : order) {
      Item& it = items[idx];
      if (it.result != "ok" && it.result != "replayed" && it.result != "instance_stopped") continue;
      it.result = "ok";
      const Heartbeat& h = *it.hb;
      int64_t seen = std::min(h.timestamp, now);
      VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE instances SET last_seq = ?, last_heartbeat = ?, status = ? "
                                                "WHERE id = ? AND node_id = ? AND last_seq < ? AND status <> 'stopped'",
                                                {h.seq, seen, std::string(h.status == "stopping" ? "stopped" : "running"),
                                                 h.instance_id, node.id, h.seq}));
      if (n == 1) {
        ++accepted;
      } else {
        // Not recorded: a stopped instance takes no more heartbeats; otherwise the seq was seen.
        VOUCH_ASSIGN_OR_RETURN(Rows cur, tx.Query("SELECT status FROM instances WHERE id = ? AND node_id = ?",
                                                  {h.instance_id, node.id}));
        it.result = !cur.empty() && cur[0].Str(0) == "stopped" ? "instance_stopped" : "replayed";
      }
    }
    json info = node_info.is_object() ? node_info : json::object();
    VOUCH_RETURN_IF_ERROR(
        tx.Exec("UPDATE nodes SET last_seen = ?, info = ? WHERE id = ?", {now, info.dump(), node.id}).status());
    rejected = json::array();
    for (const Item& it : items) {
      if (it.result != "ok") {
        rejected.push_back({{"instance_id", it.hb->instance_id}, {"seq", it.hb->seq}, {"code", it.result}});
      }
    }
    if (!rejected.empty()) {
      json sample = json::array();
      for (size_t i = 0; i < rejected.size() && i < 10; ++i) sample.push_back(rejected[i]);
      VOUCH_RETURN_IF_ERROR(Audit(tx, *this, node, "heartbeat.reject", node.id,
                                  {{"rejected", rejected.size()}, {"sample", sample}}));
    }
    return Status::Ok();
  }));
  return json{{"accepted", accepted}, {"rejected", rejected}};
}

Status Manager::RecordAgentRefusals(const Principal& node, const json& refusals) {
  if (node.kind != Principal::Kind::kNode)
    return PermissionDenied("only node agents may do this", std::string(kNodeIdentityRequired));
  if (!refusals.is_array() || refusals.empty()) return Status::Ok();
  return db_->Write([&](Transaction& tx) -> Status {
    for (const json& r : refusals) {
      const std::string mrenclave = r.value("mrenclave", std::string());
      VOUCH_RETURN_IF_ERROR(store::AppendAudit(tx, clock_->Now(), node.Actor(), "certificate.issue",
                                               mrenclave.empty() ? "local" : "mrenclave:" + mrenclave,
                                               "denied:" + r.value("code", std::string("local_refusal")),
                                               {{"reported_by", "agent"},
                                                {"at", TimeJson(r.value("at", int64_t{0}))},
                                                {"message", r.value("message", std::string())}}));
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------- status on read

std::string Manager::EffectiveInstanceStatus(const Row& r) const {
  std::string s = r.Str("status");
  if (s != "running") return s;
  int64_t last = r.IsNull("last_heartbeat") ? r.Int("first_seen") : r.Int("last_heartbeat");
  if (Now() - last > options_.heartbeat_interval.count() * options_.missed_intervals) return "unresponsive";
  return s;
}

std::string Manager::EffectiveNodeStatus(const Row& r) const {
  std::string s = r.Str("status");
  if (s != "active") return s;
  int64_t last = r.IsNull("last_seen") ? r.Int("created_at") : r.Int("last_seen");
  if (Now() - last > options_.node_checkin_interval.count() * options_.missed_intervals) return "unresponsive";
  return s;
}

}  // namespace vouch::api
