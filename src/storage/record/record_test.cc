#include "storage/record/record.h"

#include <cmath>

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

}  // namespace
}  // namespace espy::storage::record
