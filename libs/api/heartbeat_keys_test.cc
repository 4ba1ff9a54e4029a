// The compact per-instance heartbeat MAC key cache (api/heartbeat_keys.h).
#include "api/heartbeat_keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "crypto/digest.h"
#include "workload/heartbeat_mac.h"

namespace vouch::api {
namespace {

HeartbeatMacKeyCache::Key KeyFor(int i) {
  HeartbeatMacKeyCache::Key k{};
  for (size_t b = 0; b < k.size(); ++b) k[b] = static_cast<uint8_t>((i * 31 + static_cast<int>(b)) & 0xff);
  return k;
}

std::string Serial(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%032x", i);
  return buf;
}

// The per-thread HMAC and SHA-256 vouchd checks heartbeats with give OpenSSL's one-shot bytes,
// for every key length up to a block and past it (the fallback), short and long messages, and
// from several threads at once (one context each).
TEST(HeartbeatMac, FastHmacAndSha256AreOpenSslsOnEveryThread) {
  auto check = [](int salt) {
    for (size_t klen : {1, 31, 32, 33, 63, 64, 65, 100}) {
      for (size_t dlen : {0, 1, 55, 56, 63, 64, 65, 200, 1000}) {
        std::vector<uint8_t> key(klen), data(dlen);
        for (size_t i = 0; i < klen; ++i) key[i] = static_cast<uint8_t>(i * 7 + salt);
        for (size_t i = 0; i < dlen; ++i) data[i] = static_cast<uint8_t>(i * 13 + klen + salt);
        EXPECT_EQ(workload::HmacSha256Fast(key, data), crypto::HmacSha256(key, data)) << klen << " " << dlen;
        EXPECT_EQ(workload::Sha256Fast(data), crypto::Sha256(data)) << dlen;
      }
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back([&, t] { check(t); });
  for (auto& t : ts) t.join();
}

TEST(HeartbeatMacKeyCache, FindsWhatWasInsertedAndCostsUnder120BytesAnInstance) {
  constexpr int kN = 200'000;
  HeartbeatMacKeyCache cache(1'000'000);
  for (int i = 0; i < kN; ++i) {
    auto k = KeyFor(i);
    cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(i)), k);
  }
  EXPECT_EQ(cache.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; i += 7) {
    HeartbeatMacKeyCache::Key got{};
    ASSERT_TRUE(cache.Find(HeartbeatMacKeyCache::TagOf(Serial(i)), &got)) << i;
    EXPECT_EQ(got, KeyFor(i));
  }
  HeartbeatMacKeyCache::Key none{};
  EXPECT_FALSE(cache.Find(HeartbeatMacKeyCache::TagOf(Serial(kN + 1)), &none));
  // The budget: at most ~120 bytes per cached instance (slots grow by half at 80 %).
  const double per_instance = static_cast<double>(cache.MemoryBytes()) / kN;
  EXPECT_LE(per_instance, 120.0) << per_instance;
  // Replacing a key keeps one entry; erasing removes it and the rest of its probe run stays found.
  auto other = KeyFor(-1);
  cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(5)), other);
  EXPECT_EQ(cache.size(), static_cast<size_t>(kN));
  HeartbeatMacKeyCache::Key got{};
  ASSERT_TRUE(cache.Find(HeartbeatMacKeyCache::TagOf(Serial(5)), &got));
  EXPECT_EQ(got, other);
  for (int i = 0; i < kN; i += 2) cache.Erase(HeartbeatMacKeyCache::TagOf(Serial(i)));
  EXPECT_EQ(cache.size(), static_cast<size_t>(kN / 2));
  for (int i = 1; i < kN; i += 2) {
    ASSERT_TRUE(cache.Find(HeartbeatMacKeyCache::TagOf(Serial(i)), &got)) << i;
    ASSERT_EQ(got, i == 5 ? other : KeyFor(i)) << i;
  }
  EXPECT_FALSE(cache.Find(HeartbeatMacKeyCache::TagOf(Serial(2)), &got));
}

// The batch lookup gives what one Find per tag gives, present and absent tags mixed, in order.
TEST(HeartbeatMacKeyCache, FindManyIsFindForEachTag) {
  HeartbeatMacKeyCache cache(10'000);
  for (int i = 0; i < 5000; i += 2) cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(i)), KeyFor(i));
  std::vector<HeartbeatMacKeyCache::Tag> tags;
  for (int i = 0; i < 300; ++i) tags.push_back(HeartbeatMacKeyCache::TagOf(Serial((i * 37) % 5000)));
  std::vector<HeartbeatMacKeyCache::Key> keys(tags.size());
  std::vector<uint8_t> found(tags.size(), 7);
  cache.FindMany(tags, keys, found);
  int present = 0;
  for (size_t i = 0; i < tags.size(); ++i) {
    const int n = (static_cast<int>(i) * 37) % 5000;
    HeartbeatMacKeyCache::Key one{};
    ASSERT_EQ(found[i] != 0, cache.Find(tags[i], &one)) << i;
    ASSERT_EQ(found[i] != 0, n % 2 == 0) << i;
    if (found[i] != 0) {
      EXPECT_EQ(keys[i], KeyFor(n)) << i;
      ++present;
    }
  }
  EXPECT_GT(present, 100);
  std::vector<HeartbeatMacKeyCache::Key> none;
  std::vector<uint8_t> none_found;
  cache.FindMany({}, none, none_found);  // an empty batch is fine
  HeartbeatMacKeyCache empty;
  found.assign(tags.size(), 7);
  empty.FindMany(tags, keys, found);
  EXPECT_TRUE(std::all_of(found.begin(), found.end(), [](uint8_t f) { return f == 0; }));
}

TEST(HeartbeatMacKeyCache, IsBoundedAndKeepsRecentlyUsedKeysOverOthers) {
  constexpr int kMax = 16 * 100;
  HeartbeatMacKeyCache cache(kMax);
  for (int i = 0; i < kMax; ++i) cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(i)), KeyFor(i));
  EXPECT_LE(cache.size(), static_cast<size_t>(kMax));
  EXPECT_GE(cache.size(), static_cast<size_t>(kMax) * 9 / 10);
  // Use the first 200 that are there (their reference bits), then insert 400 newcomers.
  HeartbeatMacKeyCache::Key got{};
  std::vector<int> hot;
  for (int i = 0; i < 200; ++i) {
    if (cache.Find(HeartbeatMacKeyCache::TagOf(Serial(i)), &got)) hot.push_back(i);
  }
  ASSERT_GE(hot.size(), 150u);
  for (int i = kMax; i < kMax + 400; ++i) cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(i)), KeyFor(i));
  EXPECT_LE(cache.size(), static_cast<size_t>(kMax));  // never past the bound
  size_t hot_kept = 0;
  for (int i : hot) hot_kept += cache.Find(HeartbeatMacKeyCache::TagOf(Serial(i)), &got) ? 1 : 0;
  EXPECT_GE(hot_kept * 100, hot.size() * 95) << "recently used keys were evicted before unused ones";
  // No growth once at the bound, however many come.
  const size_t bytes = cache.MemoryBytes();
  for (int i = kMax + 400; i < 10 * kMax; ++i) cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(i)), KeyFor(i));
  EXPECT_EQ(cache.MemoryBytes(), bytes);
  EXPECT_LE(cache.size(), static_cast<size_t>(kMax));
  // Whatever is found is the right key.
  for (int i = 0; i < 10 * kMax; i += 13) {
    if (cache.Find(HeartbeatMacKeyCache::TagOf(Serial(i)), &got)) {
      ASSERT_EQ(got, KeyFor(i)) << i;
    }
  }
}

TEST(HeartbeatMacKeyCache, ConcurrentUseIsSafe) {
  HeartbeatMacKeyCache cache(50'000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      HeartbeatMacKeyCache::Key got{};
      for (int i = 0; i < 20'000; ++i) {
        const int id = t * 20'000 + i;
        cache.Insert(HeartbeatMacKeyCache::TagOf(Serial(id)), KeyFor(id));
        if (cache.Find(HeartbeatMacKeyCache::TagOf(Serial(id)), &got)) {
          EXPECT_EQ(got, KeyFor(id));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.size(), 50'000u);
  EXPECT_GT(cache.size(), 40'000u);
}

}  // namespace
}  // namespace vouch::api
