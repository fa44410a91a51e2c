// Byte tests on 8 bytes at a time (SWAR: SIMD within a register), for
// scanners whose input rarely holds what they look for. Each mask has the
// high bit set in exactly the bytes that match: no carry crosses a byte, so
// the masks can be counted as well as tested.
#pragma once

#include <cstdint>
#include <cstring>

namespace espy::base {

inline uint64_t LoadWord(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// `c` in every byte.
constexpr uint64_t Broadcast(unsigned char c) { return 0x0101010101010101ULL * c; }

// The bytes of `x` that are below `n`, for n <= 0x80.
constexpr uint64_t BytesBelow(uint64_t x, unsigned char n) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  // (b & 0x7f) + (0x80 - n) reaches 0x80 exactly when b & 0x7f >= n, and
  // never passes 0xff; bytes with the high bit set are never below n.
  return ~(((x & kLow7) + Broadcast(static_cast<unsigned char>(0x80 - n))) | x | kLow7);
}

// The bytes of `x` equal to `c`.
constexpr uint64_t BytesEqual(uint64_t x, unsigned char c) {
  return BytesBelow(x ^ Broadcast(c), 1);
}

}  // namespace espy::base
