// FlowTable (dataplane/dpdk/flow_table.h), the conntrack and affinity tables: bulk lookups give
// what single lookups and a reference map give (present, absent, overwritten, erased keys, bursts
// longer than a chunk); a full bucket evicts its least recently used entry, or reclaims an expired
// one first, or (without LRU) refuses; a full table refuses new keys without LRU.

#include "dataplane/dpdk/flow_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace skiff::dataplane::dpdk {
namespace {

struct Key {
  uint64_t a;
  uint64_t b;
  bool operator<(const Key& o) const { return a != o.a ? a < o.a : b < o.b; }
};

struct Value {
  uint64_t payload;
  uint64_t lastUsedNs;
};

using Table = FlowTable<Key, Value>;

constexpr auto kNeverExpired = [](const Value&) { return false; };

Key keyOf(uint64_t i) {
  return {i * 0x9e3779b97f4a7c15ULL, i};
}

// `count` distinct keys that all land in bucket `bucket` of `t`.
std::vector<Key> keysInBucket(const Table& t, size_t bucket, size_t count, uint64_t from = 1) {
  std::vector<Key> out;
  for (uint64_t i = from; out.size() < count; ++i) {
    const Key k = keyOf(i);
    if (t.bucketOf(Table::hash(k)) == bucket) out.push_back(k);
  }
  return out;
}

TEST(FlowTableTest, BulkLookupMatchesSingleLookupsAndAReferenceMap) {
  Table t(20000, true);
  std::map<Key, uint64_t> ref;
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < 15000; ++i) {
    const Key k = keyOf(rng() % 30000);
    ASSERT_NE(t.insert(k, Value{i, i}, kNeverExpired), nullptr);
    ref[k] = i;  // an insert of a present key overwrites it
  }
  // Some of them go again.
  size_t erased = 0;
  for (auto it = ref.begin(); it != ref.end() && erased < 1000; ++erased) {
    ASSERT_TRUE(t.erase(it->first));
    it = ref.erase(it);
  }
  EXPECT_EQ(t.size(), ref.size());
  EXPECT_EQ(t.evictions(), 0u);  // 16 ways at under half load: no bucket overflowed

  // Bursts of every length up to 100 (more than one chunk of 32), half present keys.
  std::vector<Key> keys;
  for (uint64_t i = 0; i < 30000; i += 3)
    keys.push_back(keyOf(i));
  size_t present = 0, pos = 0;
  for (size_t n = 1; n <= 100; ++n) {
    std::vector<const Key*> ptrs;
    for (size_t i = 0; i < n; ++i)
      ptrs.push_back(&keys[(pos + i) % keys.size()]);
    pos += n;
    std::vector<Value*> out(n, reinterpret_cast<Value*>(1));
    std::vector<uint64_t> hashes(n, 0);
    t.lookupBulk(ptrs.data(), n, out.data(), hashes.data());
    for (size_t i = 0; i < n; ++i) {
      const Key& k = *ptrs[i];
      EXPECT_EQ(hashes[i], Table::hash(k));
      EXPECT_EQ(out[i], t.lookup(k));
      EXPECT_EQ(out[i], t.lookupHashed(k, hashes[i]));
      auto it = ref.find(k);
      if (it == ref.end()) {
        EXPECT_EQ(out[i], nullptr) << "key " << k.b;
      } else {
        ASSERT_NE(out[i], nullptr) << "key " << k.b;
        EXPECT_EQ(out[i]->payload, it->second);
        ++present;
      }
    }
  }
  EXPECT_GT(present, 1000u);

  // The staged interface gives the same as lookupBulk.
  for (uint64_t i = 0; i < 2000; ++i) {
    const Key k = keyOf(i);
    const uint64_t h = Table::hash(k);
    t.prefetchBucket(h);
    const int way = t.prefetchSlot(h);
    EXPECT_EQ(t.finishLookup(k, h, way), t.lookup(k));
  }
}

// A bucket filled to its last way: every key found, by single and bulk lookups.
TEST(FlowTableTest, OneBucketFilledToItsLastWay) {
  Table t(64, false);
  const std::vector<Key> same = keysInBucket(t, 1, Table::kWays);
  for (size_t i = 0; i < same.size(); ++i)
    ASSERT_NE(t.insert(same[i], Value{i, 0}, kNeverExpired), nullptr);
  for (size_t i = 0; i < same.size(); ++i) {
    const Value* v = t.lookup(same[i]);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->payload, i);
  }
  std::vector<const Key*> ptrs;
  for (const Key& k : same)
    ptrs.push_back(&k);
  std::vector<Value*> out(same.size());
  t.lookupBulk(ptrs.data(), ptrs.size(), out.data());
  for (size_t i = 0; i < same.size(); ++i) {
    ASSERT_NE(out[i], nullptr);
    EXPECT_EQ(out[i]->payload, i);
  }
}

TEST(FlowTableTest, FullBucketEvictsItsLeastRecentlyUsedEntry) {
  Table t(1000, true);
  const std::vector<Key> k = keysInBucket(t, 3, Table::kWays + 2);
  for (size_t i = 0; i < Table::kWays; ++i)  // way i last used at 100 + i, but way 5 oldest
    ASSERT_NE(t.insert(k[i], Value{i, i == 5 ? 1 : 100 + i}, kNeverExpired), nullptr);
  EXPECT_EQ(t.evictions(), 0u);
  ASSERT_NE(t.insert(k[Table::kWays], Value{99, 500}, kNeverExpired), nullptr);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.lookup(k[5]), nullptr);
  ASSERT_NE(t.lookup(k[Table::kWays]), nullptr);
  EXPECT_EQ(t.lookup(k[Table::kWays])->payload, 99u);
  for (size_t i = 0; i < Table::kWays; ++i) {
    if (i != 5) {
      EXPECT_NE(t.lookup(k[i]), nullptr) << i;
    }
  }
  EXPECT_EQ(t.size(), Table::kWays);  // an eviction replaces, it does not add
  // Next oldest: way 0 (100).
  ASSERT_NE(t.insert(k[Table::kWays + 1], Value{98, 501}, kNeverExpired), nullptr);
  EXPECT_EQ(t.lookup(k[0]), nullptr);
  EXPECT_EQ(t.evictions(), 2u);
}

TEST(FlowTableTest, ExpiredEntryIsReclaimedBeforeAnyEviction) {
  for (const bool lru : {true, false}) {
    Table t(1000, lru);
    const std::vector<Key> k = keysInBucket(t, 7, Table::kWays + 1);
    for (size_t i = 0; i < Table::kWays; ++i)
      ASSERT_NE(t.insert(k[i], Value{i, i == 2 ? 1 : 50 + i}, kNeverExpired), nullptr);
    // Entry 9 (not the oldest) is the expired one.
    auto expired = [](const Value& v) { return v.payload == 9; };
    ASSERT_NE(t.insert(k[Table::kWays], Value{77, 600}, expired), nullptr) << lru;
    EXPECT_EQ(t.lookup(k[9]), nullptr);
    EXPECT_NE(t.lookup(k[2]), nullptr);
    EXPECT_EQ(t.evictions(), 0u);
  }
}

TEST(FlowTableTest, WithoutLruAFullBucketRefusesAndKeepsItsEntries) {
  Table t(1000, false);
  const std::vector<Key> k = keysInBucket(t, 0, Table::kWays + 1);
  for (size_t i = 0; i < Table::kWays; ++i)
    ASSERT_NE(t.insert(k[i], Value{i, 1}, kNeverExpired), nullptr);
  EXPECT_EQ(t.insert(k[Table::kWays], Value{1, 2}, kNeverExpired), nullptr);
  EXPECT_EQ(t.lookup(k[Table::kWays]), nullptr);
  for (size_t i = 0; i < Table::kWays; ++i)
    EXPECT_NE(t.lookup(k[i]), nullptr);
  // An existing key is still overwritten in place.
  ASSERT_NE(t.insert(k[4], Value{44, 3}, kNeverExpired), nullptr);
  EXPECT_EQ(t.lookup(k[4])->payload, 44u);
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(FlowTableTest, FullTableRefusesNewKeysWithoutLruAndEvictsWithIt) {
  for (const bool lru : {false, true}) {
    Table t(100, lru);
    for (uint64_t i = 0; t.size() < t.capacity(); ++i) {
      ASSERT_LT(i, 10000u);
      (void)t.insert(keyOf(i), Value{i, i + 1}, kNeverExpired);
    }
    EXPECT_EQ(t.size(), 100u);
    const uint64_t evictions = t.evictions();
    Value* v = t.insert(keyOf(100000), Value{1, 100000}, kNeverExpired);
    if (lru) {
      // The new key's bucket gives up its oldest entry: still 100 entries.
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(t.evictions(), evictions + 1);
      EXPECT_NE(t.lookup(keyOf(100000)), nullptr);
    } else {
      EXPECT_EQ(v, nullptr);
      EXPECT_EQ(t.lookup(keyOf(100000)), nullptr);
    }
    EXPECT_EQ(t.size(), 100u);
    // Once one goes, there is room again.
    uint64_t present = 0;
    while (t.lookup(keyOf(present)) == nullptr)
      ++present;
    ASSERT_TRUE(t.erase(keyOf(present)));
    EXPECT_EQ(t.size(), 99u);
    ASSERT_NE(t.insert(keyOf(100001), Value{2, 100001}, kNeverExpired), nullptr);
    EXPECT_EQ(t.size(), 100u);
    EXPECT_EQ(t.evictions(), evictions + (lru ? 1 : 0));
  }
}

TEST(FlowTableTest, SizedWithTwiceTheSlotsOfItsCapacity) {
  Table t(1000000, true);
  EXPECT_GE(t.buckets() * Table::kWays, 2 * t.capacity());
  // A million keys: almost no bucket overflows (16 ways at half load).
  for (uint64_t i = 0; i < 1000000; ++i)
    ASSERT_NE(t.insert(keyOf(i), Value{i, i}, kNeverExpired), nullptr);
  EXPECT_LT(t.evictions(), 2000u);  // under 0.2 %
  EXPECT_EQ(t.size() + t.evictions(), 1000000u);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.lookup(keyOf(5)), nullptr);
}

}  // namespace
}  // namespace skiff::dataplane::dpdk
