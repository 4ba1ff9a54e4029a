#pragma once

// Heartbeat authentication on vouchd's side (docs/agent.md "Heartbeats",
// docs/formats/heartbeat-key.md): the per-heartbeat result codes, the sealing of a zone's
// heartbeat key, and the compact bounded cache of per-instance MAC keys.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vouch::api {

// The result of one heartbeat: the answer's rejected[].code and the reason label of
// vouch_heartbeats_rejected_total. "ok" is accepted.
inline constexpr std::string_view kHeartbeatOk = "ok";
inline constexpr std::string_view kHeartbeatUnknownInstance = "unknown_instance";    // not on this node
inline constexpr std::string_view kHeartbeatCertificateRevoked = "certificate_revoked";  // current cert not valid
inline constexpr std::string_view kHeartbeatInvalidStatus = "invalid_status";
inline constexpr std::string_view kHeartbeatBadTimestamp = "bad_timestamp";        // > 5 min in the future
inline constexpr std::string_view kHeartbeatBadSignature = "bad_signature";        // ECDSA does not verify
inline constexpr std::string_view kHeartbeatBadMac = "bad_mac";                    // MAC does not verify, or no MAC key
inline constexpr std::string_view kHeartbeatReplayed = "replayed";                 // seq not above last_seq
inline constexpr std::string_view kHeartbeatInstanceStopped = "instance_stopped";  // already stopped
// Every rejection code, in the order /metrics lists them.
inline constexpr std::array<std::string_view, 8> kHeartbeatRejections = {
    kHeartbeatBadMac,         kHeartbeatBadSignature,  kHeartbeatReplayed,      kHeartbeatCertificateRevoked,
    kHeartbeatUnknownInstance, kHeartbeatInstanceStopped, kHeartbeatInvalidStatus, kHeartbeatBadTimestamp};

// The AAD of zones.heartbeat_key_sealed (AES-256-GCM under the master key): table, column, row.
inline std::string ZoneHeartbeatKeyAad(std::string_view zone_id) {
  return "vouch:zones.heartbeat_key_sealed:" + std::string(zone_id);
}

// Per-instance heartbeat MAC keys K (32 bytes), keyed by a 16-byte tag of the certificate
// serial (the first 16 bytes of SHA-256(serial)). Open addressing with linear probing in flat
// arrays of 48-byte slots (tag ‖ K) plus one reference bit, split into 16 shards each with its
// own lock; a shard grows by half when 80 % full, so a slot is at least 53 % used: at most
// ~92 bytes per cached instance, no allocation per entry. Bounded: past `max_entries` a shard
// evicts with CLOCK (second chance: an entry used since the hand last passed is kept once). An
// evicted key is derived again on the instance's next heartbeat. Keys are wiped when evicted,
// moved or destroyed. Thread-safe.
class HeartbeatMacKeyCache {
 public:
  using Tag = std::array<uint8_t, 16>;
  using Key = std::array<uint8_t, 32>;

  explicit HeartbeatMacKeyCache(size_t max_entries = 2'000'000);
  ~HeartbeatMacKeyCache();
  HeartbeatMacKeyCache(const HeartbeatMacKeyCache&) = delete;
  HeartbeatMacKeyCache& operator=(const HeartbeatMacKeyCache&) = delete;

  static Tag TagOf(std::string_view serial);
  // Copies the key for `tag` into `*key` (wipe it after use) and marks it used.
  bool Find(const Tag& tag, Key* key);
  // Find for a batch: found[i] = Find(tags[i], &keys[i]), each shard locked once, the slots of
  // its tags fetched from memory together before they are probed (a cache of a million keys
  // does not fit the CPU caches: one miss per key, overlapped).
  void FindMany(std::span<const Tag> tags, std::span<Key> keys, std::span<uint8_t> found);
  void Insert(const Tag& tag, std::span<const uint8_t> key);  // key: 32 bytes
  void Erase(const Tag& tag);
  size_t size() const;
  size_t MemoryBytes() const;  // the slot arrays' bytes

 private:
  struct Slot {
    Tag tag;  // all zero: free (TagOf never gives zero: its first byte is odd)
    Key key;
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Slot> slots;
    std::vector<uint8_t> used;  // reference bits, one byte per slot
    size_t count = 0;
    size_t hand = 0;
    size_t max_slots = 0;
  };
  static size_t Home(const Tag& tag, size_t capacity);
  static long Probe(const Shard& s, const Tag& tag);  // slot index or -1
  static void RemoveAt(Shard& s, size_t i);
  static void Grow(Shard& s, size_t capacity);
  Shard& ShardOf(const Tag& tag) { return shards_[tag[1] & 15]; }
  std::array<Shard, 16> shards_;
};

}  // namespace vouch::api
