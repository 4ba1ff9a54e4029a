#include "api/heartbeat_keys.h"

#include <algorithm>
#include <cstring>

#include "crypto/cleanse.h"
#include "crypto/digest.h"
#include "workload/heartbeat_mac.h"

namespace vouch::api {
namespace {

constexpr size_t kInitialSlots = 64;  // per shard
constexpr size_t kShards = 16;

bool IsFree(const HeartbeatMacKeyCache::Tag& t) { return t[0] == 0; }  // TagOf sets bit 0 of byte 0

}  // namespace

HeartbeatMacKeyCache::HeartbeatMacKeyCache(size_t max_entries) {
  // A shard holds at most 80 % of its slots: enough slots per shard for its share of max_entries.
  const size_t per_shard = std::max<size_t>(8, (max_entries + kShards - 1) / kShards);
  for (Shard& s : shards_) s.max_slots = std::max(kInitialSlots, per_shard * 5 / 4 + 1);
}

HeartbeatMacKeyCache::~HeartbeatMacKeyCache() {
  for (Shard& s : shards_) {
    if (!s.slots.empty()) crypto::Cleanse(s.slots.data(), s.slots.size() * sizeof(Slot));
  }
}

HeartbeatMacKeyCache::Tag HeartbeatMacKeyCache::TagOf(std::string_view serial) {
  // One SHA-256 per heartbeat: the per-thread context (workload/heartbeat_mac.h), not SHA256().
  const auto d = workload::Sha256Fast(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(serial.data()), serial.size()));
  Tag t;
  std::copy(d.begin(), d.begin() + 16, t.begin());
  t[0] |= 1;  // never all zero: a zero first byte marks a free slot
  return t;
}

size_t HeartbeatMacKeyCache::Home(const Tag& tag, size_t capacity) {
  uint64_t h = 0;
  std::memcpy(&h, tag.data() + 8, sizeof(h));
  // Multiply-shift onto [0, capacity): capacities need not be powers of two.
  return static_cast<size_t>((static_cast<unsigned __int128>(h) * capacity) >> 64);
}

long HeartbeatMacKeyCache::Probe(const Shard& s, const Tag& tag) {
  const size_t cap = s.slots.size();
  if (cap == 0) return -1;
  for (size_t i = Home(tag, cap), n = 0; n < cap; ++n, i = i + 1 == cap ? 0 : i + 1) {
    const Slot& slot = s.slots[i];
    if (IsFree(slot.tag)) return -1;
    if (slot.tag == tag) return static_cast<long>(i);
  }
  return -1;
}

// Backward-shift deletion: later entries of the same probe run move up, so no tombstones.
void HeartbeatMacKeyCache::RemoveAt(Shard& s, size_t i) {
  const size_t cap = s.slots.size();
  size_t j = i;
  for (;;) {
    j = j + 1 == cap ? 0 : j + 1;
    if (IsFree(s.slots[j].tag)) break;
    const size_t k = Home(s.slots[j].tag, cap);
    // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
    const bool home_between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (home_between) continue;
    s.slots[i] = s.slots[j];
    s.used[i] = s.used[j];
    i = j;
  }
  crypto::Cleanse(&s.slots[i], sizeof(Slot));
  s.used[i] = 0;
  --s.count;
}

void HeartbeatMacKeyCache::Grow(Shard& s, size_t capacity) {
  std::vector<Slot> old = std::move(s.slots);
  std::vector<uint8_t> old_used = std::move(s.used);
  s.slots.assign(capacity, Slot{});
  s.used.assign(capacity, 0);
  s.hand = 0;
  for (size_t o = 0; o < old.size(); ++o) {
    if (IsFree(old[o].tag)) continue;
    size_t i = Home(old[o].tag, capacity);
    while (!IsFree(s.slots[i].tag)) i = i + 1 == capacity ? 0 : i + 1;
    s.slots[i] = old[o];
    s.used[i] = old_used[o];
  }
  if (!old.empty()) crypto::Cleanse(old.data(), old.size() * sizeof(Slot));
}

bool HeartbeatMacKeyCache::Find(const Tag& tag, Key* key) {
  Shard& s = ShardOf(tag);
  std::lock_guard<std::mutex> lock(s.mu);
  const long i = Probe(s, tag);
  if (i < 0) return false;
  *key = s.slots[static_cast<size_t>(i)].key;
  s.used[static_cast<size_t>(i)] = 1;
  return true;
}

void HeartbeatMacKeyCache::FindMany(std::span<const Tag> tags, std::span<Key> keys, std::span<uint8_t> found) {
  const size_t n = std::min({tags.size(), keys.size(), found.size()});
  // The tags' indices grouped by shard (counting sort).
  std::array<uint32_t, kShards + 1> start{};
  for (size_t i = 0; i < n; ++i) ++start[(tags[i][1] & 15) + 1];
  for (size_t k = 0; k < kShards; ++k) start[k + 1] += start[k];
  std::vector<uint32_t> order(n);
  std::array<uint32_t, kShards> at{};
  std::copy(start.begin(), start.begin() + kShards, at.begin());
  for (size_t i = 0; i < n; ++i) order[at[tags[i][1] & 15]++] = static_cast<uint32_t>(i);
  for (size_t k = 0; k < kShards; ++k) {
    if (start[k] == start[k + 1]) continue;
    Shard& s = shards_[k];
    std::lock_guard<std::mutex> lock(s.mu);
    const size_t cap = s.slots.size();
    if (cap != 0) {
      for (uint32_t j = start[k]; j < start[k + 1]; ++j) {
        const size_t home = Home(tags[order[j]], cap);
        __builtin_prefetch(&s.slots[home]);
        __builtin_prefetch(reinterpret_cast<const char*>(&s.slots[home]) + sizeof(Slot) - 1);
        __builtin_prefetch(&s.used[home], 1);
      }
    }
    for (uint32_t j = start[k]; j < start[k + 1]; ++j) {
      const uint32_t i = order[j];
      const long slot = Probe(s, tags[i]);
      found[i] = slot >= 0 ? 1 : 0;
      if (slot < 0) continue;
      keys[i] = s.slots[static_cast<size_t>(slot)].key;
      s.used[static_cast<size_t>(slot)] = 1;
    }
  }
  for (size_t i = n; i < found.size(); ++i) found[i] = 0;
}

void HeartbeatMacKeyCache::Insert(const Tag& tag, std::span<const uint8_t> key) {
  if (key.size() != sizeof(Key) || IsFree(tag)) return;
  Shard& s = ShardOf(tag);
  std::lock_guard<std::mutex> lock(s.mu);
  if (const long i = Probe(s, tag); i >= 0) {
    std::copy(key.begin(), key.end(), s.slots[static_cast<size_t>(i)].key.begin());
    return;
  }
  if (s.slots.empty()) Grow(s, std::min(kInitialSlots, s.max_slots));
  // At most 80 % full: grow by half while below the bound, else evict one (CLOCK).
  while ((s.count + 1) * 5 > s.slots.size() * 4) {
    if (s.slots.size() < s.max_slots) {
      Grow(s, std::min(s.max_slots, s.slots.size() + s.slots.size() / 2));
      continue;
    }
    for (;;) {
      size_t h = s.hand;
      s.hand = h + 1 == s.slots.size() ? 0 : h + 1;
      if (IsFree(s.slots[h].tag)) continue;
      if (s.used[h] != 0) {
        s.used[h] = 0;  // second chance
        continue;
      }
      RemoveAt(s, h);
      break;
    }
  }
  size_t i = Home(tag, s.slots.size());
  while (!IsFree(s.slots[i].tag)) i = i + 1 == s.slots.size() ? 0 : i + 1;
  s.slots[i].tag = tag;
  std::copy(key.begin(), key.end(), s.slots[i].key.begin());
  s.used[i] = 0;
  ++s.count;
}

void HeartbeatMacKeyCache::Erase(const Tag& tag) {
  Shard& s = ShardOf(tag);
  std::lock_guard<std::mutex> lock(s.mu);
  if (const long i = Probe(s, tag); i >= 0) RemoveAt(s, static_cast<size_t>(i));
}

size_t HeartbeatMacKeyCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.count;
  }
  return n;
}

size_t HeartbeatMacKeyCache::MemoryBytes() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.slots.capacity() * sizeof(Slot) + s.used.capacity();
  }
  return n;
}

}  // namespace vouch::api
