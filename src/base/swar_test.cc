#include "base/swar.h"

#include <bit>
#include <random>

#include "gtest/gtest.h"

namespace espy::base {
namespace {

// Byte by byte: the high bit of each byte that satisfies `pred`.
template <typename Pred>
uint64_t Slow(uint64_t x, Pred pred) {
  uint64_t m = 0;
  for (int i = 0; i < 8; ++i) {
    if (pred(static_cast<unsigned char>(x >> (8 * i)))) m |= uint64_t{0x80} << (8 * i);
  }
  return m;
}

TEST(SwarTest, MasksMatchByteByByteTests) {
  std::mt19937_64 rng(3);
  // Random words, and words built from the bytes near the boundaries.
  const unsigned char edges[] = {0x00, 0x01, 0x0a, 0x0b, 0x1f, 0x20, 0x21, 0x22,
                                 0x5c, 0x7f, 0x80, 0x81, 0x8a, 0x9f, 0xa0, 0xff};
  for (int i = 0; i < 200'000; ++i) {
    uint64_t x = rng();
    if (i % 2 == 0) {
      x = 0;
      for (int b = 0; b < 8; ++b) x |= uint64_t{edges[rng() % 16]} << (8 * b);
    }
    for (unsigned char n : {0x01, 0x20, 0x80}) {
      ASSERT_EQ(Slow(x, [n](unsigned char b) { return b < n; }), BytesBelow(x, n)) << x;
    }
    for (unsigned char c : {0x00, 0x0a, 0x22, 0x5c, 0x8a, 0xff}) {
      ASSERT_EQ(Slow(x, [c](unsigned char b) { return b == c; }), BytesEqual(x, c)) << x;
    }
  }
  EXPECT_EQ(2, std::popcount(BytesEqual(LoadWord("a\nbc\nxyz"), '\n')));
}

}  // namespace
}  // namespace espy::base
