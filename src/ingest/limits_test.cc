#include "ingest/limits.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"

namespace espy::ingest {
namespace {

using ::testing::HasSubstr;

model::Labels L(std::vector<model::Label> labels) { return model::Labels(std::move(labels)); }

BadInput Bad(const model::Labels& labels, const Limits& limits = Limits(), int64_t item = 7) {
  absl::Status status = ValidateLabels(labels, limits, item);
  EXPECT_FALSE(status.ok()) << labels.ToString();
  std::optional<BadInput> bad = GetBadInput(status);
  EXPECT_TRUE(bad.has_value()) << status;
  return bad.value_or(BadInput{});
}

TEST(ValidateLabelsTest, AcceptsOrdinaryAndUnicodeLabels) {
  EXPECT_TRUE(ValidateLabels(L({{"__name__", "cpu"}, {"host", "a"}}), Limits(), 0).ok());
  EXPECT_TRUE(
      ValidateLabels(L({{"__name__", "température"}, {"ville", "Zürich"}, {"é", "😀"}}), Limits(), 0)
          .ok());
}

TEST(ValidateLabelsTest, MetricNameIsRequired) {
  BadInput missing = Bad(L({{"host", "a"}}));
  EXPECT_EQ(7, missing.item);
  EXPECT_EQ("name", missing.field);
  EXPECT_EQ("want a non-empty metric name", missing.problem);
  EXPECT_EQ("name", Bad(L({{"__name__", ""}})).field);
}

TEST(ValidateLabelsTest, EmptyNamesAndValues) {
  BadInput value = Bad(L({{"__name__", "cpu"}, {"host", ""}}));
  EXPECT_EQ("host", value.field);
  EXPECT_EQ("empty label value; omit the label instead", value.problem);
  BadInput name = Bad(L({{"__name__", "cpu"}, {"", "x"}}));
  EXPECT_EQ("", name.field);
  EXPECT_EQ("empty label name", name.problem);
}

TEST(ValidateLabelsTest, Sizes) {
  Limits limits;
  limits.max_labels_per_series = 2;
  limits.max_label_name_bytes = 4;
  limits.max_label_value_bytes = 5;
  EXPECT_TRUE(ValidateLabels(L({{"__name__", "12345"}, {"host", "12345"}}), limits, 0).ok());
  EXPECT_EQ("3 labels, at most 2 allowed per series (name included)",
            Bad(L({{"__name__", "m"}, {"a", "1"}, {"b", "2"}}), limits).problem);
  BadInput name = Bad(L({{"__name__", "m"}, {"hosts", "1"}}), limits);
  EXPECT_EQ("hosts", name.field);
  EXPECT_EQ("label name is 5 bytes, at most 4 allowed", name.problem);
  BadInput value = Bad(L({{"__name__", "m"}, {"host", "123456"}}), limits);
  EXPECT_EQ("host", value.field);
  EXPECT_EQ("label value is 6 bytes, at most 5 allowed", value.problem);
  BadInput metric = Bad(L({{"__name__", "123456"}}), limits);
  EXPECT_EQ("name", metric.field);
  EXPECT_EQ("metric name is 6 bytes, at most 5 allowed", metric.problem);
}

TEST(ValidateLabelsTest, LongNamesAreCutInTheField) {
  const std::string name(300, 'n');
  BadInput bad = Bad(L({{"__name__", "m"}, {name, "1"}}));
  EXPECT_EQ(std::string(64, 'n') + "...", bad.field);
  EXPECT_EQ("label name is 300 bytes, at most 256 allowed", bad.problem);
}

TEST(ValidateLabelsTest, InvalidUtf8) {
  for (std::string_view bytes : {
           std::string_view("\xff"),              // never valid
           std::string_view("\xc3"),              // truncated
           std::string_view("\xc3(", 2),          // bad continuation
           std::string_view("\xc0\xaf"),          // overlong '/'
           std::string_view("\xe0\x80\xaf"),      // overlong
           std::string_view("\xed\xa0\x80"),      // surrogate U+D800
           std::string_view("\xf4\x90\x80\x80"),  // above U+10FFFF
           std::string_view("\xf8\x88\x80\x80\x80"),
       }) {
    const std::string value = "abcdefghij" + std::string(bytes);
    BadInput in_value = Bad(L({{"__name__", "m"}, {"host", value}}));
    EXPECT_EQ("host", in_value.field);
    EXPECT_EQ("label value is not valid UTF-8 (byte 10)", in_value.problem);
    BadInput in_metric = Bad(L({{"__name__", value}}));
    EXPECT_EQ("name", in_metric.field);
    EXPECT_EQ("metric name is not valid UTF-8 (byte 10)", in_metric.problem);
  }
  // The field shows the bad name with its invalid bytes escaped.
  BadInput in_name = Bad(L({{"__name__", "m"}, {"h\xffst", "1"}}));
  EXPECT_EQ("h\\xffst", in_name.field);
  EXPECT_EQ("label name is not valid UTF-8 (byte 1)", in_name.problem);
  // Largest valid sequences of each length pass.
  EXPECT_TRUE(
      ValidateLabels(L({{"__name__", "\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf"}}), Limits(), 0)
          .ok());
}

TEST(ValidateTimestampTest, FutureBound) {
  Limits limits;
  const int64_t now = 1700000000000;
  EXPECT_TRUE(ValidateTimestamp(now + limits.max_future_millis, now, limits, 0).ok());
  EXPECT_TRUE(ValidateTimestamp(0, now, limits, 0).ok());  // no retention: any past time
  absl::Status status = ValidateTimestamp(now + limits.max_future_millis + 1, now, limits, 3);
  std::optional<BadInput> bad = GetBadInput(status);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(3, bad->item);
  EXPECT_EQ("ts", bad->field);
  EXPECT_EQ(
      "timestamp 2023-11-16T22:13:20.001Z is more than 172800s in the future (now "
      "2023-11-14T22:13:20.000Z)",
      bad->problem);
  limits.max_future_millis = 0;
  EXPECT_TRUE(ValidateTimestamp(now * 2, now, limits, 0).ok());
}

TEST(ValidateTimestampTest, RetentionBound) {
  Limits limits;
  const int64_t now = 1700000000000;
  const int64_t thirty_days = 30 * 24 * 3600 * 1000ll;
  limits.retention_millis = thirty_days;
  EXPECT_TRUE(ValidateTimestamp(now - thirty_days, now, limits, 0).ok());
  absl::Status status = ValidateTimestamp(now - thirty_days - 1, now, limits, 4);
  std::optional<BadInput> bad = GetBadInput(status);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(4, bad->item);
  EXPECT_EQ("ts", bad->field);
  EXPECT_EQ(
      "timestamp 2023-10-15T22:13:19.999Z is older than the retention (30d): the oldest kept "
      "now is 2023-10-15T22:13:20.000Z",
      bad->problem);
  // The default keeps everything: no past bound.
  EXPECT_TRUE(ValidateTimestamp(0, now, Limits(), 0).ok());
}

TEST(FormatSpanTest, LargestExactUnit) {
  EXPECT_EQ("30d", FormatSpan(30 * 24 * 3600 * 1000ll));
  EXPECT_EQ("2w", FormatSpan(14 * 24 * 3600 * 1000ll));
  EXPECT_EQ("1y", FormatSpan(365 * 24 * 3600 * 1000ll));
  EXPECT_EQ("90m", FormatSpan(90 * 60 * 1000ll));
  EXPECT_EQ("1500ms", FormatSpan(1500));
}

}  // namespace
}  // namespace espy::ingest
