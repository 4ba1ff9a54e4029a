#pragma once

// The master keys a Manager holds (docs/custody.md "Online rotation"; master_key_online.cc). An
// immutable Key is swapped as a whole under `mu`; readers take a shared_ptr copy and use it after
// the lock is released, so a swap never changes a key under a reader.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/manager.h"
#include "crypto/secret.h"

namespace vouch::api {

struct Manager::MasterKeys {
  struct Key {
    crypto::SecretBytes bytes;
    std::string id;  // MasterKeyIdHex
  };
  static std::shared_ptr<const Key> Make(crypto::SecretBytes bytes);

  mutable std::mutex mu;
  std::shared_ptr<const Key> current;   // the key this process holds (master.key)
  std::shared_ptr<const Key> next;      // while an online rotation of this process runs: its new key
  std::shared_ptr<const Key> previous;  // the key before the last rotation or adoption
  // One online rotation or adoption at a time in this process (DATA/master.key.lock serialises
  // processes).
  std::mutex rotate_mu;

  std::shared_ptr<const Key> Current() const {
    std::lock_guard<std::mutex> lock(mu);
    return current;
  }
  // current, next, previous (those present), in the order they are tried.
  std::vector<std::shared_ptr<const Key>> All() const {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::shared_ptr<const Key>> out{current};
    if (next) out.push_back(next);
    if (previous) out.push_back(previous);
    return out;
  }
};

}  // namespace vouch::api
