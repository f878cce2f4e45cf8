#pragma once

// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4): a lookup table of M entries, M prime, each naming a backend.
// A new flow's 5-tuple hash picks an entry; every node that builds the table from the same backends
// gets the same table, and a change of backends moves few entries.
//
// Each backend's preference list is a permutation of the table positions, derived from two stable
// hashes of its identity (address and port, never its place in the list):
//   offset = h1 mod M, skip = h2 mod (M - 1) + 1, permutation[j] = (offset + j * skip) mod M.
// Backends take turns, in order of identity, claiming the next free position of their
// permutation until the table is full. Weights are relative shares: in each round a backend of the
// largest weight takes a turn and a backend of weight w takes w / max-weight turns on average, so
// entry counts are proportional to weights (within one entry).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/service.h"
#include "dataplane/status.h"

namespace skiff::dataplane {

// Cilium's default table size (its --bpf-lb-maglev-table-size); here the step for 82 to 163
// backends (see maglevTableSizeFor).
inline constexpr uint32_t kMaglevDefaultTableSize = 16381;
inline constexpr uint32_t kMaglevMaxTableSize = 65537;
// The table size the picker aims at: at least this many entries per backend, so that each
// backend's share is within 1% of its ideal.
inline constexpr uint32_t kMaglevEntriesPerBackend = 100;
// The sizes maglevTableSizeFor() picks from: primes just below 1024 * 2^k (and the cap), so a
// service's table keeps its size while its backend count stays within a step.
inline constexpr std::array<uint32_t, 7> kMaglevTableSizeSteps = {1021,  2039,  4093, 8191,
                                                                  16381, 32749, 65537};
// A table entry that names no backend (no backend has a weight above zero).
inline constexpr uint32_t kMaglevEmpty = UINT32_MAX;
// Part of every table's identity: all nodes must use the same seed.
inline constexpr uint64_t kMaglevDefaultSeed = 0x736b696666u;  // "skiff"

using MaglevTable = std::vector<uint32_t>;

struct MaglevBackend {
  BackendKey key;
  // Relative share; 0 gets no entries.
  uint32_t weight = 1;
  // What the table stores for this backend: the caller's backend id (a BPF map index, a slot in a
  // DPDK array) or its index in the caller's list. Anything but kMaglevEmpty.
  uint32_t id = 0;
};

bool isPrime(uint32_t n);

// The table size for a service of `backendCount` backends: the smallest step of
// kMaglevTableSizeSteps with at least kMaglevEntriesPerBackend entries per backend (1021 up to 10
// backends, 2039 up to 20, ... 65537 up to 655; above 655 the cap wins: with 1000, a share is
// within 1.5% of M / N). A pure function of the count, so every node picks the same size for the
// same backends; the table keeps its size (and Maglev's small disruption) while the count stays
// within a step, and is built anew at a step (established flows keep their backends through
// conntrack). The cost of a table follows its size: 10,000 services of 10 backends are 10 M
// entries, not 164 M at a fixed 16381. A size set on the service (Service::maglevTableSize) wins.
uint32_t maglevTableSizeFor(size_t backendCount);

// Builds the table of `tableSize` entries (prime, at most kMaglevMaxTableSize, at least the number
// of backends with a weight above zero). Backends are identified by their keys, which must be
// unique; their order does not matter. With no backend of weight above zero every entry is
// kMaglevEmpty. Fails, with a message, on a size or a key that breaks these rules.
//
// Cost: one turn per entry, each probing its permutation 4 or 8 positions per branch until a free
// one turns up (the last few free positions are claimed without probing, see maglev.cc); about
// 0.13 ms for M = 16381 and N = 10 on one core here when each table has other backends
// (bench/dataplane: BM_MaglevBuildDistinctSets; 0.2 ms with the machine under load, when M = 1021,
// the size maglevTableSizeFor(10) picks, took 19 us: a fixed part per table weighs more). Uneven
// weights add rounds in which few backends take a turn: the rounds grow with the largest weight
// over the mean weight.
Result<MaglevTable> buildMaglevTable(std::span<const MaglevBackend> backends, uint32_t tableSize,
                                     uint64_t seed = kMaglevDefaultSeed);
// The same table into `table` (resized to `tableSize`), reusing its buffer: a caller that builds
// many tables allocates none after the first. On failure `table` is left unspecified.
Status buildMaglevTableInto(std::span<const MaglevBackend> backends, uint32_t tableSize,
                            MaglevTable& table, uint64_t seed = kMaglevDefaultSeed);

// The (offset, skip) that seed a backend's permutation; exposed so tests can pin them.
struct MaglevPermutation {
  uint32_t offset = 0;
  uint32_t skip = 0;
};
MaglevPermutation maglevPermutation(const BackendKey& key, uint32_t tableSize,
                                    uint64_t seed = kMaglevDefaultSeed);

// Positions whose entry differs between `before` and `after`, ascending: what a map writer must
// rewrite. Tables of different sizes differ everywhere: every position of `after`.
std::vector<uint32_t> changedPositions(std::span<const uint32_t> before,
                                       std::span<const uint32_t> after);

}  // namespace skiff::dataplane
