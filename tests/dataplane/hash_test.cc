#include "dataplane/hash.h"

#include <bit>
#include <cstdint>
#include <set>

#include <gtest/gtest.h>

namespace skiff::dataplane {
namespace {

// MurmurHash3's fmix64 reference values.
TEST(HashTest, Fmix64MatchesMurmur3) {
  EXPECT_EQ(fmix64(0), 0u);
  EXPECT_EQ(fmix64(1), 0xb456bcfc34c2cb2cULL);
  EXPECT_EQ(fmix64(0xffffffffffffffffULL), 0x64b5720b4b825f21ULL);
}

// Maglev tables depend on these values: they must not change between releases.
TEST(HashTest, HashWordsIsPinned) {
  const uint64_t words[3] = {1, 2, 3};
  EXPECT_EQ(hashWords(words, 0), 9678647599706229101ULL);
  EXPECT_EQ(hashWords(words, 7), 8770857338009798652ULL);
  EXPECT_EQ(hashWords({}, 0), 7175312947680778460ULL);
}

TEST(HashTest, HashWordsSeparatesKeys) {
  const uint64_t ab[2] = {1, 2};
  const uint64_t ba[2] = {2, 1};
  const uint64_t a0[2] = {1, 0};
  const uint64_t a[1] = {1};
  EXPECT_NE(hashWords(ab, 0), hashWords(ba, 0));
  EXPECT_NE(hashWords(a0, 0), hashWords(a, 0));
  EXPECT_NE(hashWords(ab, 0), hashWords(ab, 1));

  // Flipping one input bit flips about half the output bits.
  double flipped = 0;
  int samples = 0;
  for (uint64_t key = 0; key < 64; ++key) {
    for (int bit = 0; bit < 64; ++bit) {
      const uint64_t x[2] = {key, 0x0a000001};
      const uint64_t y[2] = {key ^ (uint64_t{1} << bit), 0x0a000001};
      flipped += std::popcount(hashWords(x, 0) ^ hashWords(y, 0));
      ++samples;
    }
  }
  EXPECT_NEAR(flipped / samples, 32.0, 1.0);
}

}  // namespace
}  // namespace skiff::dataplane
