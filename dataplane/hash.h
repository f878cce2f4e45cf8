#pragma once

// Stable hashing for the LB model. Maglev tables must come out the same on every node and in every
// release (two nodes that disagree send one flow to two backends), so these functions are defined
// on values, never on memory layout or std::hash, and their outputs are pinned by tests.

#include <cstdint>
#include <span>

namespace skiff::dataplane {

// MurmurHash3's 64-bit finalizer: a bijection whose every input bit flips each output bit with
// probability close to 1/2.
constexpr uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Hash of a short fixed-length key given as 64-bit words. Each word is spread by a multiply
// before it is folded in, so keys that differ by swapped words hash apart.
constexpr uint64_t hashWords(std::span<const uint64_t> words, uint64_t seed) {
  uint64_t h = fmix64(seed ^ 0x9e3779b97f4a7c15ULL);
  for (uint64_t w : words) {
    h = fmix64(h ^ (w * 0x87c37b91114253d5ULL));
    h = h * 5 + 0x52dce729;
  }
  return fmix64(h ^ words.size());
}

}  // namespace skiff::dataplane
