#include "ingest/influx_parser.h"

#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ingest/bad_input.h"

namespace espy::ingest {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kNow = 1'700'000'000'000;

// One sample rendered as `series@ts=value`, for compact expectations.
std::vector<std::string> Render(const Batch& batch) {
  std::vector<std::string> out;
  for (const model::BatchSample& s : batch.samples) {
    out.push_back(fmt::format("{}@{}={}", batch.series[s.series].ToString(), s.ts, s.value));
  }
  return out;
}

std::vector<std::string> Parse(std::string_view body,
                               InfluxPrecision precision = InfluxPrecision::kNanoseconds) {
  absl::StatusOr<Batch> batch = ParseInfluxLines(body, precision, kNow, Limits{});
  EXPECT_TRUE(batch.ok()) << batch.status();
  if (!batch.ok()) return {};
  return Render(*batch);
}

// The BadInput of a body that must fail.
BadInput ParseError(std::string_view body, const Limits& limits = Limits{}) {
  absl::StatusOr<Batch> batch = ParseInfluxLines(body, InfluxPrecision::kNanoseconds, kNow, limits);
  EXPECT_FALSE(batch.ok()) << "parsed: " << body;
  if (batch.ok()) return {};
  std::optional<BadInput> bad = GetBadInput(batch.status());
  EXPECT_TRUE(bad.has_value()) << batch.status();
  return bad.value_or(BadInput{});
}

TEST(InfluxParserTest, OneSamplePerFieldNamedMeasurementUnderscoreField) {
  EXPECT_THAT(Parse("cpu,host=a,region=eu usage=1.5,idle=3i 1700000000000000000\n"),
              ElementsAre("cpu_usage{host=\"a\",region=\"eu\"}@1700000000000=1.5",
                          "cpu_idle{host=\"a\",region=\"eu\"}@1700000000000=3"));
}

TEST(InfluxParserTest, FieldNamedValueKeepsTheMeasurementName) {
  EXPECT_THAT(Parse("temp,room=k value=21.5 1700000000000000000"),
              ElementsAre("temp{room=\"k\"}@1700000000000=21.5"));
}

TEST(InfluxParserTest, NoTagsAndNoTimestamp) {
  EXPECT_THAT(Parse("load value=0.5"), ElementsAre("load{}@1700000000000=0.5"));
}

TEST(InfluxParserTest, FloatFields) {
  EXPECT_THAT(Parse("m a=1,b=-1.5,c=1e3,d=.5,e=2.,f=-2E-2,g=1.5e+2 0"),
              ElementsAre("m_a{}@0=1", "m_b{}@0=-1.5", "m_c{}@0=1000", "m_d{}@0=0.5", "m_e{}@0=2",
                          "m_f{}@0=-0.02", "m_g{}@0=150"));
}

TEST(InfluxParserTest, IntegerAndUnsignedFields) {
  EXPECT_THAT(Parse("m a=3i,b=-42i,c=9223372036854775807i,d=7u,e=18446744073709551615u 0"),
              ElementsAre("m_a{}@0=3", "m_b{}@0=-42", "m_c{}@0=9.223372036854776e+18", "m_d{}@0=7",
                          "m_e{}@0=1.8446744073709552e+19"));
}

TEST(InfluxParserTest, BooleanFieldsInEverySpelling) {
  EXPECT_THAT(Parse("m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 0"),
              ElementsAre("m_a{}@0=1", "m_b{}@0=1", "m_c{}@0=1", "m_d{}@0=1", "m_e{}@0=1",
                          "m_f{}@0=0", "m_g{}@0=0", "m_h{}@0=0", "m_i{}@0=0", "m_j{}@0=0"));
}

TEST(InfluxParserTest, StringFieldFailsTheBatchNamingTheField) {
  BadInput bad = ParseError("m a=1 0\nm ok=1,msg=\"hello, world\" 0\n");
  EXPECT_EQ(bad.item, 1);
  EXPECT_EQ(bad.field, "msg");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("string field values are not supported"));
}

TEST(InfluxParserTest, BadFieldValues) {
  for (std::string_view value :
       {"abc", "1.2.3", "inf", "nan", "-inf", "1x", "i", "u", "--1", "1i2", "tru", "+1"}) {
    BadInput bad = ParseError(fmt::format("m f={} 0", value));
    EXPECT_EQ(bad.item, 0) << value;
    EXPECT_EQ(bad.field, "f") << value;
    EXPECT_THAT(bad.problem, ::testing::HasSubstr(fmt::format("\"{}\"", value))) << value;
  }
}

TEST(InfluxParserTest, IntegerOutOfRange) {
  BadInput bad = ParseError("m f=9223372036854775808i 0");
  EXPECT_EQ(bad.field, "f");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("int64 range"));
  bad = ParseError("m f=-1u 0");
  EXPECT_EQ(bad.field, "f");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("unsigned"));
}

TEST(InfluxParserTest, EmptyFieldValue) {
  BadInput bad = ParseError("m f= 0");
  EXPECT_EQ(bad.field, "f");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("want a value"));
}

TEST(InfluxParserTest, MeasurementEscapesCommaAndSpace) {
  EXPECT_THAT(Parse("my\\ cpu\\,x,host=a value=1 0"), ElementsAre("my cpu,x{host=\"a\"}@0=1"));
  // '=' needs no escape in a measurement, and "\=" stays as written.
  EXPECT_THAT(Parse("a=b\\=c value=1 0"), ElementsAre("a=b\\=c{}@0=1"));
}

TEST(InfluxParserTest, TagKeysAndValuesEscapeCommaEqualsSpace) {
  Batch batch = *ParseInfluxLines("m,k\\ 1\\,\\==v\\ 1\\,2\\=3 value=1 0",
                                  InfluxPrecision::kNanoseconds, kNow, Limits{});
  ASSERT_EQ(batch.series.size(), 1u);
  EXPECT_EQ(batch.series[0].Get("k 1,="), "v 1,2=3");
}

TEST(InfluxParserTest, FieldKeysEscapeCommaEqualsSpace) {
  EXPECT_THAT(Parse("m f\\ 1\\,\\=x=2 0"), ElementsAre("m_f 1,=x{}@0=2"));
}

TEST(InfluxParserTest, BackslashBeforeOtherCharactersIsKept) {
  Batch batch = *ParseInfluxLines("m,path=c:\\dir\\file value=1 0", InfluxPrecision::kNanoseconds,
                                  kNow, Limits{});
  ASSERT_EQ(batch.series.size(), 1u);
  EXPECT_EQ(batch.series[0].Get("path"), "c:\\dir\\file");
}

TEST(InfluxParserTest, TimestampPrecisions) {
  EXPECT_THAT(Parse("m value=1 1700000000123456789", InfluxPrecision::kNanoseconds),
              ElementsAre("m{}@1700000000123=1"));
  EXPECT_THAT(Parse("m value=1 1700000000123456", InfluxPrecision::kMicroseconds),
              ElementsAre("m{}@1700000000123=1"));
  EXPECT_THAT(Parse("m value=1 1700000000123", InfluxPrecision::kMilliseconds),
              ElementsAre("m{}@1700000000123=1"));
  EXPECT_THAT(Parse("m value=1 1700000000", InfluxPrecision::kSeconds),
              ElementsAre("m{}@1700000000000=1"));
  EXPECT_THAT(Parse("m value=1 28333333", InfluxPrecision::kMinutes),
              ElementsAre("m{}@1699999980000=1"));
  EXPECT_THAT(Parse("m value=1 472222", InfluxPrecision::kHours),
              ElementsAre("m{}@1699999200000=1"));
}

TEST(InfluxParserTest, SubMillisecondTimestampsRoundTowardThePast) {
  EXPECT_THAT(Parse("m value=1 -1"), ElementsAre("m{}@-1=1"));
  EXPECT_THAT(Parse("m value=1 -1000000"), ElementsAre("m{}@-1=1"));
  EXPECT_THAT(Parse("m value=1 999999"), ElementsAre("m{}@0=1"));
  EXPECT_THAT(Parse("m value=1 -1", InfluxPrecision::kMicroseconds), ElementsAre("m{}@-1=1"));
}

TEST(InfluxParserTest, MissingTimestampMeansNow) {
  EXPECT_THAT(Parse("m value=1\nm value=2   \n"),
              ElementsAre("m{}@1700000000000=1", "m{}@1700000000000=2"));
}

TEST(InfluxParserTest, TimestampErrors) {
  BadInput bad = ParseError("m value=1 12abc");
  EXPECT_EQ(bad.field, "timestamp");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("\"12abc\""));
  bad = ParseError("m value=1 99999999999999999999");
  EXPECT_EQ(bad.field, "timestamp");

  absl::StatusOr<Batch> batch =
      ParseInfluxLines("m value=1 9223372036854776", InfluxPrecision::kSeconds, kNow, Limits{});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(GetBadInput(batch.status())->field, "timestamp");
  EXPECT_THAT(GetBadInput(batch.status())->problem, ::testing::HasSubstr("out of range"));

  bad = ParseError("m value=1 1 2");
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("unexpected text after the timestamp"));
}

TEST(InfluxParserTest, FutureTimestampIsRejectedByTheLimit) {
  Limits limits;
  limits.max_future_millis = 1000;
  BadInput bad = ParseError(fmt::format("m value=1 {}", (kNow + 1001) * 1'000'000), limits);
  EXPECT_EQ(bad.item, 0);
  EXPECT_EQ(bad.field, "ts");
}

TEST(InfluxParserTest, PrecisionParameter) {
  EXPECT_EQ(*ParseInfluxPrecision(""), InfluxPrecision::kNanoseconds);
  EXPECT_EQ(*ParseInfluxPrecision("ns"), InfluxPrecision::kNanoseconds);
  EXPECT_EQ(*ParseInfluxPrecision("n"), InfluxPrecision::kNanoseconds);
  EXPECT_EQ(*ParseInfluxPrecision("us"), InfluxPrecision::kMicroseconds);
  EXPECT_EQ(*ParseInfluxPrecision("u"), InfluxPrecision::kMicroseconds);
  EXPECT_EQ(*ParseInfluxPrecision("ms"), InfluxPrecision::kMilliseconds);
  EXPECT_EQ(*ParseInfluxPrecision("s"), InfluxPrecision::kSeconds);
  EXPECT_EQ(*ParseInfluxPrecision("m"), InfluxPrecision::kMinutes);
  EXPECT_EQ(*ParseInfluxPrecision("h"), InfluxPrecision::kHours);
  absl::StatusOr<InfluxPrecision> bad = ParseInfluxPrecision("sec");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(GetBadInput(bad.status())->field, "precision");
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("want one of ns, n, us, u, ms, s"));
}

TEST(InfluxParserTest, CommentsBlankLinesCrlfAndLeadingSpaceAreSkipped) {
  EXPECT_THAT(Parse("# header\r\n\r\n  m value=1 0\r\n\n   # indented comment\nm value=2 0\r\n"),
              ElementsAre("m{}@0=1", "m{}@0=2"));
}

TEST(InfluxParserTest, EmptyBodyIsAnEmptyBatch) {
  EXPECT_THAT(Parse(""), ElementsAre());
  EXPECT_THAT(Parse("\n\n# only comments\n"), ElementsAre());
}

TEST(InfluxParserTest, ErrorsNamePhysicalLineIndex) {
  BadInput bad = ParseError("# comment\n\nm value=1 0\nm value=x 0\n");
  EXPECT_EQ(bad.item, 3);
  EXPECT_EQ(bad.field, "value");
}

TEST(InfluxParserTest, StructuralErrors) {
  struct Case {
    std::string_view body;
    std::string_view field;
    std::string_view problem;
  };
  for (const Case& c : std::vector<Case>{
           {"m", "", "missing field set"},
           {"m ", "", "missing field set"},
           {"m,host=a", "", "missing field set"},
           {",host=a value=1", "measurement", "missing measurement name"},
           {"m,host value=1", "host", "tag has no value"},
           {"m,host=a,=b value=1", "", "empty tag key"},
           {"m,host= value=1", "host", "empty tag value"},
           {"m,host=a=b value=1", "host", "unescaped '='"},
           {"m,host=a,host=b value=1", "host", "tag appears twice"},
           {"m,__name__=x value=1", "__name__", "reserved"},
           {"m f 1", "f", "field has no value"},
           {"m =1", "", "empty field key"},
           {"m a=1,a=2", "a", "field appears twice"},
           {"m a=1, 0", "", "empty field key"},
       }) {
    BadInput bad = ParseError(c.body);
    EXPECT_EQ(bad.item, 0) << c.body;
    EXPECT_EQ(bad.field, c.field) << c.body;
    EXPECT_THAT(bad.problem, ::testing::HasSubstr(std::string(c.problem))) << c.body;
  }
}

TEST(InfluxParserTest, EscapedKeysAreUnescapedInErrors) {
  BadInput bad = ParseError("m a\\ b=zz 0");
  EXPECT_EQ(bad.field, "a b");
}

TEST(InfluxParserTest, LabelLimitsApply) {
  Limits limits;
  limits.max_labels_per_series = 2;
  BadInput bad = ParseError("m value=1 0\nm,a=1,b=2 value=1 0", limits);
  EXPECT_EQ(bad.item, 1);
  EXPECT_THAT(bad.problem, ::testing::HasSubstr("at most 2"));
}

TEST(InfluxParserTest, RepeatedSeriesShareOneTableEntry) {
  absl::StatusOr<Batch> batch =
      ParseInfluxLines("cpu,host=a user=1,sys=2 1000000\ncpu,host=a user=3,sys=4 2000000\n",
                       InfluxPrecision::kNanoseconds, kNow, Limits{});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->series.size(), 2u);
  EXPECT_THAT(Render(*batch), ElementsAre("cpu_user{host=\"a\"}@1=1", "cpu_sys{host=\"a\"}@1=2",
                                          "cpu_user{host=\"a\"}@2=3", "cpu_sys{host=\"a\"}@2=4"));
}

TEST(InfluxParserTest, OneBadLineFailsTheWholeBatch) {
  absl::StatusOr<Batch> batch = ParseInfluxLines("m value=1 0\nm value=oops 0\nm value=3 0",
                                                 InfluxPrecision::kNanoseconds, kNow, Limits{});
  EXPECT_FALSE(batch.ok());
}

}  // namespace
}  // namespace espy::ingest
