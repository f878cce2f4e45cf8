#include "dataplane/maglev.h"

#include <algorithm>
#include <numeric>
#include <string>

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
  const size_t wanted =
      std::max<size_t>(kMaglevDefaultTableSize, backendCount > kMaglevMaxTableSize
                                                    ? kMaglevMaxTableSize
                                                    : backendCount * kMaglevEntriesPerBackend);
  if (wanted >= kMaglevMaxTableSize) return kMaglevMaxTableSize;
  auto m = static_cast<uint32_t>(wanted);
  while (!isPrime(m))
    ++m;  // ends at 65537 at the latest
  return m;
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

  MaglevTable table(tableSize, kMaglevEmpty);
  const size_t n = order.size();
  if (n == 0) return table;

  // Struct of arrays: the inner loop touches only next, skip and the byte map `taken` (16 KiB
  // for M = 16381, so it stays in L1 where the 64 KiB table would not).
  std::vector<uint32_t> next(n), skip(n), id(n);
  std::vector<uint64_t> weight(n), credit(n, 0);
  uint64_t maxWeight = 0;
  for (size_t i = 0; i < n; ++i) {
    const MaglevBackend& b = backends[order[i]];
    const MaglevPermutation p = maglevPermutation(b.key, tableSize, seed);
    next[i] = p.offset;
    skip[i] = p.skip;
    id[i] = b.id;
    weight[i] = b.weight;
    maxWeight = std::max<uint64_t>(maxWeight, b.weight);
  }
  std::vector<uint8_t> taken(tableSize, 0);

  uint32_t filled = 0;
  for (;;) {
    for (size_t i = 0; i < n; ++i) {
      // A backend of weight w earns w credits a round and spends maxWeight per turn.
      credit[i] += weight[i];
      if (credit[i] < maxWeight) continue;
      credit[i] -= maxWeight;

      // Every permutation covers all positions, so a free one is always found.
      uint32_t pos = next[i];
      const uint32_t step = skip[i];
      while (taken[pos] != 0) {
        pos += step;
        if (pos >= tableSize) pos -= tableSize;
      }
      taken[pos] = 1;
      table[pos] = id[i];
      pos += step;
      if (pos >= tableSize) pos -= tableSize;
      next[i] = pos;
      if (++filled == tableSize) return table;
    }
  }
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
