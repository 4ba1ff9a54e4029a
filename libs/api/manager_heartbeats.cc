// Signed workload heartbeats, node check-ins and the status they imply (docs/agent.md).
#include <algorithm>
#include <map>
#include <unordered_map>

#include "api/heartbeat_keys.h"
#include "api/heartbeat_state.h"
#include "api/heartbeat_store.h"
#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/master_key.h"
#include "api/reasons.h"
#include "base/encoding.h"
#include "crypto/aead.h"
#include "crypto/cleanse.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/keys.h"
#include "crypto/secret.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {
constexpr size_t kIdsPerQuery = 500;       // instance ids (or serials) per IN list
}  // namespace

// ---------------------------------------------------------------- heartbeat keys


std::shared_ptr<Manager::HeartbeatState> Manager::NewHeartbeatState() { return std::make_shared<HeartbeatState>(); }

int64_t Manager::HeartbeatKeysCached() const { return static_cast<int64_t>(heartbeats_->mac_keys.size()); }

Result<std::string> Manager::EnsureZoneHeartbeatKey(Transaction& tx, const std::string& zone_id) {
  // Not cached here: what this transaction writes may still roll back.
  VOUCH_ASSIGN_OR_RETURN(Row z, tx.QueryOne("SELECT heartbeat_pub_pem FROM zones WHERE id = ?", {zone_id}, "zone"));
  if (!z.IsNull(0) && !z.Str(0).empty()) return z.Str(0);
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr key, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes der, crypto::PrivateKeyToDer(key.get()));
  VOUCH_ASSIGN_OR_RETURN(auto sealed, SealSecret(tx, der.span(), ZoneHeartbeatKeyAad(zone_id)));
  VOUCH_ASSIGN_OR_RETURN(std::string pub, crypto::PublicKeyToPem(key.get()));
  // Only if still unset: of two members making it at once, one key wins and both answer it.
  VOUCH_ASSIGN_OR_RETURN(int64_t n, tx.Exec("UPDATE zones SET heartbeat_key_sealed = ?, heartbeat_pub_pem = ? "
                                            "WHERE id = ? AND heartbeat_pub_pem IS NULL",
                                            {store::Blob(sealed), pub, zone_id}));
  if (n == 1) return pub;
  VOUCH_ASSIGN_OR_RETURN(Row again, tx.QueryOne("SELECT heartbeat_pub_pem FROM zones WHERE id = ?", {zone_id}, "zone"));
  return again.Str(0);
}

Result<std::shared_ptr<EVP_PKEY>> Manager::ZoneHeartbeatPrivateKey(Transaction& tx, const std::string& zone_id) {
  HeartbeatState& hs = *heartbeats_;
  {
    std::lock_guard<std::mutex> lock(hs.mu);
    auto k = hs.zone_keys.find(zone_id);
    if (k != hs.zone_keys.end()) return k->second;
  }
  VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT heartbeat_key_sealed FROM zones WHERE id = ?", {zone_id}));
  if (rows.empty() || rows[0].IsNull(0)) return std::shared_ptr<EVP_PKEY>();  // none yet: no MAC verifies
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes master, StoreKey(tx));
  auto der = crypto::Aes256GcmOpen(master.span(), rows[0].Bytes(0), AsBytes(ZoneHeartbeatKeyAad(zone_id)));
  if (!der.ok()) {
    return DataLoss("zone " + zone_id + "'s heartbeat key does not open with the master key",
                    std::string(kSealedValueUnreadable));
  }
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr key, crypto::PrivateKeyFromDer(der->span()));
  std::shared_ptr<EVP_PKEY> shared(key.release(), EVP_PKEY_free);
  std::lock_guard<std::mutex> lock(hs.mu);
  hs.zone_keys[zone_id] = shared;
  return shared;
}

// ---------------------------------------------------------------- heartbeats

Result<json> Manager::IngestHeartbeats(const Principal& node, const json& node_info, const std::vector<Heartbeat>& hbs) {
  if (node.kind != Principal::Kind::kNode)
    return PermissionDenied("only node agents may do this", std::string(kNodeIdentityRequired));
  int64_t now = Now();
  struct Item {
    const Heartbeat* hb;
    std::string_view result = kHeartbeatOk;  // one of the constants of api/heartbeat_keys.h
  };
  std::vector<Item> items;
  items.reserve(hbs.size());
  for (const Heartbeat& h : hbs) items.push_back({&h});

  // 1. Each instance's current certificate (serial, status, zone), one query per batch (the
  //    ids in chunks of kIdsPerQuery). The certificate itself is read, and its key decoded or the
  //    instance's MAC key derived, only for a serial whose key is not cached yet; that work runs
  //    outside the read transaction.
  HeartbeatState& hs = *heartbeats_;
  struct Cert {
    std::string serial, zone_id;
    bool valid = false;
    bool wants_mac = false, wants_signature = false;
    bool has_mac_key = false;
    HeartbeatMacKeyCache::Tag tag{};
    HeartbeatMacKeyCache::Key mac_key{};  // wiped below
    std::shared_ptr<EVP_PKEY> key;        // ECDSA public key
    std::string pem;                      // read when a key is missing
  };
  // Instance id (viewing the batch's own string) -> its certificate.
  std::unordered_map<std::string_view, Cert> inst;
  struct WipeKeys {
    std::unordered_map<std::string_view, Cert>* m;
    ~WipeKeys() {
      for (auto& [id, c] : *m) crypto::Cleanse(c.mac_key.data(), c.mac_key.size());
    }
  } wipe_keys{&inst};
  std::vector<std::string_view> ids;
  {
    std::unordered_map<std::string_view, std::pair<bool, bool>> wanted;  // id -> (mac, signature)
    wanted.reserve(items.size());
    ids.reserve(items.size());
    for (const Item& it : items) {
      auto [pos, added] = wanted.try_emplace(it.hb->instance_id, false, false);
      (it.hb->mac.empty() ? pos->second.second : pos->second.first) = true;
      if (added) ids.push_back(it.hb->instance_id);
    }
    inst.reserve(ids.size());
    std::map<std::string, std::shared_ptr<EVP_PKEY>> zone_keys;  // zone id -> heartbeat private key
    // The lookup, through `query`: a read transaction's, or QueryOnce for a batch of one chunk.
    using QueryFn = std::function<Result<Rows>(const std::string&, const std::vector<store::Value>&)>;
    auto lookup = [&](const QueryFn& query) -> Status {
      inst.clear();
      const bool pg = db_->backend() == "postgres";
      for (size_t at = 0; at < ids.size(); at += kIdsPerQuery) {
        const size_t n = std::min(kIdsPerQuery, ids.size() - at);
        std::string sql =
            pg ? "SELECT i.id, i.serial, c.status, c.zone_id FROM instances i JOIN certificates c ON c.serial = i.serial "
               // SQLite: from the covering indexes of migration 8, never the rows (named: without
               // statistics its planner prefers the primary keys' unique indexes).
               : "SELECT i.id, i.serial, c.status, c.zone_id FROM instances i INDEXED BY instances_heartbeat_lookup "
                 "JOIN certificates c INDEXED BY certificates_heartbeat_lookup ON c.serial = i.serial ";
        // `(i.node_id || '')`: found by id, never through the node's index (without planner
        // statistics SQLite would walk every instance of the node per batch; BENCHMARKS.md).
        sql += "WHERE (i.node_id || '') = ? AND i.id ";
        std::vector<store::Value> params;
        params.reserve(n + 1);
        params.emplace_back(node.id);
        if (pg) {
          // One array parameter: one statement text for every batch size, so PostgreSQL keeps one
          // generic plan instead of planning each batch's 100-parameter IN list (BENCHMARKS.md,
          // "PostgreSQL costs (issue 16)").
          sql += "= ANY(?::text[])";
          params.emplace_back(PgTextArray(std::vector<std::string_view>(ids.begin() + at, ids.begin() + at + n)));
        } else {
          sql += "IN (?";
          for (size_t k = 1; k < n; ++k) sql += ", ?";
          sql += ")";
          for (size_t k = 0; k < n; ++k) params.emplace_back(std::string(ids[at + k]));
        }
        VOUCH_ASSIGN_OR_RETURN(Rows rows, query(sql, params));
        for (const Row& r : rows) {
          auto w = wanted.find(r.Str(0));
          if (w == wanted.end()) continue;  // not asked for (cannot happen: the IN list)
          Cert& c = inst[w->first];
          c.serial = r.Str(1);
          c.valid = r.Str(2) == "valid";
          c.zone_id = r.Str(3);
          c.wants_mac = w->second.first;
          c.wants_signature = w->second.second;
        }
      }
      // The cached MAC keys, looked up together (HeartbeatMacKeyCache::FindMany).
      {
        std::vector<Cert*> macs;
        std::vector<HeartbeatMacKeyCache::Tag> tags;
        macs.reserve(inst.size());
        tags.reserve(inst.size());
        for (auto& [id, c] : inst) {
          if (!c.valid || !c.wants_mac) continue;
          c.tag = HeartbeatMacKeyCache::TagOf(c.serial);
          macs.push_back(&c);
          tags.push_back(c.tag);
        }
        std::vector<HeartbeatMacKeyCache::Key> keys(macs.size());
        std::vector<uint8_t> found(macs.size());
        hs.mac_keys.FindMany(tags, keys, found);
        for (size_t k = 0; k < macs.size(); ++k) {
          macs[k]->has_mac_key = found[k] != 0;
          if (found[k] != 0) macs[k]->mac_key = keys[k];
        }
        if (!keys.empty()) crypto::Cleanse(keys.data(), keys.size() * sizeof(keys[0]));
      }
      return Status::Ok();
    };
    // The keys not cached: their certificates, in chunks too, and the zones' heartbeat keys.
    std::vector<Cert*> missing;
    auto find_missing = [&] {
      missing.clear();
      for (auto& [id, c] : inst) {
        if (!c.valid) continue;
        bool need = c.wants_mac && !c.has_mac_key;
        if (c.wants_signature) {
          std::lock_guard<std::mutex> lock(hs.mu);
          auto k = hs.ecdsa_keys.find(c.serial);
          if (k != hs.ecdsa_keys.end()) c.key = k->second;
          need = need || !c.key;
        }
        if (need) missing.push_back(&c);
      }
    };
    auto fetch_missing = [&](Transaction& tx) -> Status {
      zone_keys.clear();
      for (Cert* c : missing) {
        if (c->wants_mac && !c->has_mac_key && !zone_keys.count(c->zone_id)) {
          VOUCH_ASSIGN_OR_RETURN(zone_keys[c->zone_id], ZoneHeartbeatPrivateKey(tx, c->zone_id));
        }
      }
      for (size_t at = 0; at < missing.size(); at += kIdsPerQuery) {
        const size_t n = std::min(kIdsPerQuery, missing.size() - at);
        std::string sql = "SELECT serial, pem FROM certificates WHERE serial IN (?";
        for (size_t k = 1; k < n; ++k) sql += ", ?";
        sql += ")";
        std::vector<store::Value> params;
        params.reserve(n);
        std::unordered_map<std::string, Cert*> by_serial;
        for (size_t k = 0; k < n; ++k) {
          params.emplace_back(missing[at + k]->serial);
          by_serial[missing[at + k]->serial] = missing[at + k];
        }
        VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(sql, params));
        for (const Row& r : rows) {
          auto c = by_serial.find(r.Str(0));
          if (c != by_serial.end()) c->second->pem = r.Str(1);
        }
      }
      return Status::Ok();
    };
    if (ids.size() <= kIdsPerQuery) {
      // One statement, its own snapshot (on PostgreSQL one round trip, no BEGIN/COMMIT); what it
      // does not find cached comes from a second snapshot, which is as good: a certificate's PEM
      // never changes, and a zone's heartbeat key is only ever set from NULL.
      VOUCH_RETURN_IF_ERROR(lookup([&](const std::string& sql, const std::vector<store::Value>& params) {
        return db_->QueryOnce(sql, params);
      }));
      find_missing();
      if (!missing.empty()) VOUCH_RETURN_IF_ERROR(db_->Read(fetch_missing));
    } else {
      VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
        VOUCH_RETURN_IF_ERROR(lookup([&](const std::string& sql, const std::vector<store::Value>& params) {
          return tx.Query(sql, params);
        }));
        find_missing();
        return fetch_missing(tx);
      }));
    }
    // Decode and derive outside the transaction: once per certificate, then cached.
    for (auto& [id, c] : inst) {
      if (c.pem.empty()) continue;
      auto cert = crypto::CertFromPem(c.pem);
      c.pem.clear();
      if (!cert.ok()) continue;
      std::shared_ptr<EVP_PKEY> pub(X509_get_pubkey(cert->get()), EVP_PKEY_free);  // new reference
      if (!pub) continue;
      if (c.wants_mac && !c.has_mac_key) {
        auto zk = zone_keys.find(c.zone_id);
        if (zk != zone_keys.end() && zk->second) {
          // Fails for a key that is not P-256 (an RSA instance signs instead): bad_mac below.
          auto k = crypto::DeriveHeartbeatKey(zk->second.get(), pub.get(), c.serial);
          if (k.ok() && k->size() == c.mac_key.size()) {
            std::copy(k->data(), k->data() + k->size(), c.mac_key.begin());
            c.has_mac_key = true;
            hs.mac_keys.Insert(c.tag, k->span());
          }
        }
      }
      if (c.wants_signature && !c.key) {
        c.key = pub;
        std::lock_guard<std::mutex> lock(hs.mu);
        if (hs.ecdsa_keys.size() >= HeartbeatState::kEcdsaKeysMax) hs.ecdsa_keys.erase(hs.ecdsa_keys.begin());
        hs.ecdsa_keys[c.serial] = pub;
      }
    }
  }
  // 2. Verify MACs and signatures outside any transaction.
  for (Item& it : items) {
    const Heartbeat& h = *it.hb;
    auto found = inst.find(h.instance_id);
    const bool has_mac = !h.mac.empty();
    if (found == inst.end() || (found->second.valid && !has_mac && !found->second.key)) {
      it.result = kHeartbeatUnknownInstance;
      continue;
    }
    const Cert& c = found->second;
    if (!c.valid) {
      it.result = kHeartbeatCertificateRevoked;
      continue;
    }
    if (h.status != "running" && h.status != "stopping") {
      it.result = kHeartbeatInvalidStatus;
      continue;
    }
    if (h.timestamp > now + 300) {
      it.result = kHeartbeatBadTimestamp;
      continue;
    }
    if (has_mac) {
      // No MAC key (the certificate's key cannot do ECDH with the zone's: RSA, P-384) is a MAC
      // that cannot verify.
      if (!c.has_mac_key || h.mac.size() != workload::kHeartbeatMacSize) {
        it.result = kHeartbeatBadMac;
        continue;
      }
      const std::string msg = workload::HeartbeatMacMessage(h.instance_id, h.seq, h.timestamp, h.status);
      auto mac = workload::HmacSha256Fast(c.mac_key, AsBytes(msg));
      const bool equal = crypto::ConstantTimeEquals(mac, h.mac);  // CRYPTO_memcmp
      crypto::Cleanse(mac.data(), mac.size());
      if (!equal) it.result = kHeartbeatBadMac;
      continue;
    }
    std::string msg = workload::HeartbeatMessage(h.instance_id, h.seq, h.timestamp, h.status);
    if (!crypto::Verify(c.key.get(), AsBytes(msg), h.signature)) it.result = kHeartbeatBadSignature;
  }
  // 2b. A MAC that fails under the current certificate's K may be under the previous one's: the
  //     agent queued the heartbeat before a renewal and delivered it after (a renewal keeps the
  //     key, so signed heartbeats verify across it; MAC'd ones need the old serial's K). The
  //     certificate the instance's last renewal replaced is tried while it is valid and unexpired
  //     (a primary-key read per such instance, only when a MAC failed); its K is cached too.
  std::vector<Item*> retry;
  for (Item& it : items) {
    if (it.result != kHeartbeatBadMac) continue;
    auto found = inst.find(it.hb->instance_id);
    if (found != inst.end() && found->second.valid) retry.push_back(&it);
  }
  if (!retry.empty()) {
    struct Prev {
      std::string serial, zone_id, pem;
      HeartbeatMacKeyCache::Tag tag{};
      HeartbeatMacKeyCache::Key key{};
      bool has_key = false;
      std::shared_ptr<EVP_PKEY> zone_key;
    };
    std::unordered_map<std::string, Prev> prev;  // instance id -> its previous certificate
    struct WipePrev {
      std::unordered_map<std::string, Prev>* m;
      ~WipePrev() {
        for (auto& [id, p] : *m) crypto::Cleanse(p.key.data(), p.key.size());
      }
    } wipe_prev{&prev};
    // The serial each renewal replaced (remembered by this process; a renewal through another
    // cluster member is not known here, and such a heartbeat stays bad_mac). Checked against the
    // store: still valid, unexpired, this instance's and this node's.
    for (Item* it : retry) {
      const std::string& id = it->hb->instance_id;
      if (prev.count(id)) continue;
      std::string old = hs.ReplacedSerial(id);
      if (old.empty() || old == inst[id].serial) continue;
      Prev pv;
      pv.serial = std::move(old);
      prev.emplace(id, std::move(pv));
    }
    if (!prev.empty()) {
      VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
        for (auto& [id, pv] : prev) {
          pv.zone_id.clear();
          pv.pem.clear();
          pv.has_key = false;
          VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT zone_id, pem FROM certificates WHERE serial = ? AND "
                                                     "instance_id = ? AND node_id = ? AND status = 'valid' AND "
                                                     "not_after > ?",
                                                     {pv.serial, id, node.id, now}));
          if (rows.empty()) continue;
          pv.zone_id = rows[0].Str(0);
          pv.tag = HeartbeatMacKeyCache::TagOf(pv.serial);
          pv.has_key = hs.mac_keys.Find(pv.tag, &pv.key);
          if (!pv.has_key) {
            pv.pem = rows[0].Str(1);
            VOUCH_ASSIGN_OR_RETURN(pv.zone_key, ZoneHeartbeatPrivateKey(tx, pv.zone_id));
          }
        }
        return Status::Ok();
      }));
    }
    for (auto& [id, pv] : prev) {
      if (pv.has_key || pv.pem.empty() || !pv.zone_key) continue;
      auto cert = crypto::CertFromPem(pv.pem);
      if (!cert.ok()) continue;
      std::shared_ptr<EVP_PKEY> pub(X509_get_pubkey(cert->get()), EVP_PKEY_free);  // new reference
      if (!pub) continue;
      auto k = crypto::DeriveHeartbeatKey(pv.zone_key.get(), pub.get(), pv.serial);
      if (!k.ok() || k->size() != pv.key.size()) continue;
      std::copy(k->data(), k->data() + k->size(), pv.key.begin());
      pv.has_key = true;
      hs.mac_keys.Insert(pv.tag, k->span());
    }
    for (Item* it : retry) {
      auto pv = prev.find(it->hb->instance_id);
      if (pv == prev.end() || !pv->second.has_key) continue;
      const Heartbeat& h = *it->hb;
      const std::string msg = workload::HeartbeatMacMessage(h.instance_id, h.seq, h.timestamp, h.status);
      auto mac = workload::HmacSha256Fast(pv->second.key, AsBytes(msg));
      if (crypto::ConstantTimeEquals(mac, h.mac)) it->result = kHeartbeatOk;
      crypto::Cleanse(mac.data(), mac.size());
    }
  }
  // 3. Record, in sequence order per instance (a sequence number not above the last is a
  //    replay), with one statement per table for the whole batch (api/heartbeat_store.h); a
  //    row-keyed write, concurrent with other nodes' batches on PostgreSQL (docs/cluster.md).
  std::vector<HeartbeatWrite> writes;
  std::vector<size_t> write_item;
  writes.reserve(items.size());
  write_item.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].result != kHeartbeatOk) continue;
    const Heartbeat& h = *items[i].hb;
    writes.push_back({h.instance_id, h.seq, std::min(h.timestamp, now), h.status == "stopping", {}});
    write_item.push_back(i);
  }
  int64_t accepted = 0;
  json rejected = json::array();
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(accepted, RecordHeartbeats(tx, db_->backend(), node.id, now, node_info, writes));
    // RecordHeartbeats' results view string literals (api/heartbeat_store.h), as ours do.
    for (size_t k = 0; k < writes.size(); ++k) items[write_item[k]].result = writes[k].result;
    rejected = json::array();
    for (const Item& it : items) {
      if (it.result != kHeartbeatOk) {
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
  }, store::WriteMode::kRowKeyed));
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
