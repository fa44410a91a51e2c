#include "storage/chunk/chunk.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/chunk/bit_stream.h"
#include "storage/chunk/chunk_workloads.h"

namespace espy::storage::chunk {
namespace {

using testing::MakeWorkload;
using testing::Workload;

constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ull;  // Prometheus stale marker

double FromBits(uint64_t b) { return std::bit_cast<double>(b); }
uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

std::string Encode(const std::vector<Sample>& samples) {
  ChunkAppender app;
  for (const Sample& s : samples) {
    absl::Status st = app.Append(s.t, s.v);
    EXPECT_TRUE(st.ok()) << st;
  }
  return std::string(app.bytes());
}

std::vector<Sample> Iterate(std::string_view chunk, absl::Status* status) {
  std::vector<Sample> out;
  ChunkIterator it(chunk);
  while (it.Next()) out.push_back(it.At());
  *status = it.status();
  return out;
}

// Decodes with both the iterator and the bulk decoder and checks that they
// agree bit for bit with `want`.
void ExpectRoundTrip(const std::vector<Sample>& want) {
  std::string chunk = Encode(want);
  absl::Status st;
  std::vector<Sample> got = Iterate(chunk, &st);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].t, want[i].t) << "sample " << i;
    ASSERT_EQ(Bits(got[i].v), Bits(want[i].v))
        << "sample " << i << " want " << want[i].v << " got " << got[i].v;
  }
  std::vector<int64_t> ts;
  std::vector<double> vs;
  ASSERT_TRUE(DecodeChunk(chunk, &ts, &vs).ok());
  ASSERT_EQ(ts.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(ts[i], want[i].t) << "sample " << i;
    ASSERT_EQ(Bits(vs[i]), Bits(want[i].v)) << "sample " << i;
  }
  absl::StatusOr<ChunkHeader> h = ReadChunkHeader(chunk);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->num_samples, want.size());
  if (!want.empty()) {
    EXPECT_EQ(h->min_time, want.front().t);
    EXPECT_EQ(h->max_time, want.back().t);
  }
}

std::vector<Sample> Regular(const std::vector<double>& values, int64_t start = 1000,
                            int64_t step = 15000) {
  std::vector<Sample> out;
  for (size_t i = 0; i < values.size(); ++i) out.push_back({start + int64_t(i) * step, values[i]});
  return out;
}

const std::vector<double>& SpecialValues() {
  static const std::vector<double> v = {
      FromBits(kStaleNaNBits),
      std::numeric_limits<double>::quiet_NaN(),
      -std::numeric_limits<double>::quiet_NaN(),
      FromBits(0x7ff8dead0000beefull),  // NaN with a payload
      FromBits(0xfff0000000000001ull),  // negative signalling NaN
      -0.0,
      0.0,
      std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::denorm_min(),
      -std::numeric_limits<double>::denorm_min(),
      FromBits(0x000fffffffffffffull),  // largest denormal
      std::numeric_limits<double>::min(),
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::lowest(),
      std::numeric_limits<double>::epsilon(),
      9007199254740992.0,   // 2^53
      9007199254740993.0,   // rounds to 2^53
      -9007199254740992.0,  // -2^53
      1e300,
      0.1 + 0.2,
  };
  return v;
}

TEST(ChunkTest, EmptyChunkIsJustAHeader) {
  ChunkAppender app;
  EXPECT_EQ(app.bytes().size(), kChunkHeaderSize);
  ExpectRoundTrip({});
  absl::Status st;
  EXPECT_TRUE(Iterate(app.bytes(), &st).empty());
  EXPECT_TRUE(st.ok());
}

TEST(ChunkTest, SingleSampleRoundTrips) {
  for (double v : SpecialValues()) ExpectRoundTrip({{123456789, v}});
  ExpectRoundTrip({{-5, 42}});
  ExpectRoundTrip({{std::numeric_limits<int64_t>::min(), 1.5}});
}

TEST(ChunkTest, RegularIntegerCounterUsesDecimalScaleZero) {
  std::vector<Sample> s = MakeWorkload(Workload::kIntegerCounter, 1000);
  ExpectRoundTrip(s);
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimal);
  EXPECT_EQ(app.scale(), 0);
}

TEST(ChunkTest, IrregularTimestampsWithNegativeDeltaOfDeltaRoundTrip) {
  std::mt19937_64 rng(7);
  std::vector<Sample> s;
  int64_t t = 1'600'000'000'000;
  for (int i = 0; i < 2000; ++i) {
    // Mostly jittered 10 s, sometimes far shorter or longer, to hit every bucket.
    int64_t step;
    switch (rng() % 6) {
      case 0:
        step = 1;
        break;
      case 1:
        step = 1 + static_cast<int64_t>(rng() % 100);
        break;
      case 2:
        step = 1 + static_cast<int64_t>(rng() % 100'000);
        break;
      case 3:
        step = 1 + static_cast<int64_t>(rng() % 10'000'000'000ull);
        break;
      default:
        step = 10'000 + static_cast<int64_t>(rng() % 11) - 5;
    }
    t += step;
    s.push_back({t, static_cast<double>(i)});
  }
  ExpectRoundTrip(s);
}

TEST(ChunkTest, HugeGapsUpToTheWholeInt64RangeRoundTrip) {
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  ExpectRoundTrip({{kMin, 1}, {kMax, 2}});
  ExpectRoundTrip({{kMin, 1}, {kMin + 1, 2}, {-1, 3}, {0, 4}, {1, 5}, {kMax - 1, 6}, {kMax, 7}});
  ExpectRoundTrip({{0, 1}, {1ll << 40, 2}, {(1ll << 40) + 1, 3}, {1ll << 62, 4}});
}

TEST(ChunkTest, SpecialValuesRoundTripBitExactInEveryPosition) {
  const std::vector<double>& special = SpecialValues();
  // Alone, as a series of specials.
  ExpectRoundTrip(Regular(special));
  // Each special inside an integer series, a decimal series and a float series.
  for (double v : special) {
    ExpectRoundTrip(Regular({1, 2, 3, v, 4, 5}));
    ExpectRoundTrip(Regular({1.25, 2.5, v, 3.75, v, 3.75}));
    ExpectRoundTrip(Regular({0.1 + 0.2, 1.0 / 3, v, 2.0 / 3, v}));
    ExpectRoundTrip(Regular({v, v, 7, 8}));
  }
}

TEST(ChunkTest, DecimalSeriesUsesTheSmallestExactScale) {
  ChunkAppender app;
  ASSERT_TRUE(app.Append(1, 12.34).ok());
  ASSERT_TRUE(app.Append(2, 12.3).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimal);
  EXPECT_EQ(app.scale(), 2);
  ExpectRoundTrip(MakeWorkload(Workload::kGauge4Decimals, 500));
  ExpectRoundTrip(MakeWorkload(Workload::kCounter3Decimals, 500));
}

TEST(ChunkTest, MoreDecimalsRescaleTheWholeChunk) {
  std::vector<Sample> s = Regular({1, 2, 3, 3.5, 3.25, 4, 4.125, -7.0625, 100});
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimal);
  EXPECT_EQ(app.scale(), 4);
  ExpectRoundTrip(s);
}

TEST(ChunkTest, RescaleThatWouldOverflowKeepsScaleAndExactness) {
  // 2^52 cannot be scaled by 10, so 0.5 cannot rescale; it is a rare exception.
  std::vector<Sample> s = Regular({4503599627370496.0, 1, 2, 3, 4, 5, 6, 7, 8, 0.5, 9});
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimal);
  EXPECT_EQ(app.scale(), 0);
  ExpectRoundTrip(s);
}

TEST(ChunkTest, RareStaleMarkerStaysAnExceptionInADecimalChunk) {
  std::vector<Sample> s = MakeWorkload(Workload::kIntegerCounter, 120);
  s.push_back({s.back().t + 10'000, FromBits(kStaleNaNBits)});
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimal);
  EXPECT_EQ(app.scale(), 0);
  ExpectRoundTrip(s);
}

TEST(ChunkTest, FrequentNonDecimalValuesSwitchTheChunkToXor) {
  std::vector<double> v = {1, 2, 3, 4};
  for (int i = 0; i < 50; ++i) v.push_back(1.0 / (i + 3));
  std::vector<Sample> s = Regular(v);
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kXor);
  ExpectRoundTrip(s);
  ExpectRoundTrip(MakeWorkload(Workload::kFloatGauge, 1000));
}

TEST(ChunkTest, DecimalsLeftOffByFloatArithmeticUseUlpResiduals) {
  // Sums of 0.1 steps: most are a few ulps off the nearest 1-decimal double.
  std::vector<double> v;
  double x = 0;
  for (int i = 0; i < 1000; ++i) v.push_back(x += (i * 37 % 1000) / 10.0);
  std::vector<Sample> s = Regular(v);
  ChunkAppender app;
  for (const Sample& y : s) ASSERT_TRUE(app.Append(y.t, y.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kDecimalUlp);
  EXPECT_EQ(app.scale(), 1);
  ExpectRoundTrip(s);
  // Delta ~ 10 bits, residual <= 4, timestamp 1: far below XOR's ~60.
  EXPECT_LT(app.bytes().size(), 2.5 * s.size());
  absl::StatusOr<ChunkHeader> h = ReadChunkHeader(app.bytes());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->encoding, ValueEncoding::kDecimalUlp);
  EXPECT_EQ(h->scale, 1);
  // Resume continues the same encoding.
  absl::StatusOr<ChunkAppender> resumed = ChunkAppender::Resume(app.bytes());
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->encoding(), ValueEncoding::kDecimalUlp);
  ASSERT_TRUE(resumed->Append(s.back().t + 10'000, x + 0.1).ok());
  std::vector<int64_t> ts;
  std::vector<double> vs;
  ASSERT_TRUE(DecodeChunk(resumed->bytes(), &ts, &vs).ok());
  EXPECT_EQ(std::bit_cast<uint64_t>(x + 0.1), std::bit_cast<uint64_t>(vs.back()));
}

TEST(ChunkTest, UlpChunksKeepExceptionsAndFallBackToXor) {
  const double v = FromBits(kStaleNaNBits);
  // Starts off a decimal (0.1 + 0.2), holds a stale marker and -0.0 as
  // exceptions, rescales to 3 decimals.
  ExpectRoundTrip(Regular({0.1 + 0.2, 0.7, v, -0.0, 1.234, 1.1 + 2.2, 5}));
  std::vector<double> mixed = {0.1 + 0.2, 0.5};
  for (int i = 0; i < 50; ++i) mixed.push_back(1.0 / (i + 3));
  std::vector<Sample> s = Regular(mixed);
  ChunkAppender app;
  for (const Sample& x : s) ASSERT_TRUE(app.Append(x.t, x.v).ok());
  EXPECT_EQ(app.encoding(), ValueEncoding::kXor);
  ExpectRoundTrip(s);
}

TEST(ChunkTest, RandomMixesOfValueClassesRoundTrip) {
  const std::vector<double>& special = SpecialValues();
  for (uint32_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<Sample> s;
    int64_t t = static_cast<int64_t>(rng() % 1000000) - 500000;
    const int n = 1 + static_cast<int>(rng() % 300);
    const int flavour = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      t += 1 + static_cast<int64_t>(rng() % (rng() % 8 == 0 ? 1'000'000'000 : 20));
      double v;
      const int r = static_cast<int>(rng() % 100);
      if (r < 3) {
        v = special[rng() % special.size()];
      } else if (flavour == 0 || r < 20) {
        v = static_cast<double>(static_cast<int64_t>(rng() % 2001) - 1000);
      } else if (flavour == 1) {
        v = static_cast<double>(static_cast<int64_t>(rng() % 2000001) - 1000000) /
            std::pow(10.0, static_cast<double>(rng() % 5));
      } else if (flavour == 2) {
        v = FromBits(rng());
      } else {
        v = std::ldexp(static_cast<double>(rng() % 1000), static_cast<int>(rng() % 200) - 100);
      }
      s.push_back({t, v});
    }
    SCOPED_TRACE(seed);
    ExpectRoundTrip(s);
  }
}

TEST(ChunkTest, AppendRejectsTimestampNotAfterTheLastAndLeavesChunkUnchanged) {
  ChunkAppender app;
  ASSERT_TRUE(app.Append(100, 1).ok());
  ASSERT_TRUE(app.Append(200, 2).ok());
  const std::string before(app.bytes());
  absl::Status same = app.Append(200, 3);
  EXPECT_EQ(same.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(same.message().find("timestamp 200 is not after the chunk's last timestamp 200"),
            std::string::npos)
      << same;
  EXPECT_EQ(app.Append(150, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(app.bytes()), before);
  EXPECT_EQ(app.num_samples(), 2u);
  EXPECT_TRUE(app.Append(201, 3).ok());
}

TEST(ChunkTest, SeekFindsFirstSampleAtOrAfterAndNeverGoesBack) {
  const std::string chunk = Encode(Regular({0, 1, 2, 3, 4}, 100, 10));  // t = 100..140
  {
    ChunkIterator it(chunk);
    ASSERT_TRUE(it.Seek(0));
    EXPECT_EQ(it.At().t, 100);
    ASSERT_TRUE(it.Seek(115));
    EXPECT_EQ(it.At().t, 120);
    ASSERT_TRUE(it.Seek(120));  // already there
    EXPECT_EQ(it.At().t, 120);
    ASSERT_TRUE(it.Seek(50));  // backwards: stays
    EXPECT_EQ(it.At().t, 120);
    ASSERT_TRUE(it.Next());
    EXPECT_EQ(it.At().t, 130);
    EXPECT_EQ(it.At().v, 3);
    ASSERT_TRUE(it.Seek(140));
    EXPECT_EQ(it.At().t, 140);
    EXPECT_FALSE(it.Seek(141));
    EXPECT_FALSE(it.Next());
    EXPECT_TRUE(it.status().ok());
  }
  {
    ChunkIterator it(chunk);
    EXPECT_FALSE(it.Seek(1000));
    EXPECT_FALSE(it.Next());
    EXPECT_TRUE(it.status().ok());
  }
  {
    ChunkIterator it(Encode({}));
    EXPECT_FALSE(it.Seek(0));
    EXPECT_TRUE(it.status().ok());
  }
}

TEST(ChunkTest, DecodeChunkRangeKeepsInclusiveRangeAndAppends) {
  const std::string chunk = Encode(Regular({0, 1, 2, 3, 4}, 100, 10));
  std::vector<int64_t> ts = {7};
  std::vector<double> vs = {7.5};
  ASSERT_TRUE(DecodeChunkRange(chunk, 110, 130, &ts, &vs).ok());
  EXPECT_EQ(ts, (std::vector<int64_t>{7, 110, 120, 130}));
  EXPECT_EQ(vs, (std::vector<double>{7.5, 1, 2, 3}));
  ASSERT_TRUE(DecodeChunkRange(chunk, 141, 500, &ts, &vs).ok());
  ASSERT_TRUE(DecodeChunkRange(chunk, 0, 99, &ts, &vs).ok());
  EXPECT_EQ(ts.size(), 4u);
  ASSERT_TRUE(DecodeChunkRange(chunk, 0, 1000, &ts, &vs).ok());
  EXPECT_EQ(ts.size(), 9u);
  EXPECT_EQ(vs.size(), 9u);
}

TEST(ChunkTest, SnapshotStaysReadableWhileAppenderGoesOn) {
  std::vector<Sample> s = MakeWorkload(Workload::kGauge2Decimals, 300);
  ChunkAppender app;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(app.Append(s[i].t, s[i].v).ok());
  const std::string snapshot(app.bytes());
  for (int i = 100; i < 300; ++i) ASSERT_TRUE(app.Append(s[i].t, s[i].v).ok());
  // A value forcing XOR re-encodes the appender's chunk; the snapshot is unaffected.
  absl::Status st;
  std::vector<Sample> got = Iterate(snapshot, &st);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(got.size(), 100u);
  EXPECT_EQ(got.back().t, s[99].t);
  EXPECT_EQ(got.back().v, s[99].v);
}

TEST(ChunkTest, ResumeContinuesAnExistingChunk) {
  std::vector<Sample> s = MakeWorkload(Workload::kCounter3Decimals, 200);
  std::string half = Encode(std::vector<Sample>(s.begin(), s.begin() + 100));
  absl::StatusOr<ChunkAppender> app = ChunkAppender::Resume(half);
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->num_samples(), 100u);
  EXPECT_EQ(std::string(app->bytes()), half);
  for (int i = 100; i < 200; ++i) ASSERT_TRUE(app->Append(s[i].t, s[i].v).ok());
  EXPECT_EQ(std::string(app->bytes()), Encode(s));
  EXPECT_FALSE(ChunkAppender::Resume("short").ok());
}

TEST(ChunkTest, CompressesRegularWorkloadsBelowTargets) {
  struct Case {
    Workload w;
    double max_bytes_per_sample;
  };
  for (const Case& c :
       {Case{Workload::kIntegerCounter, 1.5}, Case{Workload::kGauge2Decimals, 1.5},
        Case{Workload::kCounter3Decimals, 2.5}, Case{Workload::kGauge4Decimals, 2.5}}) {
    std::vector<Sample> s = MakeWorkload(c.w, 10'000);
    size_t bytes = 0;
    for (const std::string& chunk : testing::EncodeChunks(s, 10'000)) bytes += chunk.size();
    EXPECT_LT(static_cast<double>(bytes) / s.size(), c.max_bytes_per_sample)
        << testing::WorkloadName(c.w);
  }
}

// ---- Corruption ----

std::vector<std::string> CorpusChunks() {
  std::vector<std::string> out;
  out.push_back(Encode(MakeWorkload(Workload::kIntegerCounter, 150)));
  out.push_back(Encode(MakeWorkload(Workload::kGauge4Decimals, 150)));
  out.push_back(Encode(MakeWorkload(Workload::kFloatGauge, 150)));
  out.push_back(Encode(Regular(SpecialValues())));
  std::vector<Sample> mixed = MakeWorkload(Workload::kGauge2Decimals, 60);
  mixed.push_back({mixed.back().t + std::numeric_limits<int32_t>::max() * 5ll, -0.0});
  out.push_back(Encode(mixed));
  // Decimal with ulp residuals (sums of 0.1 steps), with an exception.
  std::vector<double> noisy;
  double x = 0;
  for (int i = 0; i < 150; ++i) noisy.push_back(i == 70 ? -0.0 : (x += (i * 37 % 100) / 10.0));
  out.push_back(Encode(Regular(noisy)));
  return out;
}

// Decodes with both decoders; they must agree on success and samples.
void ExpectDecodersAgree(std::string_view chunk) {
  absl::Status it_status;
  std::vector<Sample> it_samples = Iterate(chunk, &it_status);
  std::vector<int64_t> ts;
  std::vector<double> vs;
  absl::Status bulk = DecodeChunk(chunk, &ts, &vs);
  ASSERT_EQ(it_status.ok(), bulk.ok()) << it_status << " vs " << bulk;
  if (!bulk.ok()) {
    EXPECT_EQ(bulk.code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(ts.empty());
    return;
  }
  ASSERT_EQ(it_samples.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    ASSERT_EQ(it_samples[i].t, ts[i]);
    ASSERT_EQ(Bits(it_samples[i].v), Bits(vs[i]));
  }
}

TEST(ChunkCorruptionTest, EveryTruncationIsReportedAsDataLoss) {
  for (const std::string& chunk : CorpusChunks()) {
    for (size_t len = 0; len < chunk.size(); ++len) {
      // A heap copy of exactly len bytes, so ASan sees any read past it.
      std::unique_ptr<char[]> copy(new char[len + 1]);
      std::memcpy(copy.get(), chunk.data(), len);
      std::string_view cut(copy.get(), len);
      std::vector<int64_t> ts;
      std::vector<double> vs;
      absl::Status st = DecodeChunk(cut, &ts, &vs);
      ASSERT_EQ(st.code(), absl::StatusCode::kDataLoss) << "len " << len;
      absl::Status it_status;
      Iterate(cut, &it_status);
      ASSERT_EQ(it_status.code(), absl::StatusCode::kDataLoss) << "len " << len;
      EXPECT_FALSE(ChunkAppender::Resume(cut).ok());
    }
  }
}

TEST(ChunkCorruptionTest, RandomByteFlipsNeverCrashAndDecodersAgree) {
  std::mt19937_64 rng(42);
  for (const std::string& chunk : CorpusChunks()) {
    for (int trial = 0; trial < 3000; ++trial) {
      std::string bad = chunk;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) {
        // Hit the header often: it steers everything else.
        size_t at = rng() % 4 == 0 ? rng() % kChunkHeaderSize : rng() % bad.size();
        bad[at] = static_cast<char>(bad[at] ^ static_cast<char>(1 + rng() % 255));
      }
      if (rng() % 4 == 0) bad.resize(rng() % bad.size());
      std::unique_ptr<char[]> copy(new char[bad.size() + 1]);
      std::memcpy(copy.get(), bad.data(), bad.size());
      std::string_view view(copy.get(), bad.size());
      ExpectDecodersAgree(view);
      ChunkIterator it(view);
      if (it.Seek(static_cast<int64_t>(rng()))) it.At();
    }
  }
}

TEST(ChunkCorruptionTest, HeaderErrorsSayWhatIsWrong) {
  std::string chunk = Encode(MakeWorkload(Workload::kIntegerCounter, 10));
  struct Case {
    size_t offset;
    char value;
    const char* message;
  };
  for (const Case& c :
       {Case{0, 9, "format version 9 unsupported (want 1)"},
        Case{1, 11, "value encoding byte 11 unknown"}, Case{3, 0x10, "samples need at least"},
        Case{21, static_cast<char>(0x80), "cannot have increasing timestamps"}}) {
    std::string bad = chunk;
    bad[c.offset] = c.value;
    absl::StatusOr<ChunkHeader> h = ReadChunkHeader(bad);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(h.status().message().find(c.message), std::string::npos) << h.status();
    ChunkIterator it(bad);
    EXPECT_FALSE(it.Next());
    EXPECT_EQ(it.status(), h.status());
  }
  absl::StatusOr<ChunkHeader> h = ReadChunkHeader("abc");
  EXPECT_NE(h.status().message().find("3 bytes, shorter than the 22-byte header"),
            std::string::npos)
      << h.status();
}

TEST(ChunkCorruptionTest, WrongMaxTimeIsDetectedAtTheLastSample) {
  std::string chunk = Encode(Regular({1, 2, 3}, 1000, 10));  // max time 1020
  std::string bad = chunk;
  bad[14] = static_cast<char>(bad[14] + 1);  // 1021
  absl::Status st;
  std::vector<Sample> got = Iterate(bad, &st);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("sample 2 of 3"), std::string::npos) << st;
  EXPECT_NE(st.message().find("last timestamp 1020 differs from the header's 1021"),
            std::string::npos)
      << st;
}

// ---- Bit stream ----

TEST(BitStreamTest, WritesAndReadsAnyWidthAtAnyOffset) {
  std::mt19937_64 rng(3);
  struct Item {
    uint64_t v;
    int n;
  };
  std::vector<Item> items;
  BitWriter w(3);
  for (int i = 0; i < 5000; ++i) {
    int n = static_cast<int>(rng() % 65);
    uint64_t v = n == 64 ? rng() : rng() & ((uint64_t{1} << n) - 1);
    items.push_back({v, n});
    w.Write64(v | (n < 64 ? rng() << n : 0), n);  // junk above n is ignored
  }
  std::string_view bytes = w.bytes();
  BitReader r(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 3 * 8);
  for (const Item& it : items) ASSERT_EQ(r.Read64<true>(it.n), it.v);
  EXPECT_FALSE(r.overrun());
  r.Read<true>(57);
  r.Read<true>(57);
  EXPECT_TRUE(r.overrun());
}

}  // namespace
}  // namespace espy::storage::chunk
