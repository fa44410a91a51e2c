#include "ingest/remote_write_parser.h"

#include <snappy.h>

#include <bit>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"
#include "remote_write.pb.h"

namespace espy::ingest {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr size_t kMaxBytes = 1 << 20;
constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;

prometheus::TimeSeries* AddSeries(prometheus::WriteRequest* request,
                                  std::initializer_list<std::pair<std::string, std::string>> labels,
                                  std::initializer_list<std::pair<int64_t, double>> samples) {
  prometheus::TimeSeries* ts = request->add_timeseries();
  for (const auto& [name, value] : labels) {
    prometheus::Label* label = ts->add_labels();
    label->set_name(name);
    label->set_value(value);
  }
  for (const auto& [t, v] : samples) {
    prometheus::Sample* sample = ts->add_samples();
    sample->set_timestamp(t);
    sample->set_value(v);
  }
  return ts;
}

std::string Compress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::string Encode(const prometheus::WriteRequest& request) {
  return Compress(request.SerializeAsString());
}

absl::StatusOr<Batch> Parse(const std::string& body, const Limits& limits = Limits{}) {
  return ParseRemoteWrite(body, kMaxBytes, kNow, limits);
}

BadInput ParseError(const std::string& body, const Limits& limits = Limits{}) {
  absl::StatusOr<Batch> batch = Parse(body, limits);
  EXPECT_FALSE(batch.ok());
  if (batch.ok()) return {};
  std::optional<BadInput> bad = GetBadInput(batch.status());
  EXPECT_TRUE(bad.has_value()) << batch.status();
  return bad.value_or(BadInput{});
}

TEST(RemoteWriteParserTest, RoundTrip) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"job", "api"}, {"__name__", "http_requests_total"}, {"code", "200"}},
            {{1000, 1.5}, {2000, 2.5}});
  AddSeries(&request, {{"__name__", "up"}}, {{3000, 1}});
  // Exemplars and metadata are accepted and ignored.
  prometheus::Exemplar* exemplar = request.mutable_timeseries(1)->add_exemplars();
  exemplar->set_value(7);
  prometheus::MetricMetadata* metadata = request.add_metadata();
  metadata->set_type(prometheus::MetricMetadata::COUNTER);
  metadata->set_metric_family_name("http_requests_total");
  metadata->set_help("Requests.");

  absl::StatusOr<Batch> batch = Parse(Encode(request));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->series.size(), 2u);
  EXPECT_EQ(batch->series[0].ToString(), "http_requests_total{code=\"200\",job=\"api\"}");
  EXPECT_EQ(batch->series[1].ToString(), "up{}");
  ASSERT_EQ(batch->samples.size(), 3u);
  EXPECT_EQ(batch->samples[0].series, 0u);
  EXPECT_EQ(batch->samples[0].ts, 1000);
  EXPECT_EQ(batch->samples[0].value, 1.5);
  EXPECT_EQ(batch->samples[1].ts, 2000);
  EXPECT_EQ(batch->samples[1].value, 2.5);
  EXPECT_EQ(batch->samples[2].series, 1u);
  EXPECT_EQ(batch->samples[2].ts, 3000);
  EXPECT_EQ(batch->samples[2].value, 1);
}

TEST(RemoteWriteParserTest, UnknownFieldsAreSkipped) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}}, {{-5000, 1}});
  // Field 15 of every kind before and after the series: varint, fixed64,
  // bytes, fixed32.
  const std::string unknown = std::string("\x78\x01") + "\x79" + std::string(8, '\0') +
                              "\x7a\x02hi" + "\x7d" + std::string(4, '\0');
  absl::StatusOr<Batch> batch = Parse(Compress(unknown + request.SerializeAsString() + unknown));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->samples.size(), 1u);
  EXPECT_EQ(batch->samples[0].ts, -5000);
}

TEST(RemoteWriteParserTest, GroupsAreCorrupt) {
  BadInput bad = ParseError(Compress("\x7b"));  // field 15, start group
  EXPECT_EQ(bad.item, -1);
  EXPECT_THAT(bad.problem, HasSubstr("at byte 0"));
}

TEST(RemoteWriteParserTest, EmptyRequestIsAnEmptyBatch) {
  absl::StatusOr<Batch> batch = Parse(Encode(prometheus::WriteRequest()));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE(batch->empty());
}

TEST(RemoteWriteParserTest, StaleMarkersArePreservedBitExact) {
  const double stale = std::bit_cast<double>(kStaleNaNBits);
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}},
            {{1000, stale}, {2000, std::numeric_limits<double>::quiet_NaN()}});
  absl::StatusOr<Batch> batch = Parse(Encode(request));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->samples.size(), 2u);
  EXPECT_EQ(std::bit_cast<uint64_t>(batch->samples[0].value), kStaleNaNBits);
  EXPECT_NE(std::bit_cast<uint64_t>(batch->samples[1].value), kStaleNaNBits);
}

TEST(RemoteWriteParserTest, SeriesWithoutSamplesAddsNothing) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "a"}}, {});
  AddSeries(&request, {{"__name__", "b"}}, {{1, 1}});
  absl::StatusOr<Batch> batch = Parse(Encode(request));
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->series.size(), 1u);
  EXPECT_EQ(batch->series[0].MetricName(), "b");
  EXPECT_EQ(batch->samples[0].series, 0u);
}

TEST(RemoteWriteParserTest, EmptyLabelValuesAreDropped) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"job", ""}, {"instance", "a"}}, {{1, 1}});
  absl::StatusOr<Batch> batch = Parse(Encode(request));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->series[0].ToString(), "up{instance=\"a\"}");
}

TEST(RemoteWriteParserTest, NotSnappy) {
  BadInput bad = ParseError("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
  EXPECT_EQ(bad.item, -1);
  EXPECT_THAT(bad.problem, HasSubstr("not snappy"));
  EXPECT_EQ(ParseError("").item, -1);
}

TEST(RemoteWriteParserTest, CorruptSnappy) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"job", "api"}}, {{1, 1}});
  std::string body = Encode(request);
  body.resize(body.size() - 3);  // the length header still promises more
  BadInput bad = ParseError(body);
  EXPECT_EQ(bad.item, -1);
  EXPECT_THAT(bad.problem, HasSubstr("corrupt snappy"));
}

TEST(RemoteWriteParserTest, DecodedSizeIsCheckedBeforeDecoding) {
  const std::string big(2 * kMaxBytes, 'a');
  BadInput bad = ParseError(Compress(big));
  EXPECT_EQ(bad.item, -1);
  EXPECT_THAT(bad.problem, HasSubstr(fmt::format("would be {} bytes", big.size())));
  EXPECT_THAT(bad.problem, HasSubstr(fmt::format("{}-byte limit", kMaxBytes)));
}

TEST(RemoteWriteParserTest, TruncatedProtobuf) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"job", "api"}}, {{1, 1}});
  std::string raw = request.SerializeAsString();
  raw.resize(raw.size() - 4);
  BadInput bad = ParseError(Compress(raw));
  EXPECT_EQ(bad.item, -1);
  EXPECT_THAT(bad.problem, HasSubstr("not a valid prometheus.WriteRequest"));
}

TEST(RemoteWriteParserTest, MissingMetricName) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "ok"}}, {{1, 1}});
  AddSeries(&request, {{"job", "api"}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 1);
  EXPECT_EQ(bad.field, "__name__");
  EXPECT_THAT(bad.problem, HasSubstr("needs a __name__ label"));
}

TEST(RemoteWriteParserTest, EmptyMetricName) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", ""}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 0);
  EXPECT_EQ(bad.field, "__name__");
}

TEST(RemoteWriteParserTest, MetricNameMayBeAnyUtf8) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "température.°C"}}, {{1, 1}});
  absl::StatusOr<Batch> batch = Parse(Encode(request));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->series[0].MetricName(), "température.°C");
}

TEST(RemoteWriteParserTest, InvalidLabelNames) {
  for (std::string_view name : {"1abc", "a-b", "a.b", "é"}) {
    prometheus::WriteRequest request;
    AddSeries(&request, {{"__name__", "up"}}, {{1, 1}});
    AddSeries(&request, {{"__name__", "up"}, {std::string(name), "v"}}, {{1, 1}});
    BadInput bad = ParseError(Encode(request));
    EXPECT_EQ(bad.item, 1) << name;
    EXPECT_THAT(bad.problem, HasSubstr("invalid label name")) << name;
    if (name != "é") {
      EXPECT_EQ(bad.field, name);
    }
  }
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"\xc3", "v"}}, {{1, 1}});
  EXPECT_EQ(ParseError(Encode(request)).field, "\\xc3");
}

TEST(RemoteWriteParserTest, InvalidUtf8IsReportedWithSeriesAndLabel) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}}, {{1, 1}});
  AddSeries(&request, {{"__name__", "up"}, {"job", "a\xff"}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 1);
  EXPECT_EQ(bad.field, "job");
  EXPECT_THAT(bad.problem, HasSubstr("UTF-8"));
}

TEST(RemoteWriteParserTest, EmptyLabelName) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"", "v"}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 0);
  EXPECT_EQ(bad.problem, "empty label name");
}

TEST(RemoteWriteParserTest, DuplicateLabelNames) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"job", "a"}, {"zone", "x"}, {"job", "b"}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 0);
  EXPECT_EQ(bad.field, "job");
  EXPECT_THAT(bad.problem, HasSubstr("appears twice"));
}

TEST(RemoteWriteParserTest, NativeHistogramsAreRejected) {
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "ok"}}, {{1, 1}});
  prometheus::TimeSeries* ts = AddSeries(&request, {{"__name__", "latency"}}, {});
  ts->add_histograms()->set_timestamp(1);
  BadInput bad = ParseError(Encode(request));
  EXPECT_EQ(bad.item, 1);
  EXPECT_EQ(bad.field, "histograms");
  EXPECT_THAT(bad.problem, HasSubstr("native histograms are not supported"));
}

TEST(RemoteWriteParserTest, LimitsApply) {
  Limits limits;
  limits.max_labels_per_series = 2;
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}, {"a", "1"}, {"b", "2"}}, {{1, 1}});
  BadInput bad = ParseError(Encode(request), limits);
  EXPECT_EQ(bad.item, 0);
  EXPECT_THAT(bad.problem, HasSubstr("at most 2"));

  limits = Limits{};
  limits.max_label_value_bytes = 3;
  request.Clear();
  AddSeries(&request, {{"__name__", "up"}, {"a", "long"}}, {{1, 1}});
  bad = ParseError(Encode(request), limits);
  EXPECT_EQ(bad.field, "a");
}

TEST(RemoteWriteParserTest, FutureTimestampsAreRejected) {
  Limits limits;
  limits.max_future_millis = 1000;
  prometheus::WriteRequest request;
  AddSeries(&request, {{"__name__", "up"}}, {{kNow, 1}, {kNow + 1001, 1}});
  BadInput bad = ParseError(Encode(request), limits);
  EXPECT_EQ(bad.item, 0);
  EXPECT_EQ(bad.field, "ts");
}

}  // namespace
}  // namespace espy::ingest
