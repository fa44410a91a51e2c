#include "storage/record/record.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "encoding/coding.h"
#include "gtest/gtest.h"

namespace espy::storage::record {
namespace {

uint64_t Bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof(b));
  return b;
}
double FromBits(uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof(v));
  return v;
}

// Prometheus' stale marker: a NaN with a payload that must survive as is.
const double kStaleNaN = FromBits(0x7ff0000000000002ull);

// Encodes, decodes, and checks every field bit for bit.
void ExpectRoundTrip(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                     std::string* buf = nullptr) {
  std::string local;
  std::string& b = buf != nullptr ? *buf : local;
  b.clear();
  EncodeBatch(series, samples, &b);
  ASSERT_EQ(RecordType::kBatch, TypeOf(b));
  std::vector<RefSeries> got_series;
  std::vector<RefSample> got_samples;
  absl::Status s = DecodeBatch(b, &got_series, &got_samples);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(series.size(), got_series.size());
  for (size_t i = 0; i < series.size(); ++i) {
    EXPECT_EQ(series[i].ref, got_series[i].ref);
    EXPECT_EQ(series[i].labels, got_series[i].labels);
  }
  ASSERT_EQ(samples.size(), got_samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    ASSERT_EQ(samples[i].ref, got_samples[i].ref) << "sample " << i;
    ASSERT_EQ(samples[i].ts, got_samples[i].ts) << "sample " << i;
    ASSERT_EQ(Bits(samples[i].value), Bits(got_samples[i].value))
        << "sample " << i << " value " << samples[i].value << " got " << got_samples[i].value;
  }
}

bool Compressed(const std::string& buf) { return buf.size() > 1 && (buf[1] & 1) != 0; }

TEST(RecordTest, BatchRoundTrips) {
  std::vector<RefSeries> series = {{7, model::Labels({{"__name__", "cpu"}, {"host", "a"}})}};
  std::vector<RefSample> samples = {
      {7, 1000, 0.5}, {3, -5000, -1}, {7, 1000 + (1ll << 40), std::nan("")}};
  std::string buf;
  EncodeBatch(series, samples, &buf);

  std::vector<RefSeries> got_series;
  std::vector<RefSample> got_samples;
  ASSERT_TRUE(DecodeBatch(buf, &got_series, &got_samples).ok());
  ASSERT_EQ(1u, got_series.size());
  EXPECT_EQ(7u, got_series[0].ref);
  EXPECT_EQ(series[0].labels, got_series[0].labels);
  ASSERT_EQ(3u, got_samples.size());
  EXPECT_EQ(-5000, got_samples[1].ts);
  EXPECT_EQ(3u, got_samples[1].ref);
  EXPECT_EQ(1000 + (1ll << 40), got_samples[2].ts);
  EXPECT_TRUE(std::isnan(got_samples[2].value));
}

TEST(RecordTest, EveryTruncationIsDataLoss) {
  std::string buf;
  std::vector<RefSeries> series1 = {
      {1, model::Labels(std::vector<model::Label>{{"__name__", "x"}})}};
  EncodeBatch(series1, {{1, 5, 2.0}, {1, 6, 3.0}}, &buf);
  std::vector<RefSeries> series;
  std::vector<RefSample> samples;
  for (size_t n = 0; n < buf.size(); ++n) {
    absl::Status s = DecodeBatch(std::string_view(buf.data(), n), &series, &samples);
    EXPECT_EQ(absl::StatusCode::kDataLoss, s.code()) << "length " << n;
  }
}

TEST(RecordTest, TrailingBytesAreDataLoss) {
  std::string buf;
  EncodeBatch({}, {{1, 5, 2.0}}, &buf);
  buf.push_back('x');
  std::vector<RefSeries> series;
  std::vector<RefSample> samples;
  absl::Status s = DecodeBatch(buf, &series, &samples);
  EXPECT_EQ(absl::StatusCode::kDataLoss, s.code());
  EXPECT_NE(std::string::npos, s.message().find("trailing"));
}

Tombstone MakeTombstone() {
  Tombstone t;
  t.mint = -5;
  t.maxt = int64_t{1} << 50;
  t.matchers.push_back(*model::Matcher::Make(model::MatchType::kEqual, "__name__", "cpu"));
  t.matchers.push_back(*model::Matcher::Make(model::MatchType::kRegexMatch, "host", "a|b"));
  t.matchers.push_back(*model::Matcher::Make(model::MatchType::kNotEqual, "dc", ""));
  t.matchers.push_back(*model::Matcher::Make(model::MatchType::kRegexNoMatch, "x", ".*y"));
  return t;
}

TEST(RecordTest, TombstoneRoundTrips) {
  std::string buf;
  EncodeTombstone(MakeTombstone(), &buf);
  EXPECT_EQ(RecordType::kTombstones, TypeOf(buf));
  absl::StatusOr<Tombstone> got = DecodeTombstone(buf);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(-5, got->mint);
  EXPECT_EQ(int64_t{1} << 50, got->maxt);
  ASSERT_EQ(4u, got->matchers.size());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(MakeTombstone().matchers[i].ToString(), got->matchers[i].ToString());
  }
  EXPECT_TRUE(got->matchers[1].Matches("b"));
  EXPECT_FALSE(got->matchers[1].Matches("c"));
}

TEST(RecordTest, TombstoneTruncationsAndBadBytesAreDataLoss) {
  std::string buf;
  EncodeTombstone(MakeTombstone(), &buf);
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(absl::StatusCode::kDataLoss,
              DecodeTombstone(std::string_view(buf.data(), n)).status().code())
        << "length " << n;
  }
  std::string trailing = buf + "x";
  EXPECT_EQ(absl::StatusCode::kDataLoss, DecodeTombstone(trailing).status().code());
  // A batch payload is not a tombstone, and an unknown type is neither.
  std::string batch;
  EncodeBatch({}, {{1, 5, 2.0}}, &batch);
  EXPECT_FALSE(DecodeTombstone(batch).ok());
  EXPECT_EQ(RecordType::kBatch, TypeOf(batch));
  EXPECT_EQ(std::nullopt, TypeOf(std::string_view("\x09", 1)));
  EXPECT_EQ(std::nullopt, TypeOf(""));
}

TEST(RecordTest, TombstoneWithBadRegexIsDataLossNamingIt) {
  Tombstone t;
  t.mint = 0;
  t.maxt = 1;
  std::string buf;
  EncodeTombstone(t, &buf);
  // Hand-craft a regex matcher whose pattern does not compile.
  buf[buf.size() - 1] = 1;  // one matcher
  buf.push_back(2);         // regex match
  encoding::PutLengthPrefixed(&buf, "host");
  encoding::PutLengthPrefixed(&buf, "(");
  absl::StatusOr<Tombstone> got = DecodeTombstone(buf);
  ASSERT_EQ(absl::StatusCode::kDataLoss, got.status().code());
  EXPECT_NE(std::string::npos, got.status().message().find("matcher"));
}

}  // namespace
}  // namespace espy::storage::record

namespace espy::storage::record {
namespace {

TEST(RecordTest, ExtremeValuesRoundTripBitForBit) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {0.0,
                                      -0.0,
                                      1.0,
                                      -1.0,
                                      0.1,
                                      0.3,
                                      0.1 + 0.2,
                                      1e-300,
                                      -1e300,
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::max(),
                                      std::numeric_limits<double>::lowest(),
                                      std::numeric_limits<double>::epsilon(),
                                      inf,
                                      -inf,
                                      kStaleNaN,
                                      std::nan(""),
                                      -std::nan(""),
                                      FromBits(0x7ff8dead00beef01ull),
                                      FromBits(0xfff0000000000001ull),
                                      9007199254740992.0,
                                      9007199254740993.0 * 2,
                                      -9007199254740991.0,
                                      123456.789,
                                      1e18,
                                      1e-18,
                                      4e9 + 0.1234,
                                      3.14159265358979};
  std::vector<RefSample> samples;
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t small = std::numeric_limits<int64_t>::min();
  // The same two series again and again, so every value also meets every
  // other as the previous value of its series (the delta path).
  for (size_t i = 0; i < values.size(); ++i) {
    samples.push_back({1 + i % 2, i % 3 == 0 ? big : (i % 3 == 1 ? small : 0), values[i]});
  }
  ExpectRoundTrip({}, samples);
  // And each alone, the single-sample path.
  for (double v : values) ExpectRoundTrip({}, {{5, -1, v}});
}

TEST(RecordTest, BigAndOutOfOrderTimestampsAndRefsRoundTrip) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t small = std::numeric_limits<int64_t>::min();
  ExpectRoundTrip({}, {{std::numeric_limits<uint64_t>::max(), big, 1},
                       {0, small, 2},
                       {std::numeric_limits<uint64_t>::max(), small, 3},
                       {7, 1'700'000'000'000, 4},
                       {7, 1'699'999'990'000, 5},
                       {7, 1'700'000'000'000, 6}});
}

TEST(RecordTest, RandomBatchesRoundTrip) {
  std::mt19937_64 rng(20261208);
  for (int iter = 0; iter < 300; ++iter) {
    const size_t nseries = rng() % 4;
    std::vector<RefSeries> series;
    for (size_t i = 0; i < nseries; ++i) {
      series.push_back({rng() % 1000, model::Labels({{"__name__", "m" + std::to_string(rng() % 50)},
                                                     {"i", std::to_string(i)}})});
    }
    const size_t n = iter % 10 == 0 ? rng() % 5000 : rng() % 40;
    const uint64_t nrefs = 1 + rng() % 30;
    std::vector<RefSample> samples;
    for (size_t i = 0; i < n; ++i) {
      double v;
      switch (rng() % 6) {
        case 0:  // any bits: NaN payloads, denormals, infinities
          v = FromBits(rng());
          break;
        case 1:  // decimals with 0..8 digits after the point
          v = static_cast<double>(static_cast<int64_t>(rng() % 2000000000) - 1000000000) /
              std::pow(10.0, static_cast<double>(rng() % 9));
          break;
        case 2:
          v = static_cast<double>(rng() % 100);
          break;
        case 3:
          v = std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
          break;
        case 4:
          v = kStaleNaN;
          break;
        default:
          v = std::round(std::uniform_real_distribution<double>(0, 1e6)(rng) * 1e3) / 1e3;
      }
      const int64_t ts = rng() % 8 == 0 ? static_cast<int64_t>(rng())
                                        : 1'700'000'000'000 + static_cast<int64_t>(rng() % 100000);
      samples.push_back({rng() % nrefs, ts, v});
    }
    SCOPED_TRACE(testing::Message() << "iteration " << iter);
    ExpectRoundTrip(series, samples);
    if (HasFatalFailure()) return;
  }
}

TEST(RecordTest, ManySeriesOneSampleEachIsCompact) {
  std::vector<RefSeries> series;
  std::vector<RefSample> samples;
  for (uint64_t i = 1; i <= 10000; ++i) {
    series.push_back({i, model::Labels({{"__name__", "cpu_usage_percent"},
                                        {"host", "host-" + std::to_string(i % 1000)},
                                        {"region", "us-east"}})});
    samples.push_back({i, 1'700'000'000'000, std::round(5e5 + static_cast<double>(i) * 7.3) / 1e4});
  }
  std::string buf;
  ExpectRoundTrip(series, samples, &buf);
  EXPECT_TRUE(Compressed(buf));
  // The v1 layout took 8 bytes for each value alone, plus the labels.
  EXPECT_LT(buf.size(), 10000u * 6) << buf.size();
}

TEST(RecordTest, OneSeriesManySamplesUsesDeltas) {
  std::vector<RefSample> samples;
  double v = 123456.789;
  for (int64_t i = 0; i < 10000; ++i) {
    v = std::round((v + static_cast<double>(i % 97)) * 1e3) / 1e3;
    samples.push_back({42, 1'700'000'000'000 + i * 10'000, v});
  }
  std::string buf;
  ExpectRoundTrip({}, samples, &buf);
  EXPECT_TRUE(Compressed(buf));
  EXPECT_LT(buf.size(), 10000u * 3) << buf.size();
}

TEST(RecordTest, SmallRecordsStayUncompressedAndShort) {
  std::string buf;
  ExpectRoundTrip({}, {{12345, 1'700'000'000'000, 42.5}}, &buf);
  EXPECT_FALSE(Compressed(buf));
  // type, flags, nseries, nsamples, ref (2), ts (6), code, mantissa (2):
  // 15 bytes where v1 needed 20.
  EXPECT_EQ(15u, buf.size());
}

// A type 1 batch exactly as binaries before kBatch wrote it: one series
// {__name__="cpu"} with ref 7, samples (7, 1000, 0.5) and (3, 1010, -1).
const char kV1Batch[] =
    "\x01"          // type 1
    "\x01\x07\x01"  // nseries 1, ref 7, nlabels 1
    "\x08__name__\x03"
    "cpu"                                        // label
    "\x02\xd0\x0f"                               // nsamples 2, base ts svarint(1000)
    "\x07\x00\x00\x00\x00\x00\x00\x00\xe0\x3f"   // ref 7, delta 0, 0.5
    "\x03\x14\x00\x00\x00\x00\x00\x00\xf0\xbf";  // ref 3, delta svarint(10), -1.0

TEST(RecordTest, OldFormatBatchStillDecodes) {
  const std::string_view v1(kV1Batch, sizeof(kV1Batch) - 1);
  EXPECT_EQ(RecordType::kBatchV1, TypeOf(v1));
  std::vector<RefSeries> series;
  std::vector<RefSample> samples;
  absl::Status s = DecodeBatch(v1, &series, &samples);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(1u, series.size());
  EXPECT_EQ(7u, series[0].ref);
  EXPECT_EQ(model::Labels(std::vector<model::Label>{{"__name__", "cpu"}}), series[0].labels);
  ASSERT_EQ(2u, samples.size());
  EXPECT_EQ(7u, samples[0].ref);
  EXPECT_EQ(1000, samples[0].ts);
  EXPECT_EQ(0.5, samples[0].value);
  EXPECT_EQ(3u, samples[1].ref);
  EXPECT_EQ(1010, samples[1].ts);
  EXPECT_EQ(-1.0, samples[1].value);
  for (size_t n = 0; n < v1.size(); ++n) {
    EXPECT_EQ(absl::StatusCode::kDataLoss, DecodeBatch(v1.substr(0, n), &series, &samples).code())
        << "length " << n;
  }
}

TEST(RecordTest, RepeatedOrUnorderedLabelNamesAreDataLoss) {
  // kV1Batch's series with a second label: "host" (in order), "__name__"
  // again (repeated), "A" (out of order: it sorts before "__name__").
  auto with_label = [](std::string_view name) {
    std::string v1(kV1Batch, sizeof(kV1Batch) - 1);
    v1[3] = '\x02';  // nlabels 2
    std::string label;
    encoding::PutLengthPrefixed(&label, name);
    encoding::PutLengthPrefixed(&label, "x");
    v1.insert(4 + 1 + 8 + 1 + 3, label);  // after {__name__="cpu"}
    return v1;
  };
  std::vector<RefSeries> series;
  std::vector<RefSample> samples;
  ASSERT_TRUE(DecodeBatch(with_label("host"), &series, &samples).ok());
  EXPECT_EQ("x", series[0].labels.Get("host"));
  for (std::string_view bad : {"__name__", "A"}) {
    absl::Status s = DecodeBatch(with_label(bad), &series, &samples);
    EXPECT_EQ(absl::StatusCode::kDataLoss, s.code()) << bad;
    EXPECT_NE(std::string::npos, s.message().find("label order")) << s;
  }
}

// docs/format/wal.md shows these bytes; a change here is a format change.
TEST(RecordTest, BatchBytesArePinned) {
  std::string buf;
  EncodeBatch({{7, model::Labels(std::vector<model::Label>{{"__name__", "cpu"}})}},
              {{7, 1000, 0.5}, {3, 1010, -1}, {7, 1020, 0.7}, {7, 1030, kStaleNaN}}, &buf);
  const char want[] =
      "\x03\x00"  // type 3, flags 0 (not compressed)
      "\x01\x07\x01\x08__name__\x03"
      "cpu"                                // 1 series: ref 7, {__name__="cpu"}
      "\x04"                               // 4 samples
      "\x07\x07\x08\x00"                   // refs: 7, then deltas -4, +4, 0 (svarint)
      "\xd0\x0f\x14\x14\x14"               // ts: 1000, then deltas 10, 10, 10
      "\x01\x00\x41\x80"                   // codes: m/10^1, m/10^0, delta m/10^1, raw
      "\x0a\x01\x04"                       // svarints: 5 (0.5), -1, 7 - 5 = 2 (0.7)
      "\x02\x00\x00\x00\x00\x00\xf0\x7f";  // the stale NaN's bits
  EXPECT_EQ(std::string(want, sizeof(want) - 1), buf);
}

TEST(RecordTest, EveryTruncationOfACompressedBatchIsDataLoss) {
  std::vector<RefSample> samples;
  for (int64_t i = 0; i < 2000; ++i) samples.push_back({static_cast<uint64_t>(i % 50), i, 0.5 * i});
  std::string buf;
  EncodeBatch({}, samples, &buf);
  ASSERT_TRUE(Compressed(buf));
  std::vector<RefSeries> series;
  std::vector<RefSample> got;
  for (size_t n = 0; n < buf.size(); ++n) {
    absl::Status s = DecodeBatch(std::string_view(buf.data(), n), &series, &got);
    ASSERT_EQ(absl::StatusCode::kDataLoss, s.code()) << "length " << n;
  }
}

TEST(RecordTest, DamagedCompressedBatchIsDataLossOrDecodesNeverCrashes) {
  std::vector<RefSample> samples;
  for (int64_t i = 0; i < 500; ++i) samples.push_back({static_cast<uint64_t>(i % 7), i, 1.25 * i});
  std::string buf;
  EncodeBatch({{3, model::Labels(std::vector<model::Label>{{"a", "b"}})}}, samples, &buf);
  ASSERT_TRUE(Compressed(buf));
  std::vector<RefSeries> series;
  std::vector<RefSample> got;
  // The WAL's CRC catches real damage before this; here every flipped byte
  // must still be handled: an error naming an offset, or some decoded batch.
  for (size_t i = 1; i < buf.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string bad = buf;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      absl::Status s = DecodeBatch(bad, &series, &got);
      if (!s.ok()) {
        EXPECT_EQ(absl::StatusCode::kDataLoss, s.code());
        EXPECT_NE(std::string::npos, s.message().find("offset")) << s;
      }
    }
  }
  // A frame that is not zstd at all.
  std::string garbage = buf.substr(0, 4) + std::string(40, '\x5a');
  absl::Status s = DecodeBatch(garbage, &series, &got);
  EXPECT_EQ(absl::StatusCode::kDataLoss, s.code());
  EXPECT_NE(std::string::npos, s.message().find("zstd")) << s;
}

TEST(RecordTest, MalformedBatchBodiesAreDataLossNamingWhat) {
  std::vector<RefSeries> series;
  std::vector<RefSample> got;
  auto message = [&](std::string_view payload) {
    absl::Status s = DecodeBatch(payload, &series, &got);
    EXPECT_EQ(absl::StatusCode::kDataLoss, s.code());
    return std::string(s.message());
  };
  // Unknown flag bits.
  EXPECT_NE(std::string::npos, message(std::string_view("\x03\x02\x00\x00", 4)).find("flags"));
  // Value code 19 (exponent above 18) and 0x20.
  EXPECT_NE(std::string::npos,
            message(std::string_view("\x03\x00\x00\x01\x01\x00\x13\x00", 8)).find("code"));
  EXPECT_NE(std::string::npos,
            message(std::string_view("\x03\x00\x00\x01\x01\x00\x20\x00", 8)).find("code"));
  // A delta with no earlier sample of its series.
  EXPECT_NE(std::string::npos,
            message(std::string_view("\x03\x00\x00\x01\x01\x00\x40\x00", 8)).find("delta"));
  // A delta whose base had another exponent: ref 1 twice, codes 1 then 0x42.
  EXPECT_NE(std::string::npos,
            message(std::string_view("\x03\x00\x00\x02\x01\x00\x00\x00\x01\x42\x02\x02", 12))
                .find("delta"));
  // A sample count the bytes cannot hold.
  EXPECT_NE(std::string::npos,
            message(std::string_view("\x03\x00\x00\x7f\x01\x00", 6)).find("sample count"));
  // A compressed body whose declared size is not the frame's.
  std::vector<RefSample> samples;
  for (int64_t i = 0; i < 500; ++i) samples.push_back({1, i, 0.5 * i});
  std::string buf;
  EncodeBatch({}, samples, &buf);
  ASSERT_TRUE(Compressed(buf));
  buf[2] = static_cast<char>(buf[2] ^ 1);  // first byte of the body size varint
  EXPECT_NE(std::string::npos, message(buf).find("zstd frame header"));
}

}  // namespace
}  // namespace espy::storage::record
