// WAL record payloads: encoding and decoding (see record.h and
// docs/format/wal.md).
#include "storage/record/record.h"

#include <zstd.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "encoding/coding.h"
#include "fmt/format.h"

namespace espy::storage::record {

using encoding::GetDouble;
using encoding::GetLengthPrefixed;
using encoding::GetVarint64;
using encoding::GetVarsint64;

namespace {

// --- kBatch (type 3) constants; the layout is in docs/format/wal.md. ---

// Flags byte: bit 0 says the body is a zstd frame. Other bits are reserved
// and must be zero, so a reader never misreads a later variant.
constexpr uint8_t kFlagZstd = 0x01;
// Bodies shorter than this are stored as they are: a zstd call has a fixed
// cost of some 80,000 instructions (callgrind, level 1), more than encoding
// a hundred samples, for a gain of a few hundred bytes. So single-sample
// POSTs and small batches pay nothing for it.
constexpr size_t kCompressMinBytes = 1024;
// Level 1: the commit thread encodes every record serially, so speed
// matters more than the last few percent of size.
constexpr int kZstdLevel = 1;
// A body larger than the WAL's record limit is never compressed (the WAL
// would refuse it uncompressed), so a reader refuses larger declared sizes
// before allocating anything.
constexpr uint64_t kMaxBodyBytes = 256ull << 20;

// Value codes, one byte per sample in the codes column.
//   0 ..= kMaxExponent:  value = m / 10^e (e = code), svarint m in the data column.
//   kCodeDelta | e:      the same, but the data column holds m minus the m of the
//                        previous sample of the same series in this record,
//                        which had exponent e as well.
//   kCodeRaw:            fixed64 IEEE bits in the data column (NaN payloads,
//                        infinities, -0, non-decimal values).
constexpr int kMaxExponent = 18;
constexpr uint8_t kCodeDelta = 0x40;
constexpr uint8_t kCodeRaw = 0x80;

// Powers of ten exactly representable as doubles (all up to 10^22 are).
constexpr double kPow10[kMaxExponent + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,
                                             1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13,
                                             1e14, 1e15, 1e16, 1e17, 1e18};
// Mantissas stay below 2^53 so that every one converts to double exactly.
constexpr double kMaxMantissa = 9007199254740992.0;

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}

// The value a decimal (m, e) stands for. Encoder and decoder both use this
// one expression, so a value the encoder accepted decodes to the same bits:
// int64 -> double is exact below 2^53 and the division is correctly rounded.
double FromDecimal(int64_t m, int e) {
  const double d = static_cast<double>(m);
  return e == 0 ? d : d / kPow10[e];
}

// The smallest e such that v == FromDecimal(m, e) bit for bit, with *m;
// -1 if there is none (NaN, infinities, -0, huge or non-decimal values).
// Counters and gauges are mostly decimal numbers with a few digits after
// the point: as m they take 2-5 varint bytes instead of 8.
int ToDecimal(double v, int64_t* m) {
  const uint64_t bits = Bits(v);
  for (int e = 0; e <= kMaxExponent; ++e) {
    const double t = v * kPow10[e];
    if (!(std::fabs(t) < kMaxMantissa)) return -1;  // also NaN and infinities
    // Round to nearest; the exact check below makes any rounding error safe.
    const auto cand = static_cast<int64_t>(t < 0 ? t - 0.5 : t + 0.5);
    if (Bits(FromDecimal(cand, e)) == bits) {
      *m = cand;
      return e;
    }
  }
  return -1;
}

// The last decimal value of each series within the record being encoded or
// decoded: the base for kCodeDelta. An open-addressing table sized for the
// record: cheaper than a general hash map for this one use (no deletion; a
// raw value leaves exponent -1). Empty, with nothing allocated, for n <= 1.
class LastDecimals {
 public:
  struct Slot {
    model::SeriesRef ref = 0;
    bool used = false;
    int exponent = -1;  // -1: no decimal to take a delta from
    int64_t m = 0;
  };

  explicit LastDecimals(size_t n) {
    if (n <= 1) return;
    int bits = 4;
    while ((size_t{1} << bits) < 2 * n) ++bits;
    shift_ = 64 - bits;
    slots_.resize(size_t{1} << bits);
  }

  // The slot of `ref`, claimed (exponent -1) if it had none. REQUIRES: n > 1.
  Slot& At(model::SeriesRef ref) {
    const size_t mask = slots_.size() - 1;
    // Fibonacci hashing: refs are small consecutive numbers.
    for (size_t i = (ref * 0x9e3779b97f4a7c15ull) >> shift_;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (!s.used) {
        s.used = true;
        s.ref = ref;
        return s;
      }
      if (s.ref == ref) return s;
    }
  }

 private:
  std::vector<Slot> slots_;
  int shift_ = 0;
};

inline char* WriteVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline char* WriteVarsint(char* p, int64_t v) { return WriteVarint(p, encoding::ZigZag(v)); }

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One compression context per thread, reused: creating one per record would
// allocate its tables every time.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

void EncodeSeries(const std::vector<RefSeries>& series, std::string* out) {
  encoding::PutVarint64(out, series.size());
  for (const RefSeries& s : series) {
    encoding::PutVarint64(out, s.ref);
    encoding::PutVarint64(out, s.labels.size());
    for (const model::Label& l : s.labels.items()) {
      encoding::PutLengthPrefixed(out, l.name);
      encoding::PutLengthPrefixed(out, l.value);
    }
  }
}

// Appends the body of a kBatch payload (docs/format/wal.md) to *out.
void EncodeBody(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                std::string* out) {
  EncodeSeries(series, out);
  const size_t n = samples.size();
  encoding::PutVarint64(out, n);
  if (n == 0) return;
  // Columns: refs, timestamps, value codes, value data. Each column holds
  // like with like, which is what lets zstd find the repeats. Written
  // through a pointer into room for the longest encoding (10-byte varints),
  // then cut to size: this loop runs for every sample on the commit thread.
  constexpr size_t kMaxSampleBytes = 10 + 10 + 1 + 10;
  const size_t start = out->size();
  out->resize(start + n * kMaxSampleBytes);
  char* p = out->data() + start;
  p = WriteVarint(p, samples[0].ref);
  for (size_t i = 1; i < n; ++i) {
    p = WriteVarsint(p, static_cast<int64_t>(samples[i].ref - samples[i - 1].ref));  // wraps
  }
  p = WriteVarsint(p, samples[0].ts);
  for (size_t i = 1; i < n; ++i) {
    p = WriteVarsint(p, static_cast<int64_t>(static_cast<uint64_t>(samples[i].ts) -
                                             static_cast<uint64_t>(samples[i - 1].ts)));
  }
  char* codes = p;
  p += n;
  LastDecimals last(n);
  for (size_t i = 0; i < n; ++i) {
    const RefSample& s = samples[i];
    int64_t m;
    const int e = ToDecimal(s.value, &m);
    uint8_t code;
    if (e < 0) {
      code = kCodeRaw;
      const uint64_t bits = Bits(s.value);
      std::memcpy(p, &bits, 8);  // little-endian, as PutFixed64
      p += 8;
      if (n > 1) last.At(s.ref).exponent = -1;
    } else if (n == 1) {
      code = static_cast<uint8_t>(e);
      p = WriteVarsint(p, m);
    } else {
      LastDecimals::Slot& prev = last.At(s.ref);
      if (prev.exponent == e) {
        code = kCodeDelta | static_cast<uint8_t>(e);
        p = WriteVarsint(
            p, static_cast<int64_t>(static_cast<uint64_t>(m) - static_cast<uint64_t>(prev.m)));
      } else {
        code = static_cast<uint8_t>(e);
        p = WriteVarsint(p, m);
        prev.exponent = e;
      }
      prev.m = m;
    }
    codes[i] = static_cast<char>(code);
  }
  out->resize(static_cast<size_t>(p - out->data()));
}

// Reads a payload front to back and names the offset of what it could not
// read. `where` says which bytes the offsets count in.
struct Cursor {
  std::string_view in;
  size_t total;
  std::string_view where;

  absl::Status Fail(std::string_view what) const {
    return absl::DataLossError(
        fmt::format("{} offset {}: malformed {}", where, total - in.size(), what));
  }
};

// The series section, the same in v1 and kBatch bodies.
absl::Status DecodeSeries(Cursor* c, std::vector<RefSeries>* series) {
  uint64_t n;
  if (!GetVarint64(&c->in, &n) || n > c->in.size()) return c->Fail("series count");
  series->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t ref, nlabels;
    if (!GetVarint64(&c->in, &ref) || !GetVarint64(&c->in, &nlabels) || nlabels > c->in.size()) {
      return c->Fail("series header");
    }
    std::vector<model::Label> labels;
    labels.reserve(nlabels);
    for (uint64_t j = 0; j < nlabels; ++j) {
      std::string_view name, value;
      if (!GetLengthPrefixed(&c->in, &name) || !GetLengthPrefixed(&c->in, &value)) {
        return c->Fail("label");
      }
      // Writers put names in order, each once (a Labels is sorted and
      // unique): anything else is damage, not a label set to build.
      if (!labels.empty() && name <= labels.back().name) return c->Fail("label order");
      labels.push_back({std::string(name), std::string(value)});
    }
    series->push_back({ref, model::Labels(std::move(labels))});
  }
  return absl::OkStatus();
}

// A type 1 body: the batch format before kBatch, still read so that a WAL
// written by an older binary replays.
absl::Status DecodeBatchV1(Cursor c, std::vector<RefSeries>* series,
                           std::vector<RefSample>* samples) {
  ESPY_RETURN_IF_ERROR(DecodeSeries(&c, series));
  uint64_t n;
  int64_t base;
  if (!GetVarint64(&c.in, &n) || n > c.in.size() || !GetVarsint64(&c.in, &base)) {
    return c.Fail("sample count");
  }
  samples->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    RefSample s;
    int64_t delta;
    if (!GetVarint64(&c.in, &s.ref) || !GetVarsint64(&c.in, &delta) ||
        !GetDouble(&c.in, &s.value)) {
      return c.Fail("sample");
    }
    s.ts = static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(delta));
    samples->push_back(s);
  }
  if (!c.in.empty()) return c.Fail("trailing bytes");
  return absl::OkStatus();
}

// A kBatch body (uncompressed).
absl::Status DecodeBody(Cursor c, std::vector<RefSeries>* series, std::vector<RefSample>* samples) {
  ESPY_RETURN_IF_ERROR(DecodeSeries(&c, series));
  uint64_t n;
  // Every sample takes at least 3 bytes (ref, ts, code): that bounds the
  // count before anything is allocated for it.
  if (!GetVarint64(&c.in, &n) || n > c.in.size() / 3) return c.Fail("sample count");
  if (n == 0) {
    if (!c.in.empty()) return c.Fail("trailing bytes");
    return absl::OkStatus();
  }
  samples->resize(n);
  RefSample* out = samples->data();
  uint64_t ref;
  if (!GetVarint64(&c.in, &ref)) return c.Fail("sample ref");
  out[0].ref = ref;
  for (uint64_t i = 1; i < n; ++i) {
    int64_t d;
    if (!GetVarsint64(&c.in, &d)) return c.Fail("sample ref");
    ref += static_cast<uint64_t>(d);
    out[i].ref = ref;
  }
  int64_t ts;
  if (!GetVarsint64(&c.in, &ts)) return c.Fail("sample timestamp");
  out[0].ts = ts;
  for (uint64_t i = 1; i < n; ++i) {
    int64_t d;
    if (!GetVarsint64(&c.in, &d)) return c.Fail("sample timestamp");
    ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(d));
    out[i].ts = ts;
  }
  if (c.in.size() < n) return c.Fail("value codes");
  const std::string_view codes = c.in.substr(0, n);
  c.in.remove_prefix(n);
  LastDecimals last(n);
  for (uint64_t i = 0; i < n; ++i) {
    const auto code = static_cast<uint8_t>(codes[i]);
    if (code == kCodeRaw) {
      if (!GetDouble(&c.in, &out[i].value)) return c.Fail("raw value");
      if (n > 1) last.At(out[i].ref).exponent = -1;
      continue;
    }
    const int e = code & ~kCodeDelta;
    if (e > kMaxExponent) return c.Fail(fmt::format("value code {:#04x} (sample {})", code, i));
    int64_t m;
    if (!GetVarsint64(&c.in, &m)) return c.Fail("decimal value");
    if (code & kCodeDelta) {
      LastDecimals::Slot* prev = n > 1 ? &last.At(out[i].ref) : nullptr;
      if (prev == nullptr || prev->exponent != e) {
        return c.Fail(
            fmt::format("value delta (sample {} has no earlier decimal of its series)", i));
      }
      m = static_cast<int64_t>(static_cast<uint64_t>(prev->m) + static_cast<uint64_t>(m));
      prev->m = m;
    } else if (n > 1) {
      LastDecimals::Slot& prev = last.At(out[i].ref);
      prev.exponent = e;
      prev.m = m;
    }
    out[i].value = FromDecimal(m, e);
  }
  if (!c.in.empty()) return c.Fail("trailing bytes");
  return absl::OkStatus();
}

}  // namespace

void EncodeBatch(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                 std::string* out) {
  const size_t start = out->size();
  out->push_back(static_cast<char>(RecordType::kBatch));
  out->push_back(0);  // flags
  const size_t body_at = out->size();
  EncodeBody(series, samples, out);
  const size_t body_size = out->size() - body_at;
  if (body_size < kCompressMinBytes || body_size > kMaxBodyBytes) return;

  thread_local std::string compressed;
  compressed.clear();
  encoding::PutVarint64(&compressed, body_size);
  const size_t frame_at = compressed.size();
  compressed.resize(frame_at + ZSTD_compressBound(body_size));
  const size_t z =
      ZSTD_compressCCtx(ThreadCCtx(), compressed.data() + frame_at, compressed.size() - frame_at,
                        out->data() + body_at, body_size, kZstdLevel);
  // On a zstd error (out of memory) or no gain the body stays as it is.
  if (!ZSTD_isError(z) && frame_at + z < body_size) {
    (*out)[start + 1] = static_cast<char>(kFlagZstd);
    out->resize(body_at);
    out->append(compressed.data(), frame_at + z);
  }
  // Keep the scratch buffer for the next record, unless a rare huge record
  // grew it.
  if (compressed.capacity() > (4u << 20)) compressed = std::string();
}

absl::Status DecodeBatch(std::string_view payload, std::vector<RefSeries>* series,
                         std::vector<RefSample>* samples) {
  series->clear();
  samples->clear();
  const std::optional<RecordType> type = TypeOf(payload);
  if (type == RecordType::kBatchV1) {
    return DecodeBatchV1(Cursor{payload.substr(1), payload.size(), "batch record (v1)"}, series,
                         samples);
  }
  if (type != RecordType::kBatch) {
    return absl::DataLossError("batch record offset 0: malformed record type");
  }
  if (payload.size() < 2) return absl::DataLossError("batch record offset 1: malformed flags");
  const auto flags = static_cast<uint8_t>(payload[1]);
  if ((flags & ~kFlagZstd) != 0) {
    return absl::DataLossError(fmt::format("batch record offset 1: unknown flags {:#04x}", flags));
  }
  Cursor c{payload.substr(2), payload.size(), "batch record"};
  if ((flags & kFlagZstd) == 0) return DecodeBody(c, series, samples);

  uint64_t body_size;
  if (!GetVarint64(&c.in, &body_size) || body_size > kMaxBodyBytes) {
    return c.Fail("body size");
  }
  // The frame must declare the size the record does, before any allocation.
  if (ZSTD_getFrameContentSize(c.in.data(), c.in.size()) != body_size) {
    return c.Fail(fmt::format("zstd frame header (does not declare {} bytes)", body_size));
  }
  std::string body(body_size, '\0');
  const size_t got =
      ZSTD_decompressDCtx(ThreadDCtx(), body.data(), body.size(), c.in.data(), c.in.size());
  if (ZSTD_isError(got) || got != body_size) {
    return c.Fail(
        fmt::format("zstd frame ({})", ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short body"));
  }
  // Offsets from here on count in the decompressed body.
  return DecodeBody(Cursor{body, body.size(), "batch record body (decompressed)"}, series, samples);
}

std::optional<RecordType> TypeOf(std::string_view payload) {
  if (payload.empty()) return std::nullopt;
  auto t = static_cast<RecordType>(payload[0]);
  if (t != RecordType::kBatchV1 && t != RecordType::kBatch && t != RecordType::kTombstones) {
    return std::nullopt;
  }
  return t;
}

namespace {

// Matcher types as stored: fixed numbers, independent of the enum's order.
constexpr uint8_t kEqual = 0, kNotEqual = 1, kRegexMatch = 2, kRegexNoMatch = 3;

uint8_t MatchTypeByte(model::MatchType t) {
  switch (t) {
    case model::MatchType::kEqual:
      return kEqual;
    case model::MatchType::kNotEqual:
      return kNotEqual;
    case model::MatchType::kRegexMatch:
      return kRegexMatch;
    case model::MatchType::kRegexNoMatch:
      return kRegexNoMatch;
  }
  return kEqual;
}

}  // namespace

void EncodeTombstone(const Tombstone& t, std::string* out) {
  out->push_back(static_cast<char>(RecordType::kTombstones));
  encoding::PutVarsint64(out, t.mint);
  encoding::PutVarsint64(out, t.maxt);
  encoding::PutVarint64(out, t.matchers.size());
  for (const model::Matcher& m : t.matchers) {
    out->push_back(static_cast<char>(MatchTypeByte(m.type())));
    encoding::PutLengthPrefixed(out, m.name());
    encoding::PutLengthPrefixed(out, m.value());
  }
}

absl::StatusOr<Tombstone> DecodeTombstone(std::string_view payload) {
  const size_t total = payload.size();
  std::string_view in = payload;
  auto fail = [&](std::string_view what) {
    return absl::DataLossError(
        fmt::format("tombstones record offset {}: malformed {}", total - in.size(), what));
  };
  if (in.empty() || static_cast<RecordType>(in[0]) != RecordType::kTombstones) {
    return fail("record type");
  }
  in.remove_prefix(1);
  Tombstone t;
  uint64_t n;
  if (!GetVarsint64(&in, &t.mint) || !GetVarsint64(&in, &t.maxt)) return fail("time range");
  if (t.mint > t.maxt) return fail("time range (mint after maxt)");
  if (!GetVarint64(&in, &n) || n > in.size()) return fail("matcher count");
  for (uint64_t i = 0; i < n; ++i) {
    if (in.empty()) return fail("matcher type");
    const auto type_byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    model::MatchType type;
    switch (type_byte) {
      case kEqual:
        type = model::MatchType::kEqual;
        break;
      case kNotEqual:
        type = model::MatchType::kNotEqual;
        break;
      case kRegexMatch:
        type = model::MatchType::kRegexMatch;
        break;
      case kRegexNoMatch:
        type = model::MatchType::kRegexNoMatch;
        break;
      default:
        return fail("matcher type");
    }
    std::string_view name, value;
    if (!GetLengthPrefixed(&in, &name) || !GetLengthPrefixed(&in, &value)) return fail("matcher");
    absl::StatusOr<model::Matcher> m =
        model::Matcher::Make(type, std::string(name), std::string(value));
    if (!m.ok()) return fail(fmt::format("matcher ({})", m.status().message()));
    t.matchers.push_back(*std::move(m));
  }
  if (!in.empty()) return fail("trailing bytes");
  return t;
}

}  // namespace espy::storage::record
