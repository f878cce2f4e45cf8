#pragma once

// A fixed-size, set-associative hash table for one lcore (conntrack, affinity): all memory is
// taken at construction, lookups and inserts never allocate, and there is exactly one writer (the
// lcore that owns it), so there are no locks. Buckets of kWays slots with 16-bit signatures; a
// bulk lookup hashes a burst of keys first, prefetches their buckets, then compares, so the
// cache misses of a burst overlap (DPDK's rte_hash_lookup_bulk does the same).
//
// Full bucket or table: an expired entry is reclaimed first; then, with `lru`, the entry of the
// bucket used longest ago is evicted; without it the insert fails (the caller forwards anyway).

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>

#include <sys/mman.h>

#include <cstdlib>
#include <new>

#include "dataplane/hash.h"

namespace skiff::dataplane::dpdk {

inline void prefetch(const void* p) {
  __builtin_prefetch(p, 0, 3);
}

// A hash of a key of `words` 64-bit words for the data path's own tables (not the Maglev flow
// hash, which both data paths must agree on): the SSE4.2 CRC32 instruction where there is one
// (three cycles a word, as DPDK's rte_hash_crc), else hashWords. Low bits pick the bucket; the
// signature comes from the high bits of a second round.
inline uint64_t tableHash(const uint64_t* w, size_t words, uint64_t seed) {
#ifdef __SSE4_2__
  uint64_t h = seed;
  for (size_t i = 0; i < words; ++i)
    h = __builtin_ia32_crc32di(h, w[i]);
  return h | __builtin_ia32_crc32di(h, 0x9e3779b97f4a7c15ULL) << 32;
#else
  return hashWords(std::span<const uint64_t>(w, words), seed);
#endif
}

// Table memory: zeroed, 2 MiB-aligned and advised for transparent huge pages when large, so that
// a table of a million flows does not cost a TLB miss per lookup.
struct HugeFree {
  void operator()(void* p) const { std::free(p); }
};
inline void* allocTable(size_t bytes) {
  constexpr size_t kHuge = 2u << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw std::bad_alloc();  // construction only, never in the loop
  if (align == kHuge) (void)madvise(p, rounded, MADV_HUGEPAGE);
  std::memset(p, 0, rounded);
  return p;
}

// Key: trivially copyable, compared by bytes, sizeof a multiple of 8. Value: trivially copyable
// with a `uint64_t lastUsedNs` member.
template <class Key, class Value, size_t kWays = 8>
class FlowTable {
  static_assert(sizeof(Key) % 8 == 0);
  static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);
  static constexpr size_t kWords = sizeof(Key) / 8;

 public:
  struct Slot {
    Key key;
    Value value;
  };

  FlowTable(size_t capacity, bool lru) : capacity_(capacity == 0 ? 1 : capacity), lru_(lru) {
    buckets_ = std::bit_ceil((capacity_ + kWays - 1) / kWays);
    mask_ = buckets_ - 1;
    sigs_.reset(static_cast<Signatures*>(allocTable(buckets_ * sizeof(Signatures))));
    slots_.reset(static_cast<Slot*>(allocTable(buckets_ * kWays * sizeof(Slot))));
  }

  static uint64_t hash(const Key& key) {
    uint64_t w[kWords];
    std::memcpy(w, &key, sizeof(Key));
    return tableHash(w, kWords, 0x6374ULL);
  }

  static bool equal(const Key& a, const Key& b) {
    uint64_t x[kWords], y[kWords];
    std::memcpy(x, &a, sizeof(Key));
    std::memcpy(y, &b, sizeof(Key));
    uint64_t diff = 0;
    for (size_t i = 0; i < kWords; ++i)
      diff |= x[i] ^ y[i];
    return diff == 0;
  }

  Value* lookup(const Key& key) { return lookupHashed(key, hash(key)); }

  // Looks up n keys: out[i] is the value of *keys[i] or null. Three passes over the burst so that
  // its cache misses overlap: hash and prefetch the signature lines; match signatures and
  // prefetch the matching slot; compare keys.
  void lookupBulk(const Key* const* keys, size_t n, Value** out) {
    constexpr size_t kChunk = 32;
    uint64_t h[kChunk];
    int way[kChunk];
    for (size_t base = 0; base < n; base += kChunk) {
      const size_t m = n - base < kChunk ? n - base : kChunk;
      for (size_t i = 0; i < m; ++i) {
        h[i] = hash(*keys[base + i]);
        prefetch(&sigs_.get()[h[i] & mask_]);
      }
      for (size_t i = 0; i < m; ++i) {
        const size_t b = h[i] & mask_;
        const uint16_t sig = signature(h[i]);
        way[i] = -1;
        for (size_t w = 0; w < kWays; ++w) {
          if (sigs_.get()[b].sig[w] == sig) {
            way[i] = static_cast<int>(w);
            prefetch(&slots_.get()[b * kWays + w]);
            break;
          }
        }
      }
      for (size_t i = 0; i < m; ++i) {
        const size_t b = h[i] & mask_;
        Value* v = nullptr;
        if (way[i] >= 0) {
          Slot& first = slots_.get()[b * kWays + static_cast<size_t>(way[i])];
          // The first signature match is almost always the key; else look at the rest.
          v = equal(first.key, *keys[base + i]) ? &first.value
                                                : lookupHashed(*keys[base + i], h[i]);
        }
        out[base + i] = v;
      }
    }
  }

  // Inserts or overwrites. `expired(value)` says whether an entry may be reclaimed. Null if
  // there is no room.
  template <class Expired>
  Value* insert(const Key& key, const Value& value, Expired expired) {
    const uint64_t h = hash(key);
    const size_t b = h & mask_;
    const uint16_t sig = signature(h);
    Signatures& s = sigs_.get()[b];
    Slot* slots = &slots_.get()[b * kWays];
    int free = -1, reclaim = -1, oldest = -1;
    for (size_t i = 0; i < kWays; ++i) {
      if (s.sig[i] == 0) {
        if (free < 0) free = static_cast<int>(i);
        continue;
      }
      if (s.sig[i] == sig && equal(slots[i].key, key)) {
        slots[i].value = value;
        return &slots[i].value;
      }
      if (reclaim < 0 && expired(slots[i].value)) reclaim = static_cast<int>(i);
      if (oldest < 0 || slots[i].value.lastUsedNs < slots[oldest].value.lastUsedNs)
        oldest = static_cast<int>(i);
    }
    int at = -1;
    if (free >= 0 && size() < capacity_) {
      at = free;
      bumpSize(1);
    } else if (reclaim >= 0) {
      at = reclaim;
    } else if (lru_ && oldest >= 0) {
      at = oldest;
      ++evictions_;
    } else {
      return nullptr;
    }
    s.sig[at] = sig;
    slots[at].key = key;
    slots[at].value = value;
    return &slots[at].value;
  }

  bool erase(const Key& key) {
    const uint64_t h = hash(key);
    const size_t b = h & mask_;
    const uint16_t sig = signature(h);
    for (size_t i = 0; i < kWays; ++i) {
      if (sigs_.get()[b].sig[i] == sig && equal(slots_.get()[b * kWays + i].key, key)) {
        sigs_.get()[b].sig[i] = 0;
        bumpSize(-1);
        return true;
      }
    }
    return false;
  }

  void clear() {
    std::memset(static_cast<void*>(sigs_.get()), 0, buckets_ * sizeof(Signatures));
    size_.store(0, std::memory_order_relaxed);
  }

  // Readable from any thread (statistics).
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Signatures {
    uint16_t sig[kWays] = {};  // 0: free
  };

  static uint16_t signature(uint64_t h) {
    const auto s = static_cast<uint16_t>(h >> 48);  // from the second CRC round
    return s == 0 ? 1 : s;
  }

  void bumpSize(int d) {
    size_.store(size_.load(std::memory_order_relaxed) + static_cast<size_t>(d),
                std::memory_order_relaxed);
  }

  Value* lookupHashed(const Key& key, uint64_t h) {
    const size_t b = h & mask_;
    const uint16_t sig = signature(h);
    const Signatures& s = sigs_.get()[b];
    for (size_t i = 0; i < kWays; ++i) {
      if (s.sig[i] != sig) continue;
      Slot& slot = slots_.get()[b * kWays + i];
      if (equal(slot.key, key)) return &slot.value;
    }
    return nullptr;
  }

  size_t capacity_;
  bool lru_;
  size_t buckets_ = 0;
  size_t mask_ = 0;
  std::atomic<size_t> size_{0};
  uint64_t evictions_ = 0;
  std::unique_ptr<Signatures, HugeFree> sigs_;
  std::unique_ptr<Slot, HugeFree> slots_;
};

}  // namespace skiff::dataplane::dpdk
