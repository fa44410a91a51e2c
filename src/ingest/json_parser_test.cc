#include "ingest/json_parser.h"

#include <cmath>
#include <limits>
#include <string>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"

namespace espy::ingest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kNow = 1700000000000;   // 2023-11-14T22:13:20Z
constexpr int64_t k2016 = 1451606400000;  // 2016-01-01T00:00:00Z

class JsonParserTest : public ::testing::Test {
 protected:
  Batch Parse(std::string_view body, JsonFormat format = JsonFormat::kJson) {
    absl::StatusOr<Batch> batch = ParseJsonMetrics(body, format, kNow, limits_);
    EXPECT_TRUE(batch.ok()) << body << ": " << batch.status();
    return batch.ok() ? *std::move(batch) : Batch();
  }

  // The one sample of a one-item body.
  model::BatchSample One(std::string_view body) {
    Batch batch = Parse(body);
    EXPECT_EQ(1u, batch.samples.size()) << body;
    return batch.samples.empty() ? model::BatchSample{} : batch.samples[0];
  }

  // The one series of a one-item body, in Prometheus notation.
  std::string Series(std::string_view body) {
    Batch batch = Parse(body);
    EXPECT_EQ(1u, batch.series.size()) << body;
    return batch.series.empty() ? "" : batch.series[0].ToString();
  }

  BadInput Bad(std::string_view body, JsonFormat format = JsonFormat::kJson) {
    absl::StatusOr<Batch> batch = ParseJsonMetrics(body, format, kNow, limits_);
    EXPECT_FALSE(batch.ok()) << body << " was accepted";
    if (batch.ok()) return {};
    EXPECT_EQ(absl::StatusCode::kInvalidArgument, batch.status().code());
    std::optional<BadInput> bad = GetBadInput(batch.status());
    EXPECT_TRUE(bad.has_value()) << "not a BadInput: " << batch.status();
    return bad.value_or(BadInput{});
  }

  Limits limits_;
};

TEST_F(JsonParserTest, PredecessorExample) {
  Batch batch = Parse(R"({"name":"asdf","ts":"2016-01-01","value":"42"})");
  ASSERT_EQ(1u, batch.series.size());
  ASSERT_EQ(1u, batch.samples.size());
  EXPECT_EQ("asdf{}", batch.series[0].ToString());
  EXPECT_EQ(0u, batch.samples[0].series);
  EXPECT_EQ(k2016, batch.samples[0].ts);
  EXPECT_EQ(42, batch.samples[0].value);
}

TEST_F(JsonParserTest, OtherKeysAreSortedLabels) {
  EXPECT_EQ(R"(cpu{host="a",region="eu"})",
            Series(R"({"region":"eu","value":0.5,"host":"a","name":"cpu"})"));
  Batch batch = Parse(R"({"region":"eu","value":0.5,"host":"a","name":"cpu"})");
  EXPECT_EQ("__name__", batch.series[0].items()[0].name);
  EXPECT_EQ(kNow, batch.samples[0].ts);  // missing ts means now
  EXPECT_EQ(0.5, batch.samples[0].value);
}

TEST_F(JsonParserTest, ArrayItemsAndIdenticalSeriesShareAnEntry) {
  Batch batch = Parse(R"([
    {"name":"cpu","host":"a","value":1,"ts":1},
    {"name":"cpu","host":"b","value":2,"ts":2},
    {"host":"a","name":"cpu","value":3,"ts":3}
  ])");
  ASSERT_EQ(2u, batch.series.size());
  ASSERT_EQ(3u, batch.samples.size());
  EXPECT_EQ(R"(cpu{host="a"})", batch.series[0].ToString());
  EXPECT_EQ(R"(cpu{host="b"})", batch.series[1].ToString());
  EXPECT_EQ(0u, batch.samples[0].series);
  EXPECT_EQ(1u, batch.samples[1].series);
  EXPECT_EQ(0u, batch.samples[2].series);
  EXPECT_EQ(3000, batch.samples[2].ts);
  EXPECT_EQ(3, batch.samples[2].value);
}

TEST_F(JsonParserTest, EmptyArrayIsZeroSamplesButEmptyBodyIsAnError) {
  EXPECT_TRUE(Parse("[]").empty());
  EXPECT_TRUE(Parse(" [ ] \n").empty());
  for (std::string_view body : {"", "  \n\t"}) {
    BadInput bad = Bad(body);
    EXPECT_EQ(-1, bad.item);
    EXPECT_EQ("", bad.field);
    EXPECT_THAT(bad.problem, HasSubstr("empty body"));
  }
}

TEST_F(JsonParserTest, NdjsonSkipsBlankLinesAndNumbersItemsByLine) {
  const std::string body =
      "{\"name\":\"a\",\"value\":1}\r\n"
      "\r\n"
      "   \n"
      "{\"name\":\"b\",\"value\":2}\n"
      "{\"name\":\"c\",\"value\":3}";  // no final newline
  Batch batch = Parse(body, JsonFormat::kNdjson);
  ASSERT_EQ(3u, batch.samples.size());
  EXPECT_EQ("c{}", batch.series[2].ToString());
  EXPECT_EQ(3, batch.samples[2].value);

  BadInput bad = Bad("{\"name\":\"a\",\"value\":1}\n\n\n{\"name\":\"b\"}\n", JsonFormat::kNdjson);
  EXPECT_EQ(3, bad.item);  // the fourth line, blank lines counted
  EXPECT_EQ("value", bad.field);
  EXPECT_EQ("required", bad.problem);
}

TEST_F(JsonParserTest, NdjsonEdgeCases) {
  EXPECT_TRUE(Parse("", JsonFormat::kNdjson).empty());
  EXPECT_TRUE(Parse("\n\r\n\n", JsonFormat::kNdjson).empty());

  BadInput array =
      Bad("{\"name\":\"a\",\"value\":1}\n[{\"name\":\"a\",\"value\":1}]", JsonFormat::kNdjson);
  EXPECT_EQ(1, array.item);
  EXPECT_EQ("want a JSON object, got an array", array.problem);

  BadInput two =
      Bad("\n{\"name\":\"a\",\"value\":1} {\"name\":\"b\",\"value\":1}\n", JsonFormat::kNdjson);
  EXPECT_EQ(1, two.item);
  EXPECT_EQ("malformed JSON: trailing data after the first JSON value, at byte 23 of the line",
            two.problem);

  BadInput broken =
      Bad("{\"name\":\"a\",\"value\":1}\n{\"name\":\"a\",\"value\"\n", JsonFormat::kNdjson);
  EXPECT_EQ(1, broken.item);
  EXPECT_THAT(broken.problem, StartsWith("malformed JSON: "));

  // An object split over two lines is two broken lines.
  BadInput split = Bad("{\"name\":\"a\",\n\"value\":1}\n", JsonFormat::kNdjson);
  EXPECT_EQ(0, split.item);
  EXPECT_THAT(split.problem, StartsWith("malformed JSON: "));
}

TEST_F(JsonParserTest, ValueForms) {
  EXPECT_EQ(42, One(R"({"name":"m","value":42})").value);
  EXPECT_EQ(-7, One(R"({"name":"m","value":-7})").value);
  EXPECT_EQ(18446744073709551615.0, One(R"({"name":"m","value":18446744073709551615})").value);
  EXPECT_EQ(1.2345678901234568e29,
            One(R"({"name":"m","value":123456789012345678901234567890})").value);
  EXPECT_EQ(0.25, One(R"({"name":"m","value":2.5e-1})").value);
  EXPECT_EQ(42, One(R"({"name":"m","value":"42"})").value);
  EXPECT_EQ(1000, One(R"({"name":"m","value":"1e3"})").value);
  EXPECT_EQ(-1.5, One(R"({"name":"m","value":"-1.5"})").value);
  EXPECT_EQ(1.5, One(R"({"name":"m","value":"+1.5"})").value);
  EXPECT_EQ(0.5, One(R"({"name":"m","value":".5"})").value);
  EXPECT_TRUE(std::isnan(One(R"({"name":"m","value":"NaN"})").value));
  EXPECT_TRUE(std::isnan(One(R"({"name":"m","value":"nan"})").value));
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(inf, One(R"({"name":"m","value":"Inf"})").value);
  EXPECT_EQ(inf, One(R"({"name":"m","value":"+inf"})").value);
  EXPECT_EQ(-inf, One(R"({"name":"m","value":"-INF"})").value);
}

TEST_F(JsonParserTest, ValueErrors) {
  for (std::string_view text :
       {" 42", "42 ", "4 2", "", "abc", "0x10", "1e", "--1", "1.2.3", "Infinity", "nan(1)", "e5"}) {
    BadInput bad = Bad(R"({"name":"m","value":")" + std::string(text) + "\"}");
    EXPECT_EQ(0, bad.item) << text;
    EXPECT_EQ("value", bad.field) << text;
    EXPECT_THAT(bad.problem, StartsWith("want a number or a numeric string")) << text;
  }
  EXPECT_THAT(Bad(R"({"name":"m","value":"1e400"})").problem, HasSubstr("out of the range"));
  BadInput huge = Bad(R"({"name":"m","value":1e400})");
  EXPECT_EQ("value", huge.field);
  EXPECT_EQ("number 1e400 is out of the range of a double", huge.problem);
  for (std::string_view v : {"true", "null", "{}", "[1]"}) {
    BadInput bad = Bad(R"({"name":"m","value":)" + std::string(v) + "}");
    EXPECT_EQ("value", bad.field) << v;
    EXPECT_THAT(bad.problem, StartsWith("want a number or a numeric string, got ")) << v;
  }
  EXPECT_EQ("want a number or a numeric string, got null",
            Bad(R"({"name":"m","value":null})").problem);
  BadInput missing = Bad(R"([{"name":"m","value":1},{"name":"m"}])");
  EXPECT_EQ(1, missing.item);
  EXPECT_EQ("value", missing.field);
  EXPECT_EQ("required", missing.problem);
  BadInput malformed = Bad(R"({"name":"m","value":12abc})");
  EXPECT_EQ("value", malformed.field);
  EXPECT_THAT(malformed.problem, StartsWith("malformed JSON: "));
}

TEST_F(JsonParserTest, TimestampForms) {
  EXPECT_EQ(k2016 + 8 * 3600000,
            One(R"({"name":"m","value":1,"ts":"2016-01-01T10:00:00+02:00"})").ts);
  EXPECT_EQ(k2016, One(R"({"name":"m","value":1,"ts":1451606400})").ts);
  EXPECT_EQ(k2016 + 1, One(R"({"name":"m","value":1,"ts":1451606400.001})").ts);
  EXPECT_EQ(k2016 + 500, One(R"({"name":"m","value":1,"ts":"1451606400.5"})").ts);
  EXPECT_EQ(k2016, One(R"({"name":"m","value":1,"ts":1.4516064e9})").ts);
  EXPECT_EQ(k2016 + 1, One(R"({"name":"m","value":1,"ts":1.451606400001E+9})").ts);
  EXPECT_EQ(-1500, One(R"({"name":"m","value":1,"ts":-1.5})").ts);
  EXPECT_EQ(kNow, One(R"({"name":"m","value":1})").ts);
}

TEST_F(JsonParserTest, TimestampErrors) {
  BadInput null_ts = Bad(R"({"name":"m","value":1,"ts":null})");
  EXPECT_EQ("ts", null_ts.field);
  EXPECT_THAT(null_ts.problem, HasSubstr("got null; omit ts to mean now"));
  BadInput words = Bad(R"([{"name":"m","value":1},{"name":"m","value":1,"ts":"yesterday"}])");
  EXPECT_EQ(1, words.item);
  EXPECT_EQ("ts", words.field);
  EXPECT_EQ(R"(want ISO-8601 (2016-01-01T10:00:00Z) or epoch seconds, got "yesterday")",
            words.problem);
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":"2016-02-30"})").problem,
              HasSubstr("day 30 out of range"));
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":true})").problem, HasSubstr("got a boolean"));
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":{}})").problem, HasSubstr("got an object"));
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":1e20})").problem,
              HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":99999999999999999999})").problem,
              HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(Bad(R"({"name":"m","value":1,"ts":1e999})").problem,
              HasSubstr("outside years 0000-9999"));
}

TEST_F(JsonParserTest, FutureTimestampsBeyondTheLimitAreRejected) {
  const int64_t limit_s = limits_.max_future_millis / 1000;
  EXPECT_EQ(kNow + limits_.max_future_millis,
            One(fmt::format(R"({{"name":"m","value":1,"ts":{}}})", kNow / 1000 + limit_s)).ts);
  BadInput bad = Bad(fmt::format(R"({{"name":"m","value":1,"ts":{}}})", kNow / 1000 + limit_s + 1));
  EXPECT_EQ("ts", bad.field);
  EXPECT_THAT(bad.problem, HasSubstr("is more than 172800s in the future"));
  limits_.max_future_millis = 0;  // no bound
  EXPECT_EQ(int64_t{253402300799000},
            One(R"({"name":"m","value":1,"ts":"9999-12-31T23:59:59Z"})").ts);
}

TEST_F(JsonParserTest, LabelValueForms) {
  EXPECT_EQ(
      R"(m{big="123456789012345678901234567890",exp="1E+2",f="1.50",huge="1e400",no="false",port="8080",yes="true",z="-0"})",
      Series(R"({"name":"m","value":1,"port":8080,"f":1.50 ,"z":-0,"exp":1E+2,
                 "big":123456789012345678901234567890,"huge":1e400,"yes":true,"no":false})"));
  EXPECT_EQ(R"(m{q="say \"hi\"\n"})", Series(R"({"name":"m","value":1,"q":"say \"hi\"\n"})"));
  EXPECT_EQ(R"(m{_x="1"})", Series(R"({"name":"m","value":1,"_x":"1"})"));
}

TEST_F(JsonParserTest, LabelValueErrorsNameTheLabel) {
  for (std::string_view v : {"null", "{}", R"({"a":1})", "[]", "[1,2]"}) {
    BadInput bad =
        Bad(R"([{"name":"m","value":1},{"name":"m","value":1,"host":)" + std::string(v) + "}]");
    EXPECT_EQ(1, bad.item) << v;
    EXPECT_EQ("host", bad.field) << v;
    EXPECT_THAT(bad.problem, StartsWith("label values must be strings, numbers or booleans, got "))
        << v;
  }
  BadInput empty = Bad(R"({"name":"m","value":1,"host":""})");
  EXPECT_EQ("host", empty.field);
  EXPECT_EQ("empty label value; omit the label instead", empty.problem);
  BadInput bad_bool = Bad(R"({"name":"m","value":1,"host":tru})");
  EXPECT_EQ("host", bad_bool.field);
  EXPECT_THAT(bad_bool.problem, StartsWith("malformed JSON: "));
  BadInput bad_number = Bad(R"({"name":"m","value":1,"host":01})");
  EXPECT_EQ("host", bad_number.field);
  EXPECT_THAT(bad_number.problem, StartsWith("malformed JSON: "));
}

TEST_F(JsonParserTest, ReservedAndDuplicateKeys) {
  BadInput reserved = Bad(R"({"name":"m","value":1,"__name__":"x"})");
  EXPECT_EQ(0, reserved.item);
  EXPECT_EQ("__name__", reserved.field);
  EXPECT_EQ(R"(label names starting with "__" are reserved)", reserved.problem);
  EXPECT_EQ("__x", Bad(R"({"name":"m","value":1,"__x":"y"})").field);

  BadInput dup = Bad(R"({"name":"m","value":1,"host":"a","host":"b"})");
  EXPECT_EQ("host", dup.field);
  EXPECT_EQ("duplicate key", dup.problem);
  EXPECT_EQ("name", Bad(R"({"name":"m","value":1,"name":"n"})").field);
  EXPECT_EQ("value", Bad(R"({"name":"m","value":1,"value":2})").field);
  // Keys compare after unescaping.
  EXPECT_EQ("host", Bad(R"({"name":"m","value":1,"host":"a","h\u006fst":"b"})").field);
  EXPECT_EQ("m{}", Series(R"({"n\u0061me":"m","value":1})"));
}

TEST_F(JsonParserTest, NameIsRequiredAndNonEmpty) {
  BadInput missing = Bad(R"({"value":1,"host":"a"})");
  EXPECT_EQ(0, missing.item);
  EXPECT_EQ("name", missing.field);
  EXPECT_EQ("required", missing.problem);
  EXPECT_EQ(R"(want a non-empty string, got "")", Bad(R"({"name":"","value":1})").problem);
  BadInput number = Bad(R"({"name":5,"value":1})");
  EXPECT_EQ("name", number.field);
  EXPECT_EQ("want a non-empty string, got a number", number.problem);
  EXPECT_EQ("want a non-empty string, got null", Bad(R"({"name":null,"value":1})").problem);
}

TEST_F(JsonParserTest, ItemsThatAreNotObjects) {
  BadInput bad = Bad(R"([{"name":"m","value":1},"x"])");
  EXPECT_EQ(1, bad.item);
  EXPECT_EQ("", bad.field);
  EXPECT_EQ("want a JSON object, got a string", bad.problem);
  EXPECT_EQ("want a JSON object, got an array", Bad("[[]]").problem);
  EXPECT_EQ("want a JSON object, got null", Bad("[null]").problem);
  for (std::string_view body : {"42", "\"x\"", "null", "true"}) {
    BadInput top = Bad(body);
    EXPECT_EQ(-1, top.item) << body;
    EXPECT_THAT(top.problem, StartsWith("want a JSON object or an array of objects, got ")) << body;
  }
}

TEST_F(JsonParserTest, MalformedJson) {
  for (std::string_view body :
       {"[", "{", "[{", "{\"name\":}", "[{\"name\":\"m\",\"value\":1},]", "[{\"name\":\"m\",}]",
        "{\"name\" \"m\"}", "[{\"name\":\"m\",\"value\":1}"}) {
    BadInput bad = Bad(body);
    EXPECT_THAT(bad.problem, StartsWith("malformed JSON: ")) << body;
    EXPECT_LE(bad.item, 1) << body;  // -1, or the item the error stops in
  }
  // Broken second element: the error knows which item.
  BadInput second = Bad(R"([{"name":"m","value":1},{"name":"m","value":1,"host"}])");
  EXPECT_EQ(1, second.item);
  EXPECT_THAT(second.problem, StartsWith("malformed JSON: "));

  for (std::string_view body :
       {"[] x", "[] []", "[] ]", "[]]", R"({"name":"m","value":1} {"name":"m","value":1})"}) {
    BadInput trailing = Bad(body);
    EXPECT_EQ(-1, trailing.item) << body;
    EXPECT_THAT(trailing.problem, StartsWith("malformed JSON: ")) << body;
  }
  EXPECT_EQ("malformed JSON: trailing data after the first JSON value, at byte 3",
            Bad("[] []").problem);
}

// simdjson reports a root object or array followed by anything as "ended
// early"; the error must say what is wrong and where.
TEST_F(JsonParserTest, TrailingDataAfterTheFirstValueIsNamedWithItsPosition) {
  const std::string_view trailing = "malformed JSON: trailing data after the first JSON value";
  BadInput object = Bad(R"({"name":"cpu","value":1} xx)");
  EXPECT_EQ(-1, object.item);
  EXPECT_EQ(fmt::format("{}, at byte 25", trailing), object.problem);
  BadInput array = Bad(R"( [{"name":"cpu","value":1}]xx)");
  EXPECT_EQ(-1, array.item);
  EXPECT_EQ(fmt::format("{}, at byte 27", trailing), array.problem);
  // Brackets and escaped quotes inside strings do not end the value.
  EXPECT_EQ(fmt::format("{}, at byte 28", trailing),
            Bad(R"({"name":"c}]\"]","value":1} 7)").problem);
  BadInput line =
      Bad("{\"name\":\"a\",\"value\":1}\n{\"name\":\"cpu\",\"value\":1} xx\n", JsonFormat::kNdjson);
  EXPECT_EQ(1, line.item);
  EXPECT_EQ(fmt::format("{}, at byte 25 of the line", trailing), line.problem);
  // An unfinished or mismatched value is not trailing data.
  for (std::string_view body : {R"({"name":"cpu","value":1)", R"({"name":"cpu","value":1] x)",
                                R"({"name":"cpu}","value":1 x)"}) {
    BadInput bad = Bad(body);
    EXPECT_THAT(bad.problem, StartsWith("malformed JSON: ")) << body;
    EXPECT_THAT(bad.problem, Not(HasSubstr("trailing"))) << body;
  }
}

TEST_F(JsonParserTest, DeepNestingIsAnErrorNotACrash) {
  const std::string nested = std::string(100, '[') + std::string(100, ']');
  BadInput label = Bad(R"({"name":"m","value":1,"host":)" + nested + "}");
  EXPECT_EQ("host", label.field);
  EXPECT_EQ("label values must be strings, numbers or booleans, got an array", label.problem);

  // Far deeper than simdjson's depth limit: still one clear error.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  BadInput too_deep = Bad(R"({"name":"m","value":1,"host":)" + deep + "}");
  EXPECT_EQ(0, too_deep.item);
  EXPECT_EQ("host", too_deep.field);
  EXPECT_EQ("want a JSON object, got an array", Bad("[" + deep + "]").problem);
  EXPECT_THAT(Bad(std::string(100000, '[')).problem, StartsWith("malformed JSON: "));
}

TEST_F(JsonParserTest, UnicodeLabels) {
  Batch batch = Parse(
      R"({"name":"température","value":1,"ville":"Zürich","emoji":"😀","\u00e9":"\u00e9\ud83d\ude00"})");
  ASSERT_EQ(1u, batch.series.size());
  const model::Labels& labels = batch.series[0];
  EXPECT_EQ("température", labels.MetricName());
  EXPECT_EQ("Zürich", labels.Get("ville"));
  EXPECT_EQ("😀", labels.Get("emoji"));
  EXPECT_EQ("é😀", labels.Get("é"));
}

TEST_F(JsonParserTest, InvalidUtf8IsRejected) {
  BadInput raw = Bad("{\"name\":\"m\",\"value\":1,\"host\":\"a\xff\"}");
  EXPECT_EQ(-1, raw.item);
  EXPECT_THAT(raw.problem, StartsWith("malformed JSON: "));
  BadInput line =
      Bad("{\"name\":\"m\",\"value\":1}\n{\"name\":\"m\xc3\",\"value\":1}", JsonFormat::kNdjson);
  EXPECT_EQ(1, line.item);
  EXPECT_THAT(line.problem, StartsWith("malformed JSON: "));
  // A lone surrogate escape is not a character either.
  BadInput surrogate = Bad(R"({"name":"m","value":1,"host":"\ud800"})");
  EXPECT_EQ(0, surrogate.item);
  EXPECT_EQ("host", surrogate.field);
}

TEST_F(JsonParserTest, LimitsApply) {
  limits_.max_labels_per_series = 3;
  EXPECT_EQ(2u, Parse(R"({"name":"m","value":1,"a":"1","b":"2"})").series[0].size() - 1);
  BadInput many = Bad(R"({"name":"m","value":1,"a":"1","b":"2","c":"3"})");
  EXPECT_EQ(0, many.item);
  EXPECT_EQ("", many.field);
  EXPECT_EQ("too many labels: at most 3 allowed per series (name included)", many.problem);

  // A huge object stops at the limit instead of scanning all its keys.
  limits_ = Limits();
  std::string huge = R"({"name":"m","value":1)";
  for (int i = 0; i < 200000; ++i) huge += fmt::format(R"(,"k{}":"v")", i);
  huge += "}";
  EXPECT_THAT(Bad(huge).problem, HasSubstr("too many labels: at most 64 allowed"));

  limits_ = Limits();
  limits_.max_label_value_bytes = 4;
  BadInput long_value = Bad(R"({"name":"m","value":1,"host":"abcde"})");
  EXPECT_EQ("host", long_value.field);
  EXPECT_EQ("label value is 5 bytes, at most 4 allowed", long_value.problem);
  BadInput long_name = Bad(R"({"name":"metric","value":1})");
  EXPECT_EQ("name", long_name.field);
  EXPECT_EQ("metric name is 6 bytes, at most 4 allowed", long_name.problem);

  limits_ = Limits();
  limits_.max_label_name_bytes = 3;
  BadInput long_label = Bad(R"({"name":"m","value":1,"host":"a"})");
  EXPECT_EQ("host", long_label.field);
  EXPECT_EQ("label name is 4 bytes, at most 3 allowed", long_label.problem);
}

TEST_F(JsonParserTest, WholeBatchFailsOnOneBadItem) {
  std::string body = "[";
  for (int i = 0; i < 1000; ++i) body += R"({"name":"m","value":1},)";
  body += R"({"name":"m","value":"x"}])";
  EXPECT_EQ(1000, Bad(body).item);
}

}  // namespace
}  // namespace espy::ingest
