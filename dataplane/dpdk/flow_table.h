#pragma once

// A fixed-size, set-associative hash table for one lcore (conntrack, affinity): all memory is
// taken at construction, lookups and inserts never allocate, and there is exactly one writer (the
// lcore that owns it), so there are no locks.
//
// Layout: buckets of kWays (16) slots. A bucket's 16-bit signatures sit together in 32 bytes (two
// buckets to a cache line), compared in one SIMD step; the slots (key and value) are in a second
// array. There are twice as many slots as `capacity` entries, so that a bucket overflows rarely
// (16 ways at half load: under 0.1% of entries find their bucket full); the bucket is picked by a
// multiply-shift of the hash, so the slot count needs no rounding to a power of two.
//
// Bulk lookups run in stages over a burst so that its cache misses overlap (DPDK's
// rte_hash_lookup_bulk does the same): hash every key and prefetch its signature line
// (prefetchBucket), then match signatures and prefetch the matching slot's lines (prefetchSlot),
// then compare keys (finishLookup). lookupBulk() does all three; the pipeline interleaves them
// with its own stages.
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
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <sys/mman.h>

#include <cstdlib>
#include <new>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dataplane/hash.h"

namespace skiff::dataplane::dpdk {

inline void prefetch(const void* p) {
  __builtin_prefetch(p, 0, 3);
}
inline void prefetchWrite(const void* p) {
  __builtin_prefetch(p, 1, 3);
}

// A hash of a key of `words` 64-bit words for the data path's own tables (not the Maglev flow
// hash, which both data paths must agree on): the SSE4.2 CRC32 instruction where there is one
// (three cycles a word, as DPDK's rte_hash_crc), else hashWords. The low 32 bits pick the bucket;
// the signature comes from the high bits (a second round).
inline uint64_t tableHash(const uint64_t* w, size_t words, uint64_t seed) {
#ifdef __SSE4_2__
  uint64_t h = seed;
  // Unrolled: the words stay in registers (a loop made GCC store them to the stack first).
#pragma GCC unroll 8
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
// with a `uint64_t lastUsedNs` member. kSlotAlign 64: each slot starts a cache line, so that a
// key and the head of its value (what a lookup of an established flow reads) are one line.
template <class Key, class Value, size_t kSlotAlign = 8>
class FlowTable {
  static_assert(sizeof(Key) % 8 == 0);
  static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);
  static constexpr size_t kWords = sizeof(Key) / 8;

 public:
  static constexpr size_t kWays = 16;
  // Slots per entry of capacity.
  static constexpr size_t kSlack = 2;

  struct alignas(kSlotAlign) Slot {
    Key key;
    Value value;
  };

  FlowTable(size_t capacity, bool lru) : capacity_(capacity == 0 ? 1 : capacity), lru_(lru) {
    const size_t want = (capacity_ * kSlack + kWays - 1) / kWays;
    buckets_ = want < 2 ? 2 : want;
    if (buckets_ > (size_t{1} << 32)) throw std::length_error("flow table too large");
    sigs_.reset(static_cast<Signatures*>(allocTable(buckets_ * sizeof(Signatures))));
    slots_.reset(static_cast<Slot*>(allocTable(buckets_ * kWays * sizeof(Slot))));
  }

  static uint64_t hash(const Key& key) {
    uint64_t w[kWords];
    std::memcpy(w, &key, sizeof(Key));
    return hashOfWords(w);
  }
  // The same from the key's bytes as 64-bit words (memcpy of the key).
  static uint64_t hashOfWords(const uint64_t (&w)[kWords]) {
    return tableHash(w, kWords, 0x6374ULL);
  }

  static bool equal(const Key& a, const Key& b) {
    return equalWords(reinterpret_cast<const uint8_t*>(&a), reinterpret_cast<const uint8_t*>(&b),
                      std::make_index_sequence<kWords>{});
  }

  size_t bucketOf(uint64_t h) const {
    return static_cast<size_t>((static_cast<uint64_t>(static_cast<uint32_t>(h)) * buckets_) >> 32);
  }

  // Stage 1 of a lookup or insert: the signature line of hash `h`.
  void prefetchBucket(uint64_t h) const { prefetch(&sigs_.get()[bucketOf(h)]); }

  // Stage 2: the slot whose signature matches (its first line, and with `whole` every line of
  // it); -1 if none does. The first match is almost always the key; finishLookup looks at the
  // others if it is not.
  int prefetchSlot(uint64_t h, bool whole = true) const {
    const size_t b = bucketOf(h);
    const uint32_t m = matches(sigs_.get()[b], signature(h));
    if (m == 0) return -1;
    const int w = std::countr_zero(m);
    const Slot* s = &slots_.get()[b * kWays + static_cast<size_t>(w)];
    prefetch(s);
    if (whole || kSlotAlign < 64) prefetch(reinterpret_cast<const uint8_t*>(s) + sizeof(Slot) - 1);
    return w;
  }

  // Stage 3: the value of `key` (hash `h`, first matching way `way` from prefetchSlot) or null.
  Value* finishLookup(const Key& key, uint64_t h, int way) {
    if (way < 0) return nullptr;
    Slot& first = slots_.get()[bucketOf(h) * kWays + static_cast<size_t>(way)];
    return equal(first.key, key) ? &first.value : lookupHashed(key, h);
  }

  Value* lookup(const Key& key) { return lookupHashed(key, hash(key)); }

  // The value of `key` with hash `h`, or null.
  Value* lookupHashed(const Key& key, uint64_t h) {
    const size_t b = bucketOf(h);
    uint32_t m = matches(sigs_.get()[b], signature(h));
    while (m != 0) {
      const int w = std::countr_zero(m);
      m &= m - 1;
      Slot& slot = slots_.get()[b * kWays + static_cast<size_t>(w)];
      if (equal(slot.key, key)) return &slot.value;
    }
    return nullptr;
  }

  // Looks up n keys: out[i] is the value of *keys[i] or null; hashes[i] (if not null) receives
  // the key's hash for lookupHashed/insertHashed. The three stages over chunks of 32 keys.
  void lookupBulk(const Key* const* keys, size_t n, Value** out, uint64_t* hashes = nullptr) {
    constexpr size_t kChunk = 32;
    uint64_t h[kChunk];
    int way[kChunk];
    for (size_t base = 0; base < n; base += kChunk) {
      const size_t m = n - base < kChunk ? n - base : kChunk;
      for (size_t i = 0; i < m; ++i) {
        h[i] = hash(*keys[base + i]);
        prefetchBucket(h[i]);
      }
      for (size_t i = 0; i < m; ++i)
        way[i] = prefetchSlot(h[i]);
      for (size_t i = 0; i < m; ++i) {
        out[base + i] = finishLookup(*keys[base + i], h[i], way[i]);
        if (hashes != nullptr) hashes[base + i] = h[i];
      }
    }
  }

  // Prefetches, for writing, the slot an insert of hash `h` would take if its bucket has a free
  // way (its signature line should be in cache already: prefetchBucket).
  void prefetchInsert(uint64_t h) const {
    const size_t b = bucketOf(h);
    const uint32_t m = matches(sigs_.get()[b], 0);
    if (m == 0) return;
    const Slot* s = &slots_.get()[b * kWays + static_cast<size_t>(std::countr_zero(m))];
    prefetchWrite(s);
    prefetchWrite(reinterpret_cast<const uint8_t*>(s) + sizeof(Slot) - 1);
  }

  // Inserts or overwrites. `expired(value)` says whether an entry may be reclaimed. Null if
  // there is no room.
  template <class Expired>
  Value* insert(const Key& key, const Value& value, Expired expired) {
    return insertHashed(key, hash(key), value, expired);
  }

  template <class Expired>
  Value* insertHashed(const Key& key, uint64_t h, const Value& value, Expired expired) {
    const size_t b = bucketOf(h);
    const uint16_t sig = signature(h);
    Signatures& s = sigs_.get()[b];
    Slot* slots = &slots_.get()[b * kWays];
    for (uint32_t m = matches(s, sig); m != 0; m &= m - 1) {
      const int w = std::countr_zero(m);
      if (equal(slots[w].key, key)) {
        slots[w].value = value;
        return &slots[w].value;
      }
    }
    int at = -1;
    if (const uint32_t free = matches(s, 0); free != 0 && size() < capacity_) {
      at = std::countr_zero(free);
      bumpSize(1);
    } else {
      // Full bucket or table: the values of the bucket are read only now.
      int reclaim = -1, oldest = -1;
      for (size_t i = 0; i < kWays; ++i) {
        if (s.sig[i] == 0) continue;
        if (expired(slots[i].value)) {
          reclaim = static_cast<int>(i);
          break;
        }
        if (oldest < 0 || slots[i].value.lastUsedNs < slots[oldest].value.lastUsedNs)
          oldest = static_cast<int>(i);
      }
      if (reclaim >= 0) {
        at = reclaim;
      } else if (lru_ && oldest >= 0) {
        at = oldest;
        ++evictions_;
      } else {
        return nullptr;
      }
    }
    s.sig[at] = sig;
    slots[at].key = key;
    slots[at].value = value;
    return &slots[at].value;
  }

  bool erase(const Key& key) {
    const uint64_t h = hash(key);
    const size_t b = bucketOf(h);
    for (uint32_t m = matches(sigs_.get()[b], signature(h)); m != 0; m &= m - 1) {
      const int w = std::countr_zero(m);
      if (equal(slots_.get()[b * kWays + static_cast<size_t>(w)].key, key)) {
        sigs_.get()[b].sig[w] = 0;
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
  size_t buckets() const { return buckets_; }
  uint64_t evictions() const { return evictions_; }

 private:
  // Word by word from both keys, unrolled (no copies of the keys to the stack).
  template <size_t... I>
  static bool equalWords(const uint8_t* x, const uint8_t* y, std::index_sequence<I...>) {
    const auto word = [](const uint8_t* p, size_t i) {
      uint64_t w;
      std::memcpy(&w, p + 8 * i, 8);
      return w;
    };
    return ((... | (word(x, I) ^ word(y, I)))) == 0;
  }

  struct alignas(32) Signatures {
    uint16_t sig[kWays] = {};  // 0: free
  };
  static_assert(sizeof(Signatures) == 32);

  static uint16_t signature(uint64_t h) {
    const auto s = static_cast<uint16_t>(h >> 48);  // from the second CRC round
    return s == 0 ? 1 : s;
  }

  // Bit w set if way w holds `sig`.
  static uint32_t matches(const Signatures& s, uint16_t sig) {
#ifdef __SSE2__
    const __m128i want = _mm_set1_epi16(static_cast<short>(sig));
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(s.sig));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(s.sig + 8));
    // One byte per way: packs the 16-bit compare results to 8 bits each.
    const __m128i eq = _mm_packs_epi16(_mm_cmpeq_epi16(lo, want), _mm_cmpeq_epi16(hi, want));
    return static_cast<uint32_t>(_mm_movemask_epi8(eq));
#else
    uint32_t m = 0;
    for (size_t i = 0; i < kWays; ++i)
      m |= static_cast<uint32_t>(s.sig[i] == sig) << i;
    return m;
#endif
  }

  void bumpSize(int d) {
    size_.store(size_.load(std::memory_order_relaxed) + static_cast<size_t>(d),
                std::memory_order_relaxed);
  }

  size_t capacity_;
  bool lru_;
  size_t buckets_ = 0;
  std::atomic<size_t> size_{0};
  uint64_t evictions_ = 0;
  std::unique_ptr<Signatures, HugeFree> sigs_;
  std::unique_ptr<Slot, HugeFree> slots_;
};

}  // namespace skiff::dataplane::dpdk
