#include "model/labels.h"

#include "gtest/gtest.h"
#include "model/matcher.h"
#include "model/names.h"

namespace espy::model {
namespace {

TEST(LabelsTest, SortsByNameAndFormats) {
  Labels l({{"region", "eu"}, {"__name__", "cpu"}, {"host", "a\"b"}});
  EXPECT_EQ("__name__", l.items()[0].name);
  EXPECT_EQ("cpu", l.MetricName());
  EXPECT_EQ("eu", l.Get("region"));
  EXPECT_EQ("", l.Get("zone"));
  EXPECT_EQ(R"(cpu{host="a\"b",region="eu"})", l.ToString());
}

TEST(LabelsTest, QuotesNamesPromqlCannotWriteBare) {
  Labels l({{"__name__", "cpu usage%"}, {"my-label", "x"}, {"host", "a"}});
  EXPECT_EQ(R"({"cpu usage%",host="a","my-label"="x"})", ToPromqlSelector(l));
  EXPECT_EQ(R"(cpu:rate{"a\"b"="1"})",
            ToPromqlSelector(Labels({{"__name__", "cpu:rate"}, {"a\"b", "1"}})));
  EXPECT_EQ(R"({"1x"="1"})", ToPromqlSelector(Labels(std::vector<Label>{{"1x", "1"}})));
  // Legacy names print as ToString() prints them.
  Labels legacy({{"__name__", "cpu"}, {"host", "a\"b\n"}});
  EXPECT_EQ(legacy.ToString(), ToPromqlSelector(legacy));
  EXPECT_TRUE(IsLegacyMetricName("a:b_1"));
  EXPECT_FALSE(IsLegacyLabelName("a:b"));
  EXPECT_FALSE(IsLegacyLabelName(""));
  EXPECT_FALSE(IsLegacyMetricName("1a"));
  EXPECT_EQ("job", FormatLabelName("job"));
  EXPECT_EQ(R"("my-label")", FormatLabelName("my-label"));
  EXPECT_EQ(R"("my-label"!="x")", Matcher::Make(MatchType::kNotEqual, "my-label", "x")->ToString());
}

TEST(LabelsTest, EqualSetsHashEqual) {
  Labels a({{"__name__", "cpu"}, {"host", "a"}});
  Labels b({{"host", "a"}, {"__name__", "cpu"}});
  EXPECT_EQ(a, b);
  EXPECT_EQ(absl::HashOf(a), absl::HashOf(b));
  EXPECT_NE(absl::HashOf(a), absl::HashOf(Labels({{"__name__", "cpu"}, {"host", "b"}})));
}

TEST(MatcherTest, AllFourTypes) {
  auto eq = *Matcher::Make(MatchType::kEqual, "host", "a");
  auto ne = *Matcher::Make(MatchType::kNotEqual, "host", "a");
  auto re = *Matcher::Make(MatchType::kRegexMatch, "host", "web.*");
  auto nre = *Matcher::Make(MatchType::kRegexNoMatch, "host", "web.*");
  EXPECT_TRUE(eq.Matches("a"));
  EXPECT_FALSE(eq.Matches("ab"));
  EXPECT_TRUE(ne.Matches("b"));
  EXPECT_TRUE(re.Matches("web-1"));
  EXPECT_FALSE(re.Matches("xweb-1"));  // anchored
  EXPECT_TRUE(nre.Matches("db-1"));
  EXPECT_TRUE(ne.MatchesEmpty());
  EXPECT_EQ(R"(host=~"web.*")", re.ToString());
}

TEST(MatcherTest, BadRegexNamesLabel) {
  auto m = Matcher::Make(MatchType::kRegexMatch, "host", "(");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(std::string::npos, m.status().message().find("host"));
}

}  // namespace
}  // namespace espy::model
