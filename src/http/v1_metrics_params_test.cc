#include "http/v1_metrics_params.h"

#include <string>

#include "boost/url/parse.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace espy::http {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

// `query` as it comes on the wire (percent-encoded).
absl::StatusOr<V1MetricsParams> Parse(const std::string& query) {
  const std::string target = "/v1/metrics?" + query;  // the url_view points into it
  auto url = boost::urls::parse_origin_form(target);
  if (!url.has_value()) return absl::InvalidArgumentError("test: bad target " + target);
  return ParseV1MetricsParams(url->params(), kNow, 100, 1000);
}

std::string Error(const std::string& query) {
  absl::StatusOr<V1MetricsParams> p = Parse(query);
  EXPECT_FALSE(p.ok()) << query;
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, p.status().code()) << query;
  return std::string(p.status().message());
}

std::vector<std::string> Matchers(const V1MetricsParams& p) {
  std::vector<std::string> out;
  for (const model::Matcher& m : p.page.matchers) out.push_back(m.ToString());
  return out;
}

TEST(ParseTimeParamTest, RelativeToNow) {
  EXPECT_EQ(kNow, *ParseTimeParam("sts", "now", kNow));
  EXPECT_EQ(kNow - 60 * kMinute, *ParseTimeParam("sts", "now-1h", kNow));
  EXPECT_EQ(kNow + 30'000, *ParseTimeParam("sts", "now+30s", kNow));
  EXPECT_EQ(kNow - 15 * kMinute, *ParseTimeParam("sts", "-15m", kNow));
  EXPECT_EQ(kNow - 90 * kMinute, *ParseTimeParam("ets", "now-1h30m", kNow));
  EXPECT_EQ(kNow - 7 * 24 * 60 * kMinute, *ParseTimeParam("ets", "-1w", kNow));
  EXPECT_EQ(kNow - 500, *ParseTimeParam("ets", "-500ms", kNow));
}

TEST(ParseTimeParamTest, AbsoluteTimesStillParse) {
  EXPECT_EQ(1451642400000, *ParseTimeParam("sts", "2016-01-01T10:00:00Z", kNow));
  EXPECT_EQ(1451642400000, *ParseTimeParam("sts", "1451642400", kNow));
  EXPECT_EQ(-1500, *ParseTimeParam("sts", "-1.5", kNow));  // epoch seconds, not relative
}

TEST(ParseTimeParamTest, BadTimesNameTheParameterAndTheForms) {
  for (const char* bad : {"now-", "now-1x", "now1h", "now*2", "yesterday", "-m"}) {
    absl::StatusOr<int64_t> t = ParseTimeParam("sts", bad, kNow);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr("parameter \"sts\": want ISO-8601")) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr("now-1h, -15m")) << bad;
    EXPECT_THAT(t.status().message(), HasSubstr(std::string("got \"") + bad + "\"")) << bad;
  }
}

TEST(ParseV1MetricsParamsTest, ReservedParamsAndLabelFilters) {
  auto p = Parse("name=cpu&host=a&sts=now-1h&ets=now&limit=5000");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((std::vector<std::string>{"__name__=\"cpu\"", "host=\"a\""}), Matchers(*p));
  EXPECT_EQ(kNow - 60 * kMinute, p->page.mint);
  EXPECT_EQ(kNow, p->page.maxt);
  EXPECT_EQ(1000u, p->page.limit);  // lowered to the cap
  EXPECT_EQ(std::vector<std::string>{"host"}, p->label_filters);
}

TEST(ParseV1MetricsParamsTest, MatchTakesRegexAndNegativeMatchersAndRepeats) {
  auto p = Parse(
      "name=cpu&match=%7Bhost%3D~%22web.*%22%2Cdc!%3D%22x%22%7D&match=%7Bjob!~%22a%7Cb%22%7D");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((std::vector<std::string>{"__name__=\"cpu\"", "host=~\"web.*\"", "dc!=\"x\"",
                                      "job!~\"a|b\""}),
            Matchers(*p));
  EXPECT_TRUE(p->label_filters.empty());  // match names labels on purpose: not checked
  // A metric name in the selector is a matcher too.
  p = Parse("match=cpu%7Bhost%3D%22a%22%7D");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(Matchers(*p), UnorderedElementsAre("__name__=\"cpu\"", "host=\"a\""));
}

TEST(ParseV1MetricsParamsTest, BadMatchNamesTheParameter) {
  EXPECT_THAT(Error("match=%7Bhost%3D~%22web%22"), HasSubstr("parameter \"match\": want a series "
                                                             "selector such as {host=~\"web.*\"}"));
  EXPECT_THAT(Error("match=host%3D~web.*"), HasSubstr("parameter \"match\""));
}

TEST(ParseV1MetricsParamsTest, OtherErrors) {
  EXPECT_EQ("parameter \"host\" given more than once", Error("host=a&host=b"));
  EXPECT_EQ("parameter \"name\": must not be empty", Error("name="));
  EXPECT_EQ("parameter \"host\": label filter needs a value", Error("host="));
  EXPECT_EQ("parameters \"sts\" and \"ets\": sts is after ets", Error("sts=now&ets=-1h"));
  EXPECT_THAT(Error("limit=0"), HasSubstr("parameter \"limit\""));
}

TEST(CheckLabelFiltersTest, AnUnknownLabelNamesTheParameterAndTheReservedOnes) {
  auto has = [](std::string_view name) { return name == "host" || name == "__name__"; };
  EXPECT_TRUE(CheckLabelFilters({"host"}, has).ok());
  EXPECT_TRUE(CheckLabelFilters({}, has).ok());
  absl::Status s = CheckLabelFilters({"host", "nme"}, has);
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, s.code());
  EXPECT_EQ(
      "parameter \"nme\": no series has a label \"nme\"; parameters other than name, sts, ets, "
      "limit, cursor, step, agg, match filter by label (regex and negative filters: "
      "match={label=~\"re\"})",
      s.message());
}

}  // namespace
}  // namespace espy::http
