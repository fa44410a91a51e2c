// Chunk encoder and decoders. The bit codes are described, with their
// reasons, in docs/format/chunk.md; the constants below must match it.
#include "storage/chunk/chunk.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/check.h"
#include "base/status_macros.h"
#include "encoding/coding.h"
#include "fmt/format.h"

namespace espy::storage::chunk {
namespace {

using State = ChunkIterator::State;

constexpr double kPow10[kMaxDecimalScale + 1] = {1, 10, 100, 1000, 10000};
constexpr uint64_t kPow10Int[kMaxDecimalScale + 1] = {1, 10, 100, 1000, 10000};
constexpr uint64_t kMaxExactInteger = uint64_t{1} << 53;

// Timestamp delta-of-delta buckets: prefix '0' is dod 0; '10', '110',
// '1110', '11110' carry a two's complement dod of these widths; '11111'
// carries all 64 bits.
constexpr int kDodBits[5] = {0, 7, 14, 20, 32};

// Decimal deltas are zig-zagged; |m| <= 2^53 bounds a delta's zig-zag to 55 bits.
constexpr int kMaxDeltaWidth = 55;
static_assert(kMaxDeltaWidth + 1 <= 57, "a reuse-width delta is read from one Peek");
// A delta narrower than the current width by more than this announces a new
// width instead of padding: after an outlier the width comes back down.
constexpr int kWidthSlack = 7;
// Raw exceptions in a decimal chunk are allowed while there is at most about
// one per this many samples; beyond that XOR is cheaper.
constexpr uint32_t kExceptionSpacing = 8;
// Ulp residuals of kDecimalUlp: '0' is none, '1' + this many bits of two's
// complement, so -4..3.
constexpr int kUlpBits = 3;

// Most bits one sample can take: timestamp 5 + 64, XOR value 2 + 5 + 6 + 64
// (a decimal value takes at most 3 + 64, or 9 + 55 + 1 + kUlpBits).
constexpr int kMaxSampleBits = 5 + 64 + 2 + 5 + 6 + 64;
// Unchecked reads are safe while this many bytes remain from the current
// byte: a whole sample plus the 8 bytes the last 64-bit load touches.
constexpr size_t kFastRoomBytes = (kMaxSampleBits + 7) / 8 + 8 + 1;

enum class Fault { kNone, kTimeNotIncreasing, kBadWidth, kBadXorWindow };

std::string_view FaultText(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "ok";
    case Fault::kTimeNotIncreasing:
      return "timestamp not after the previous one";
    case Fault::kBadWidth:
      return "delta width outside 1..55";
    case Fault::kBadXorWindow:
      return "XOR window wider than 64 bits";
  }
  return "unknown fault";
}

absl::Status Corrupt(uint32_t sample, uint32_t count, uint64_t bit_pos, std::string_view what) {
  return absl::DataLossError(
      fmt::format("chunk: sample {} of {} at byte {}: {}", sample, count, bit_pos / 8, what));
}

// m with m / 10^k == v bit for bit and |m| <= 2^53, if there is one.
bool ToScaled(double v, int k, int64_t* m) {
  double s = v * kPow10[k];
  if (!(std::fabs(s) <= static_cast<double>(kMaxExactInteger))) return false;  // also NaN
  int64_t mi = static_cast<int64_t>(std::rint(s));
  double back = static_cast<double>(mi) / kPow10[k];
  if (std::bit_cast<uint64_t>(back) != std::bit_cast<uint64_t>(v)) return false;  // e.g. -0.0
  *m = mi;
  return true;
}

// m and r with bits(m / 10^k) + r == bits(v), |m| <= 2^53 and r in the
// kUlpBits range, if there are.
bool ToScaledUlp(double v, int k, int64_t* m, int64_t* r) {
  double s = v * kPow10[k];
  if (!(std::fabs(s) <= static_cast<double>(kMaxExactInteger))) return false;  // also NaN
  int64_t mi = static_cast<int64_t>(std::rint(s));
  double back = static_cast<double>(mi) / kPow10[k];
  const int64_t d =
      static_cast<int64_t>(std::bit_cast<uint64_t>(v) - std::bit_cast<uint64_t>(back));
  constexpr int64_t kHalf = int64_t{1} << (kUlpBits - 1);
  if (d < -kHalf || d >= kHalf) return false;  // e.g. -0.0, or not near a decimal
  *m = mi;
  *r = d;
  return true;
}

// Whether a decimal (or decimal-ulp) chunk of scale k holds v without an exception.
bool FitsScale(double v, ValueEncoding enc, int k) {
  int64_t m, r;
  return enc == ValueEncoding::kDecimalUlp ? ToScaledUlp(v, k, &m, &r) : ToScaled(v, k, &m);
}

template <bool kChecked>
inline Fault DecodeTimestamp(BitReader& r, State& s) {
  uint64_t w = r.Peek<kChecked>();
  uint64_t dod = 0;
  if (w >> 63) {
    int ones = std::countl_one(w);
    if (ones < 5) {
      int prefix = ones + 1;
      int bits = kDodBits[ones];
      dod = static_cast<uint64_t>(SignExtend(TopBits(w << prefix, bits), bits));
      r.Skip(prefix + bits);
    } else {
      r.Skip(5);
      dod = r.Read64<kChecked>(64);
    }
  } else {
    r.Skip(1);
  }
  s.delta += dod;
  int64_t t = static_cast<int64_t>(static_cast<uint64_t>(s.t) + s.delta);
  if (t <= s.t) [[unlikely]]
    return Fault::kTimeNotIncreasing;
  s.t = t;
  return Fault::kNone;
}

// Value codes: '0' + width bits: zig-zag delta of the scaled integer in the
// current width; '10': delta 0; '110' + 6-bit width n + n bits: new width;
// '111' + 64 bits: a raw exception value (the scaled integer is unchanged).
template <bool kChecked>
inline Fault DecodeDecimal(BitReader& r, State& s, double divisor) {
  uint64_t w = r.Peek<kChecked>();
  if (!(w >> 63)) {
    uint64_t zz = TopBits(w << 1, s.width);
    r.Skip(1 + s.width);
    s.m += static_cast<uint64_t>(encoding::UnZigZag(zz));
  } else if (!((w >> 62) & 1)) {
    r.Skip(2);
  } else if (!((w >> 61) & 1)) {
    int n = static_cast<int>((w >> 55) & 63);
    if (n == 0 || n > kMaxDeltaWidth) [[unlikely]]
      return Fault::kBadWidth;
    r.Skip(9);
    s.width = n;
    s.m += static_cast<uint64_t>(encoding::UnZigZag(r.Read<kChecked>(n)));
  } else {
    r.Skip(3);
    s.v = std::bit_cast<double>(r.Read64<kChecked>(64));
    return Fault::kNone;
  }
  s.v = static_cast<double>(static_cast<int64_t>(s.m)) / divisor;
  return Fault::kNone;
}

// Value codes (Gorilla): '0': same value; '10' + bits: XOR inside the
// previous window; '11' + 5-bit leading zeros + 6-bit length (0 = 64) +
// bits: XOR in a new window.
// kDecimalUlp: a decimal code, then (unless it was an exception) the ulp
// residual: '0', or '1' + kUlpBits two's complement bits.
template <bool kChecked>
inline Fault DecodeDecimalUlp(BitReader& r, State& s, double divisor) {
  const bool exception = (r.Peek<kChecked>() >> 61) == 0b111;
  Fault f = DecodeDecimal<kChecked>(r, s, divisor);
  if (f != Fault::kNone || exception) return f;
  uint64_t w = r.Peek<kChecked>();
  if (!(w >> 63)) {
    r.Skip(1);
    return Fault::kNone;
  }
  const int64_t d = SignExtend(TopBits(w << 1, kUlpBits), kUlpBits);
  r.Skip(1 + kUlpBits);
  s.v = std::bit_cast<double>(std::bit_cast<uint64_t>(s.v) + static_cast<uint64_t>(d));
  return Fault::kNone;
}

template <bool kChecked>
inline Fault DecodeXor(BitReader& r, State& s) {
  uint64_t w = r.Peek<kChecked>();
  if (!(w >> 63)) {
    r.Skip(1);
    return Fault::kNone;
  }
  int sig;
  if (!((w >> 62) & 1)) {
    r.Skip(2);
    sig = 64 - s.leading - s.trailing;
  } else {
    int leading = static_cast<int>((w >> 57) & 31);
    int len = static_cast<int>((w >> 51) & 63);
    sig = len == 0 ? 64 : len;
    if (leading + sig > 64) [[unlikely]]
      return Fault::kBadXorWindow;
    r.Skip(13);
    s.leading = leading;
    s.trailing = 64 - leading - sig;
  }
  s.bits ^= r.Read64<kChecked>(sig) << s.trailing;
  s.v = std::bit_cast<double>(s.bits);
  return Fault::kNone;
}

template <ValueEncoding kEnc, bool kChecked>
inline Fault DecodeValue(BitReader& r, State& s, double divisor) {
  if constexpr (kEnc == ValueEncoding::kDecimal) {
    return DecodeDecimal<kChecked>(r, s, divisor);
  } else if constexpr (kEnc == ValueEncoding::kDecimalUlp) {
    return DecodeDecimalUlp<kChecked>(r, s, divisor);
  } else {
    return DecodeXor<kChecked>(r, s);
  }
}

template <bool kChecked>
inline Fault DecodeValueDyn(ValueEncoding enc, BitReader& r, State& s, double divisor) {
  switch (enc) {
    case ValueEncoding::kDecimal:
      return DecodeDecimal<kChecked>(r, s, divisor);
    case ValueEncoding::kDecimalUlp:
      return DecodeDecimalUlp<kChecked>(r, s, divisor);
    case ValueEncoding::kXor:
      break;
  }
  return DecodeXor<kChecked>(r, s);
}

BitReader MakeReader(std::string_view chunk) {
  return BitReader(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size(),
                   kChunkHeaderSize * 8);
}

// Decodes all h.num_samples samples into ts[0..n) and vs[0..n).
template <ValueEncoding kEnc>
absl::Status DecodeAll(const ChunkHeader& h, std::string_view chunk, int64_t* ts, double* vs) {
  const uint32_t n = h.num_samples;
  if (n == 0) return absl::OkStatus();
  BitReader r = MakeReader(chunk);
  State s;
  s.t = h.min_time;
  const double divisor = kPow10[h.scale];
  Fault f = DecodeValue<kEnc, true>(r, s, divisor);
  if (f != Fault::kNone) return Corrupt(0, n, r.bit_pos(), FaultText(f));
  if (r.overrun()) return Corrupt(0, n, r.bit_pos(), "truncated");
  s.width = 0;  // the first value's width says nothing about deltas
  ts[0] = s.t;
  vs[0] = s.v;
  uint32_t i = 1;
  // Fast loop: enough bytes remain for any sample, so reads are unchecked.
  for (; i < n && r.HasRoom(kFastRoomBytes); ++i) {
    f = DecodeTimestamp<false>(r, s);
    if (f == Fault::kNone) f = DecodeValue<kEnc, false>(r, s, divisor);
    if (f != Fault::kNone) [[unlikely]]
      return Corrupt(i, n, r.bit_pos(), FaultText(f));
    ts[i] = s.t;
    vs[i] = s.v;
  }
  for (; i < n; ++i) {
    f = DecodeTimestamp<true>(r, s);
    if (f == Fault::kNone) f = DecodeValue<kEnc, true>(r, s, divisor);
    if (f != Fault::kNone) return Corrupt(i, n, r.bit_pos(), FaultText(f));
    if (r.overrun()) return Corrupt(i, n, r.bit_pos(), "truncated");
    ts[i] = s.t;
    vs[i] = s.v;
  }
  if (s.t != h.max_time) {
    return Corrupt(n - 1, n, r.bit_pos(),
                   fmt::format("last timestamp {} differs from the header's {}", s.t, h.max_time));
  }
  return absl::OkStatus();
}

void PutFixed64At(char* p, uint64_t v) { std::memcpy(p, &v, sizeof(v)); }

}  // namespace

absl::StatusOr<ChunkHeader> ReadChunkHeader(std::string_view chunk) {
  if (chunk.size() < kChunkHeaderSize) {
    return absl::DataLossError(fmt::format("chunk: {} bytes, shorter than the {}-byte header",
                                           chunk.size(), kChunkHeaderSize));
  }
  const char* p = chunk.data();
  const uint8_t version = static_cast<uint8_t>(p[0]);
  if (version != kChunkFormatVersion) {
    return absl::DataLossError(fmt::format("chunk: format version {} unsupported (want {})",
                                           version, kChunkFormatVersion));
  }
  const uint8_t enc = static_cast<uint8_t>(p[1]);
  if (enc > kDecimalUlpEncodingByte + kMaxDecimalScale) {
    return absl::DataLossError(fmt::format("chunk: value encoding byte {} unknown (want 0..{})",
                                           enc, kDecimalUlpEncodingByte + kMaxDecimalScale));
  }
  ChunkHeader h;
  if (enc == kXorEncodingByte) {
    h.encoding = ValueEncoding::kXor;
  } else if (enc >= kDecimalUlpEncodingByte) {
    h.encoding = ValueEncoding::kDecimalUlp;
    h.scale = enc - kDecimalUlpEncodingByte;
  } else {
    h.encoding = ValueEncoding::kDecimal;
    h.scale = enc;
  }
  h.num_samples = encoding::DecodeFixed32(p + 2);
  h.min_time = static_cast<int64_t>(encoding::DecodeFixed64(p + 6));
  h.max_time = static_cast<int64_t>(encoding::DecodeFixed64(p + 14));
  const uint64_t n = h.num_samples;
  if (n == 0) {
    if (h.min_time != 0 || h.max_time != 0) {
      return absl::DataLossError(fmt::format(
          "chunk: empty chunk has time range [{}, {}] (want [0, 0])", h.min_time, h.max_time));
    }
    return h;
  }
  if (h.max_time < h.min_time ||
      static_cast<uint64_t>(h.max_time) - static_cast<uint64_t>(h.min_time) < n - 1) {
    return absl::DataLossError(
        fmt::format("chunk: {} samples cannot have increasing timestamps in [{}, {}]", n,
                    h.min_time, h.max_time));
  }
  // Every sample takes at least one value bit, every one after the first also
  // a timestamp bit; this bounds what a corrupt count makes a decoder allocate.
  const uint64_t stream_bits = (chunk.size() - kChunkHeaderSize) * 8;
  if (stream_bits < 2 * n - 1) {
    return absl::DataLossError(fmt::format("chunk: {} samples need at least {} bits, stream has {}",
                                           n, 2 * n - 1, stream_bits));
  }
  return h;
}

absl::Status DecodeChunk(std::string_view chunk, std::vector<int64_t>* ts,
                         std::vector<double>* vs) {
  ESPY_ASSIGN_OR_RETURN(ChunkHeader h, ReadChunkHeader(chunk));
  const size_t old_ts = ts->size();
  const size_t old_vs = vs->size();
  ts->resize(old_ts + h.num_samples);
  vs->resize(old_vs + h.num_samples);
  int64_t* t = ts->data() + old_ts;
  double* v = vs->data() + old_vs;
  absl::Status st;
  switch (h.encoding) {
    case ValueEncoding::kDecimal:
      st = DecodeAll<ValueEncoding::kDecimal>(h, chunk, t, v);
      break;
    case ValueEncoding::kDecimalUlp:
      st = DecodeAll<ValueEncoding::kDecimalUlp>(h, chunk, t, v);
      break;
    case ValueEncoding::kXor:
      st = DecodeAll<ValueEncoding::kXor>(h, chunk, t, v);
      break;
  }
  if (!st.ok()) {
    ts->resize(old_ts);
    vs->resize(old_vs);
  }
  return st;
}

absl::Status DecodeChunkRange(std::string_view chunk, int64_t mint, int64_t maxt,
                              std::vector<int64_t>* ts, std::vector<double>* vs) {
  const size_t old_ts = ts->size();
  const size_t old_vs = vs->size();
  ESPY_RETURN_IF_ERROR(DecodeChunk(chunk, ts, vs));
  auto first = ts->begin() + old_ts;
  auto lo = std::lower_bound(first, ts->end(), mint);
  auto hi = std::upper_bound(lo, ts->end(), maxt);
  const size_t lo_i = lo - first;
  const size_t hi_i = hi - first;
  ts->erase(hi, ts->end());
  ts->erase(first, ts->begin() + old_ts + lo_i);
  vs->erase(vs->begin() + old_vs + hi_i, vs->end());
  vs->erase(vs->begin() + old_vs, vs->begin() + old_vs + lo_i);
  return absl::OkStatus();
}

// ---- ChunkIterator ----

ChunkIterator::ChunkIterator(std::string_view chunk) {
  absl::StatusOr<ChunkHeader> h = ReadChunkHeader(chunk);
  if (!h.ok()) {
    status_ = h.status();
    done_ = true;
    return;
  }
  header_ = *h;
  reader_ = MakeReader(chunk);
  state_.t = header_.min_time;
}

void ChunkIterator::Fail(std::string_view what) {
  status_ = Corrupt(next_, header_.num_samples, reader_.bit_pos(), what);
  done_ = true;
}

bool ChunkIterator::Next() {
  if (done_) return false;
  if (next_ >= header_.num_samples) {
    done_ = true;
    return false;
  }
  const double divisor = kPow10[header_.scale];
  Fault f;
  if (next_ == 0) {
    f = DecodeValueDyn<true>(header_.encoding, reader_, state_, divisor);
    state_.width = 0;  // the first value's width says nothing about deltas
  } else if (reader_.HasRoom(kFastRoomBytes)) {
    f = DecodeTimestamp<false>(reader_, state_);
    if (f == Fault::kNone) f = DecodeValueDyn<false>(header_.encoding, reader_, state_, divisor);
  } else {
    f = DecodeTimestamp<true>(reader_, state_);
    if (f == Fault::kNone) f = DecodeValueDyn<true>(header_.encoding, reader_, state_, divisor);
  }
  if (f != Fault::kNone) {
    Fail(FaultText(f));
    return false;
  }
  if (reader_.overrun()) {
    Fail("truncated");
    return false;
  }
  if (next_ + 1 == header_.num_samples && state_.t != header_.max_time) {
    Fail(fmt::format("last timestamp {} differs from the header's {}", state_.t, header_.max_time));
    return false;
  }
  ++next_;
  t_ = state_.t;
  v_ = state_.v;
  return true;
}

bool ChunkIterator::Seek(int64_t t) {
  if (done_) return false;
  if (next_ > 0 && t_ >= t) return true;
  if (t > header_.max_time) {
    done_ = true;  // no sample can qualify; skip decoding the rest
    return false;
  }
  while (Next()) {
    if (t_ >= t) return true;
  }
  return false;
}

// ---- ChunkAppender ----

ChunkAppender::ChunkAppender() : writer_(kChunkHeaderSize) { WriteHeader(); }

absl::StatusOr<ChunkAppender> ChunkAppender::Resume(std::string_view chunk) {
  ESPY_ASSIGN_OR_RETURN(ChunkHeader h, ReadChunkHeader(chunk));
  std::vector<int64_t> ts;
  std::vector<double> vs;
  ESPY_RETURN_IF_ERROR(DecodeChunk(chunk, &ts, &vs));
  ChunkAppender app;
  app.Rebuild(h.encoding, h.scale, ts, vs);
  return app;
}

void ChunkAppender::WriteHeader() {
  char* p = writer_.mutable_prefix();
  p[0] = static_cast<char>(kChunkFormatVersion);
  p[1] =
      static_cast<char>(encoding_ == ValueEncoding::kXor          ? kXorEncodingByte
                        : encoding_ == ValueEncoding::kDecimalUlp ? kDecimalUlpEncodingByte + scale_
                                                                  : scale_);
  encoding::EncodeFixed32(p + 2, count_);
  PutFixed64At(p + 6, static_cast<uint64_t>(min_t_));
  PutFixed64At(p + 14, static_cast<uint64_t>(max_t_));
}

absl::Status ChunkAppender::Append(int64_t t, double v) {
  if (count_ > 0 && t <= max_t_) {
    return absl::InvalidArgumentError(fmt::format(
        "chunk append: timestamp {} is not after the chunk's last timestamp {}", t, max_t_));
  }
  if (count_ == std::numeric_limits<uint32_t>::max()) {
    return absl::ResourceExhaustedError(
        fmt::format("chunk append: chunk is full ({} samples)", count_));
  }
  int64_t m, r;
  if (count_ == 0) {
    // The smallest exact decimal scale; a special value (NaN, infinity,
    // -0.0) starts as an exception and the next values decide; any other
    // value no scale can hold means XOR.
    encoding_ = ValueEncoding::kXor;
    scale_ = 0;
    for (int k = 0; k <= kMaxDecimalScale; ++k) {
      if (ToScaled(v, k, &m)) {
        encoding_ = ValueEncoding::kDecimal;
        scale_ = k;
        break;
      }
    }
    for (int k = 0; k <= kMaxDecimalScale && encoding_ == ValueEncoding::kXor; ++k) {
      if (ToScaledUlp(v, k, &m, &r)) {
        encoding_ = ValueEncoding::kDecimalUlp;
        scale_ = k;
      }
    }
    if (encoding_ == ValueEncoding::kXor && (!std::isfinite(v) || v == 0)) {
      encoding_ = ValueEncoding::kDecimal;
    }
  } else if (encoding_ != ValueEncoding::kXor && !FitsScale(v, encoding_, scale_)) {
    // In order of preference: an exact larger scale, the same or a larger
    // scale with ulp residuals, a rare exception, XOR.
    auto rescalable = [&](int k) { return max_abs_m_ <= kMaxExactInteger / kPow10Int[k - scale_]; };
    ValueEncoding to = ValueEncoding::kXor;
    int rescale = -1;
    if (encoding_ == ValueEncoding::kDecimal) {
      for (int k = scale_ + 1; k <= kMaxDecimalScale && rescale < 0; ++k) {
        if (ToScaled(v, k, &m) && rescalable(k)) {
          to = ValueEncoding::kDecimal;
          rescale = k;
        }
      }
    }
    for (int k = scale_; k <= kMaxDecimalScale && rescale < 0; ++k) {
      if (ToScaledUlp(v, k, &m, &r) && rescalable(k)) {
        to = ValueEncoding::kDecimalUlp;
        rescale = k;
      }
    }
    if (rescale >= 0) {
      Reencode(to, rescale);
    } else if ((exceptions_ + 1) * kExceptionSpacing > count_ + kExceptionSpacing) {
      Reencode(ValueEncoding::kXor, 0);
    }
  }
  AppendEncoded(t, v);
  return absl::OkStatus();
}

void ChunkAppender::Reencode(ValueEncoding encoding, int scale) {
  std::vector<int64_t> ts;
  std::vector<double> vs;
  absl::Status st = DecodeChunk(bytes(), &ts, &vs);
  ESPY_CHECK(st.ok()) << "chunk appender: own bytes do not decode: " << st.message();
  Rebuild(encoding, scale, ts, vs);
}

void ChunkAppender::Rebuild(ValueEncoding encoding, int scale, const std::vector<int64_t>& ts,
                            const std::vector<double>& vs) {
  writer_ = BitWriter(kChunkHeaderSize);
  count_ = 0;
  min_t_ = max_t_ = 0;
  delta_ = 0;
  encoding_ = encoding;
  scale_ = scale;
  prev_m_ = max_abs_m_ = 0;
  width_ = 0;
  exceptions_ = 0;
  prev_bits_ = 0;
  leading_ = -1;
  trailing_ = 0;
  for (size_t i = 0; i < ts.size(); ++i) AppendEncoded(ts[i], vs[i]);
  WriteHeader();
}

void ChunkAppender::AppendEncoded(int64_t t, double v) {
  if (count_ == 0) {
    min_t_ = t;
  } else {
    WriteTimestamp(t);
  }
  max_t_ = t;
  if (encoding_ == ValueEncoding::kXor) {
    WriteXor(v);
  } else {
    WriteDecimal(v);
  }
  ++count_;
  WriteHeader();
}

void ChunkAppender::WriteTimestamp(int64_t t) {
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(max_t_);
  const int64_t dod = static_cast<int64_t>(delta - delta_);
  delta_ = delta;
  if (dod == 0) {
    writer_.Write(0, 1);
    return;
  }
  for (int i = 1; i < 5; ++i) {
    const int bits = kDodBits[i];
    const int64_t half = int64_t{1} << (bits - 1);
    if (dod >= -half && dod < half) {
      const uint64_t prefix = (uint64_t{1} << (i + 1)) - 2;  // i ones then a zero
      writer_.Write((prefix << bits) | (static_cast<uint64_t>(dod) & ((uint64_t{1} << bits) - 1)),
                    i + 1 + bits);
      return;
    }
  }
  writer_.Write(0b11111, 5);
  writer_.Write64(static_cast<uint64_t>(dod), 64);
}

void ChunkAppender::WriteDecimal(double v) {
  int64_t m, r = 0;
  const bool ulp = encoding_ == ValueEncoding::kDecimalUlp;
  if (ulp ? !ToScaledUlp(v, scale_, &m, &r) : !ToScaled(v, scale_, &m)) {
    writer_.Write(0b111, 3);
    writer_.Write64(std::bit_cast<uint64_t>(v), 64);
    ++exceptions_;
    return;
  }
  const uint64_t zz = encoding::ZigZag(m - static_cast<int64_t>(prev_m_));
  prev_m_ = static_cast<uint64_t>(m);
  const uint64_t abs_m = m < 0 ? -static_cast<uint64_t>(m) : static_cast<uint64_t>(m);
  max_abs_m_ = std::max(max_abs_m_, abs_m);
  if (zz == 0) {
    writer_.Write(0b10, 2);
  } else {
    const int n = 64 - std::countl_zero(zz);
    if (n <= width_ && width_ - n <= kWidthSlack) {
      writer_.Write(zz, width_ + 1);  // zz < 2^width_: the leading bit is the '0' code
    } else {
      writer_.Write((uint64_t{0b110} << 6) | static_cast<uint64_t>(n), 9);
      writer_.Write(zz, n);
      // The first value is a delta from 0: its width says nothing about the
      // deltas that follow.
      width_ = count_ == 0 ? 0 : n;
    }
  }
  if (ulp) {
    if (r == 0) {
      writer_.Write(0, 1);
    } else {
      writer_.Write(
          (uint64_t{1} << kUlpBits) | (static_cast<uint64_t>(r) & ((uint64_t{1} << kUlpBits) - 1)),
          1 + kUlpBits);
    }
  }
}

void ChunkAppender::WriteXor(double v) {
  const uint64_t bits = std::bit_cast<uint64_t>(v);
  const uint64_t x = bits ^ prev_bits_;
  prev_bits_ = bits;
  if (x == 0) {
    writer_.Write(0, 1);
    return;
  }
  const int leading = std::min(std::countl_zero(x), 31);
  const int trailing = std::countr_zero(x);
  if (leading_ >= 0 && leading >= leading_ && trailing >= trailing_) {
    writer_.Write(0b10, 2);
    writer_.Write64(x >> trailing_, 64 - leading_ - trailing_);
    return;
  }
  const int sig = 64 - leading - trailing;
  writer_.Write((uint64_t{0b11} << 11) | (static_cast<uint64_t>(leading) << 6) |
                    static_cast<uint64_t>(sig & 63),
                13);
  writer_.Write64(x >> trailing, sig);
  leading_ = leading;
  trailing_ = trailing;
}

}  // namespace espy::storage::chunk
