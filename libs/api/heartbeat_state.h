#pragma once

// Manager::HeartbeatState (manager.h declares it): what vouchd keeps in memory to authenticate
// heartbeats (docs/formats/heartbeat-key.md). Included by manager_heartbeats.cc and
// manager_issuance.cc only.

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/heartbeat_keys.h"
#include "api/manager.h"

namespace vouch::api {

struct Manager::HeartbeatState {
  static constexpr size_t kEcdsaKeysMax = 100'000;  // decoded certificate keys for signed heartbeats
  static constexpr size_t kReplacedMax = 100'000;   // recent renewals remembered

  HeartbeatMacKeyCache mac_keys;  // certificate serial -> K
  std::mutex mu;                  // guards everything below
  // Signed (ECDSA) heartbeats: the certificate's public key. Bounded: an arbitrary entry goes
  // when full (decoding a certificate again costs far less than a verification).
  std::unordered_map<std::string, std::shared_ptr<EVP_PKEY>> ecdsa_keys;
  std::map<std::string, std::shared_ptr<EVP_PKEY>> zone_keys;  // zone id -> heartbeat private key
  // Renewals this process recorded: instance id -> the serial the renewal replaced, so that a
  // heartbeat MAC'd under the old K and delivered after the renewal is still taken while that
  // certificate is valid. FIFO-bounded; only needed for the seconds a queued heartbeat takes.
  std::unordered_map<std::string, std::string> replaced;
  std::deque<std::string> replaced_order;

  void NoteRenewal(const std::string& instance_id, const std::string& old_serial) {
    std::lock_guard<std::mutex> lock(mu);
    auto [it, added] = replaced.insert_or_assign(instance_id, old_serial);
    (void)it;
    if (added) replaced_order.push_back(instance_id);
    while (replaced_order.size() > kReplacedMax) {
      replaced.erase(replaced_order.front());
      replaced_order.pop_front();
    }
  }
  std::string ReplacedSerial(const std::string& instance_id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = replaced.find(instance_id);
    return it == replaced.end() ? std::string() : it->second;
  }
};

}  // namespace vouch::api
