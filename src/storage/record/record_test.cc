#include "storage/record/record.h"

#include <cmath>

#include "encoding/coding.h"
#include "gtest/gtest.h"

namespace espy::storage::record {
namespace {

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
