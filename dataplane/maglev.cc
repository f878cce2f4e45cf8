#include "dataplane/maglev.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dataplane/hash.h"

namespace skiff::dataplane {
namespace {

// Separates the two hashes of a backend key, as Maglev's h1 and h2 must be independent.
constexpr uint64_t kSkipSeedSalt = 0x5bd1e9955bd1e995ULL;

// The key as three words with a fixed byte order, so that tables agree across hosts.
std::array<uint64_t, 3> keyWords(const BackendKey& key) {
  const auto& b = key.address.bytes();
  std::array<uint64_t, 3> words{0, 0, static_cast<uint64_t>(key.address.family()) << 16 | key.port};
  for (size_t i = 0; i < 16; ++i)
    words[i / 8] |= static_cast<uint64_t>(b[i]) << (8 * (i % 8));
  return words;
}

// --- Filling the table -------------------------------------------------------------------------
//
// The table is the one the textbook loop makes (backends take turns in order of identity; each
// turn claims the first free position of the backend's permutation from where its last turn
// ended), computed with fewer unpredictable branches, which is what the textbook loop spends
// its time on (a mispredicted loop exit per turn):
// 1. While at most 3/4 of the table is taken, a turn checks 4 positions of its permutation at a
//    time and takes the first free one (ctz over a byte mask), then 8 at a time while more than
//    `tailSize` positions are free.
// 2. The last few free positions ("the tail", where a probe finds a free position once in
//    hundreds) are claimed without probing: backend b's next claim is the free position p with
//    the smallest index in b's permutation, r_b(p) = (p - offset_b) / skip_b mod M (every
//    position before its cursor is taken, and positions never become free). A row per backend
//    holds r_b(p) << 14 | k for the k-th free position; a turn takes its row's minimum and the
//    position's column is cleared in every row.
// tests/dataplane/maglev_test.cc compares the result with the textbook loop for many backend
// sets, sizes and weights.

// Entries of the tail rows (rows x free positions) at most.
constexpr size_t kTailCells = 1 << 16;
// Bits of a row cell that name the free position (so at most 2^14 tail positions).
constexpr uint32_t kTailIndexBits = 14;
constexpr int32_t kTailDone = INT32_MAX;

uint32_t tailSizeFor(size_t backends, uint32_t tableSize) {
  // A turn in the tail scans a row (free positions / 4 SIMD steps) and clears a column (one store
  // per backend): fewer free positions pay with many backends.
  uint32_t t = backends <= 16 ? 128 : backends <= 128 ? 64 : 32;
  t = std::min<uint32_t>(t, tableSize / 8);
  while (t > 0 && static_cast<size_t>(t) * backends > kTailCells)
    t /= 2;
  return t;
}

// (a * w) mod m for a < m, with wShoup = floor(w * 2^32 / m) (Shoup's method; m < 2^17 here).
inline uint32_t mulMod(uint32_t a, uint32_t w, uint64_t wShoup, uint32_t m) {
  const uint64_t q = (static_cast<uint64_t>(a) * wShoup) >> 32;
  const uint64_t r = static_cast<uint64_t>(a) * w - q * m;
  return static_cast<uint32_t>(r >= m ? r - m : r);
}

// a^-1 mod m (a in 1..m-1, m prime).
uint32_t inverseMod(uint32_t a, uint32_t m) {
  int64_t t = 0, newT = 1, r = m, newR = a;
  while (newR != 0) {
    const int64_t q = r / newR;
    t = std::exchange(newT, t - q * newT);
    r = std::exchange(newR, r - q * newR);
  }
  return static_cast<uint32_t>(t < 0 ? t + m : t);
}

// The smallest cell of row[0, len), len a multiple of 8.
inline int32_t rowMinimum(const int32_t* row, uint32_t len) {
#if defined(__SSE2__)
  __m128i m0 = _mm_set1_epi32(kTailDone);
  __m128i m1 = m0;
  for (uint32_t k = 0; k < len; k += 8) {
    const __m128i a = _mm_load_si128(reinterpret_cast<const __m128i*>(row + k));
    const __m128i b = _mm_load_si128(reinterpret_cast<const __m128i*>(row + k + 4));
    const __m128i ga = _mm_cmpgt_epi32(m0, a);
    const __m128i gb = _mm_cmpgt_epi32(m1, b);
    m0 = _mm_or_si128(_mm_and_si128(ga, a), _mm_andnot_si128(ga, m0));
    m1 = _mm_or_si128(_mm_and_si128(gb, b), _mm_andnot_si128(gb, m1));
  }
  const __m128i g = _mm_cmpgt_epi32(m0, m1);
  m0 = _mm_or_si128(_mm_and_si128(g, m1), _mm_andnot_si128(g, m0));
  alignas(16) int32_t v[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(v), m0);
  return std::min(std::min(v[0], v[1]), std::min(v[2], v[3]));
#else
  int32_t m = kTailDone;
  for (uint32_t k = 0; k < len; ++k)
    m = std::min(m, row[k]);
  return m;
#endif
}

// Per-thread buffers, reused across tables (no allocation per table once warm).
struct FillScratch {
  // Per backend (in order of identity): the cursor, the permutation, the table id, the weight.
  std::vector<uint32_t> next, skip, offset, id, weight;
  std::vector<uint64_t> credit;
  // Per backend: j * skip mod M for j = 0..7, then 8 * skip mod M.
  std::vector<uint32_t> multiples;
  // One byte per position (0 free, 1 taken), twice over (position p at p and p + tableSize: see
  // firstFree), padded to whole words.
  std::vector<uint8_t> taken;
  std::vector<uint32_t> freePositions;
  std::vector<int32_t> rows;  // 16-byte aligned via rowBase()

  void reset(size_t n, uint32_t tableSize) {
    next.resize(n);
    skip.resize(n);
    offset.resize(n);
    id.resize(n);
    weight.resize(n);
    credit.assign(n, 0);
    multiples.resize(n * 9);
    taken.assign(2 * static_cast<size_t>(tableSize) + 8, 0);
  }
  void setBackend(size_t i, const MaglevPermutation& p, uint32_t backendId, uint32_t w,
                  uint32_t tableSize) {
    next[i] = p.offset;
    offset[i] = p.offset;
    skip[i] = p.skip;
    id[i] = backendId;
    weight[i] = w;
    uint32_t* m = &multiples[i * 9];
    uint32_t v = 0;
    for (int j = 0; j < 9; ++j) {
      m[j] = v;
      v += p.skip;
      if (v >= tableSize) v -= tableSize;
    }
  }
  int32_t* rowBase(size_t cells) {
    rows.resize(cells + 4);
    auto at = reinterpret_cast<uintptr_t>(rows.data());
    return reinterpret_cast<int32_t*>((at + 15) & ~static_cast<uintptr_t>(15));
  }
};

FillScratch& fillScratch() {
  thread_local FillScratch scratch;
  return scratch;
}

// The first free position among `pos + multiples[j]` for j = 0..K-1, then the next K, ... (one
// branch per K probes). `taken` holds every position twice (p and p + tableSize), so a probe needs
// no reduction mod tableSize (pos and multiples[j] are both below it).
template <int K>
inline uint32_t firstFree(const uint8_t* taken, uint32_t pos, const uint32_t* multiples,
                          uint32_t tableSize) {
  static_assert(K == 4 || K == 8);
  constexpr uint64_t kOnes = 0x0101010101010101ULL >> (64 - 8 * K);
  const uint32_t stride = multiples[K];
  for (;;) {
    uint64_t word = 0;
    // Unrolled: constant shifts, no loop counter (GCC at -O2 keeps the loop otherwise).
#pragma GCC unroll 8
    for (int j = 0; j < K; ++j)
      word |= static_cast<uint64_t>(taken[pos + multiples[j]]) << (8 * j);
    const uint64_t free = (word ^ kOnes) & kOnes;
    if (free != 0) {
      uint32_t q = pos + multiples[static_cast<uint32_t>(__builtin_ctzll(free)) >> 3];
      return q >= tableSize ? q - tableSize : q;
    }
    pos += stride;
    pos = pos >= tableSize ? pos - tableSize : pos;
  }
}

template <bool kUniform>
void fillTable(FillScratch& s, uint32_t tableSize, uint64_t maxWeight, uint32_t* table) {
  const auto n = static_cast<uint32_t>(s.next.size());
  uint32_t cursor = 0;
  // Plain pointers, not the vectors: the byte stores into `taken` may alias anything, so members
  // read through `s` (a thread_local) would be reloaded after each store.
  uint32_t* next = s.next.data();
  const uint32_t* skip = s.skip.data();
  const uint32_t* id = s.id.data();
  const uint32_t* weight = s.weight.data();
  uint64_t* credit = s.credit.data();
  // The backend of the next turn: every backend in order, or (weighted) a backend of weight w
  // earns w credits a round and spends maxWeight per turn.
  auto nextTurn = [&]() -> uint32_t {
    for (;;) {
      const uint32_t b = cursor;
      cursor = cursor + 1 == n ? 0 : cursor + 1;
      if constexpr (kUniform) {
        return b;
      } else {
        credit[b] += weight[b];
        if (credit[b] >= maxWeight) {
          credit[b] -= maxWeight;
          return b;
        }
      }
    }
  };
  uint8_t* taken = s.taken.data();
  const uint32_t* multiples = s.multiples.data();
  uint32_t left = tableSize;
  auto claim = [&](uint32_t b, uint32_t pos) {
    taken[pos] = 1;
    taken[pos + tableSize] = 1;
    table[pos] = id[b];
    pos += skip[b];
    next[b] = pos >= tableSize ? pos - tableSize : pos;
    --left;
  };
  const uint32_t tail = tailSizeFor(n, tableSize);
  const uint32_t quarter = std::max(tail, tableSize / 4);
  while (left > quarter) {
    const uint32_t b = nextTurn();
    claim(b, firstFree<4>(taken, next[b], multiples + 9 * b, tableSize));
  }
  while (left > tail) {
    const uint32_t b = nextTurn();
    claim(b, firstFree<8>(taken, next[b], multiples + 9 * b, tableSize));
  }
  if (left == 0) return;

  // The tail.
  std::vector<uint32_t>& freePositions = s.freePositions;
  freePositions.clear();
  for (uint32_t w = 0; w < tableSize; w += 8) {
    uint64_t word;
    std::memcpy(&word, taken + w, sizeof(word));
    if (word == 0x0101010101010101ULL) continue;
    for (uint32_t j = 0; j < 8 && w + j < tableSize; ++j) {
      if (taken[w + j] == 0) freePositions.push_back(w + j);
    }
  }
  const uint32_t width = (left + 7) & ~7u;
  int32_t* rows = s.rowBase(static_cast<size_t>(n) * width);
  for (uint32_t b = 0; b < n; ++b) {
    const uint32_t inverse = inverseMod(skip[b], tableSize);
    const uint64_t inverseShoup = (static_cast<uint64_t>(inverse) << 32) / tableSize;
    const uint32_t offset = s.offset[b];
    int32_t* row = rows + static_cast<size_t>(b) * width;
    for (uint32_t k = 0; k < left; ++k) {
      uint32_t d = freePositions[k] + tableSize - offset;
      d = d >= tableSize ? d - tableSize : d;
      row[k] =
          static_cast<int32_t>(mulMod(d, inverse, inverseShoup, tableSize) << kTailIndexBits | k);
    }
    for (uint32_t k = left; k < width; ++k)
      row[k] = kTailDone;
  }
  while (left > 0) {
    const uint32_t b = nextTurn();
    const auto k = static_cast<uint32_t>(rowMinimum(rows + static_cast<size_t>(b) * width, width)) &
                   ((1u << kTailIndexBits) - 1);
    table[freePositions[k]] = id[b];
    for (uint32_t r = 0; r < n; ++r)
      rows[static_cast<size_t>(r) * width + k] = kTailDone;
    --left;
  }
}

}  // namespace

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; d <= n / d; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

uint32_t maglevTableSizeFor(size_t backendCount) {
  for (uint32_t m : kMaglevTableSizeSteps) {
    if (backendCount <= m / kMaglevEntriesPerBackend) return m;
  }
  return kMaglevMaxTableSize;
}

MaglevPermutation maglevPermutation(const BackendKey& key, uint32_t tableSize, uint64_t seed) {
  const std::array<uint64_t, 3> words = keyWords(key);
  const uint64_t h1 = hashWords(words, seed);
  const uint64_t h2 = hashWords(words, seed ^ kSkipSeedSalt);
  MaglevPermutation p;
  p.offset = static_cast<uint32_t>(h1 % tableSize);
  p.skip = tableSize > 1 ? static_cast<uint32_t>(h2 % (tableSize - 1)) + 1 : 1;
  return p;
}

Result<MaglevTable> buildMaglevTable(std::span<const MaglevBackend> backends, uint32_t tableSize,
                                     uint64_t seed) {
  MaglevTable table;
  if (Status s = buildMaglevTableInto(backends, tableSize, table, seed); !s.ok()) return s;
  return table;
}

Status buildMaglevTableInto(std::span<const MaglevBackend> backends, uint32_t tableSize,
                            MaglevTable& table, uint64_t seed) {
  if (tableSize > kMaglevMaxTableSize || !isPrime(tableSize)) {
    return Status::failure("Maglev table size " + std::to_string(tableSize) +
                           " is not a prime up to " + std::to_string(kMaglevMaxTableSize));
  }

  // Turns go in order of identity, so the caller's order does not change the table.
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].key < backends[b].key; });
  for (size_t i = 0; i < order.size(); ++i) {
    const MaglevBackend& b = backends[order[i]];
    if (b.id == kMaglevEmpty) {
      return Status::failure("Maglev backend " + b.key.toString() + " has the reserved id " +
                             std::to_string(kMaglevEmpty));
    }
    if (i > 0 && backends[order[i - 1]].key == b.key) {
      return Status::failure("Maglev backend " + b.key.toString() + " is listed twice");
    }
  }
  std::erase_if(order, [&](uint32_t i) { return backends[i].weight == 0; });
  if (order.size() > tableSize) {
    return Status::failure("Maglev table size " + std::to_string(tableSize) + " is below the " +
                           std::to_string(order.size()) + " weighted backends");
  }

  const size_t n = order.size();
  if (n <= 1) {
    // No backend: every entry empty; one backend: its permutation covers every position.
    table.assign(tableSize, n == 0 ? kMaglevEmpty : backends[order[0]].id);
    return {};
  }
  // Every entry is written below.
  table.resize(tableSize);

  FillScratch& s = fillScratch();
  s.reset(n, tableSize);
  uint64_t maxWeight = 0;
  bool uniform = true;
  for (size_t i = 0; i < n; ++i) {
    const MaglevBackend& b = backends[order[i]];
    const MaglevPermutation p = maglevPermutation(b.key, tableSize, seed);
    s.setBackend(i, p, b.id, b.weight, tableSize);
    if (i > 0 && b.weight != backends[order[0]].weight) uniform = false;
    maxWeight = std::max<uint64_t>(maxWeight, b.weight);
  }
  if (uniform) {
    fillTable<true>(s, tableSize, maxWeight, table.data());
  } else {
    fillTable<false>(s, tableSize, maxWeight, table.data());
  }
  return {};
}

std::vector<uint32_t> changedPositions(std::span<const uint32_t> before,
                                       std::span<const uint32_t> after) {
  std::vector<uint32_t> changed;
  if (before.size() != after.size()) {
    changed.resize(after.size());
    std::iota(changed.begin(), changed.end(), 0u);
    return changed;
  }
  for (size_t i = 0; i < after.size(); ++i) {
    if (before[i] != after[i]) changed.push_back(static_cast<uint32_t>(i));
  }
  return changed;
}

}  // namespace skiff::dataplane
