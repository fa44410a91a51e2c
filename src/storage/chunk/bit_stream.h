// Bit-granular writer and reader used by the chunk encoding
// (docs/format/chunk.md). Bits are packed most-significant first: the first
// bit written is the high bit of the first byte.
//
// Both sides move whole 64-bit big-endian words: a write is one unaligned
// load/or/store, a read is one unaligned load and a shift. The writer keeps
// zeroed slack bytes past its last bit so it never needs a bounds check per
// bit; the reader has an unchecked path for callers that have proven enough
// bytes remain and a checked path that pads with zeros past the end.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace espy::storage::chunk {

inline uint64_t LoadBigEndian64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return __builtin_bswap64(v);  // x86-64 and aarch64 are little-endian.
}

inline void StoreBigEndian64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof(v));
}

// The top n bits of w as an integer, for 0 <= n <= 63 (no shift by 64).
inline uint64_t TopBits(uint64_t w, int n) { return (w >> 1) >> (63 - n); }

// Interprets the low n bits of v (1 <= n <= 64) as a two's complement number.
inline int64_t SignExtend(uint64_t v, int n) {
  return static_cast<int64_t>(v << (64 - n)) >> (64 - n);
}

// Appends bits after a fixed prefix of bytes (the chunk header), which the
// owner may rewrite in place. Single-threaded.
class BitWriter {
 public:
  // Zeroed bytes kept past the last written bit, so that a write of up to 57
  // bits at any bit offset is one 64-bit read-modify-write.
  static constexpr size_t kSlackBytes = 8;

  explicit BitWriter(size_t prefix_bytes)
      : buf_(prefix_bytes + 64, '\0'), bit_pos_(prefix_bytes * 8) {}

  // Writes the low n bits of v (higher bits are ignored), 0 <= n <= 57.
  void Write(uint64_t v, int n) {
    uint8_t* p = reinterpret_cast<uint8_t*>(buf_.data()) + (bit_pos_ >> 3);
    uint64_t w = LoadBigEndian64(p);
    w |= ((v << (63 - n)) << 1) >> (bit_pos_ & 7);
    StoreBigEndian64(p, w);
    bit_pos_ += n;
    if ((bit_pos_ >> 3) + kSlackBytes > buf_.size()) buf_.resize(buf_.size() * 2, '\0');
  }

  // Writes the low n bits of v, 0 <= n <= 64.
  void Write64(uint64_t v, int n) {
    if (n > 32) {
      Write(v >> 32, n - 32);
      n = 32;
    }
    Write(v, n);
  }

  // The prefix plus every byte holding a written bit; the unused low bits of
  // the last byte are zero. Valid until the next Write.
  std::string_view bytes() const { return std::string_view(buf_.data(), (bit_pos_ + 7) >> 3); }
  char* mutable_prefix() { return buf_.data(); }
  uint64_t bit_pos() const { return bit_pos_; }

 private:
  std::string buf_;   // bytes() followed by at least kSlackBytes zero bytes
  uint64_t bit_pos_;  // bits written, counting the prefix
};

// Reads bits from a byte range it does not own ("data" must outlive it).
// Thread-compatible.
class BitReader {
 public:
  BitReader() = default;
  BitReader(const uint8_t* data, size_t size, uint64_t start_bit)
      : data_(data), size_(size), pos_(start_bit) {}

  // The next 64 bits from the current position, left-aligned; only the top
  // 57 are guaranteed to be stream bits. Unchecked (kChecked = false)
  // requires HasRoom(8); checked reads zeros past the end, and the caller
  // learns of it from overrun().
  template <bool kChecked>
  uint64_t Peek() const {
    size_t byte = pos_ >> 3;
    if (kChecked && byte + 8 > size_) return SlowPeek();
    return LoadBigEndian64(data_ + byte) << (pos_ & 7);
  }

  void Skip(int n) { pos_ += n; }

  // Reads n bits, 0 <= n <= 57.
  template <bool kChecked>
  uint64_t Read(int n) {
    uint64_t v = TopBits(Peek<kChecked>(), n);
    pos_ += n;
    return v;
  }

  // Reads n bits, 0 <= n <= 64.
  template <bool kChecked>
  uint64_t Read64(int n) {
    if (n <= 57) return Read<kChecked>(n);
    uint64_t hi = Read<kChecked>(n - 32);
    return (hi << 32) | Read<kChecked>(32);
  }

  // True if at least `bytes` whole bytes remain from the current byte on.
  bool HasRoom(size_t bytes) const { return (pos_ >> 3) + bytes <= size_; }
  // True once the position has moved past the last bit of the range.
  bool overrun() const { return pos_ > static_cast<uint64_t>(size_) * 8; }
  uint64_t bit_pos() const { return pos_; }

 private:
  uint64_t SlowPeek() const {
    uint8_t tmp[8] = {};
    size_t byte = pos_ >> 3;
    if (byte < size_) std::memcpy(tmp, data_ + byte, size_ - byte < 8 ? size_ - byte : 8);
    return LoadBigEndian64(tmp) << (pos_ & 7);
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t pos_ = 0;
};

}  // namespace espy::storage::chunk
