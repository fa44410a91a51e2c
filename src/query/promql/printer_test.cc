#include "query/promql/printer.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <random>

#include "gtest/gtest.h"
#include "query/promql/parser.h"

namespace espy::query::promql {
namespace {

TEST(FormatDurationTest, UsesLargestExactUnits) {
  EXPECT_EQ("0s", FormatDuration(0));
  EXPECT_EQ("1ms", FormatDuration(1));
  EXPECT_EQ("1s500ms", FormatDuration(1500));
  EXPECT_EQ("5m", FormatDuration(5 * 60 * 1000));
  EXPECT_EQ("1h30m", FormatDuration(90 * 60 * 1000));
  EXPECT_EQ("1d", FormatDuration(86400LL * 1000));
  EXPECT_EQ("1w", FormatDuration(7 * 86400LL * 1000));
  EXPECT_EQ("13d", FormatDuration(13 * 86400LL * 1000));  // weeks only when exact
  EXPECT_EQ("2w", FormatDuration(14 * 86400LL * 1000));
  EXPECT_EQ("1y", FormatDuration(365 * 86400LL * 1000));
  EXPECT_EQ("366d", FormatDuration(366 * 86400LL * 1000));
  EXPECT_EQ("-5m", FormatDuration(-5 * 60 * 1000));
}

TEST(FormatDurationTest, RoundTripsThroughParseDuration) {
  for (int64_t ms : {1LL, 999LL, 61001LL, 3600000LL, 90061001LL, 31536000000LL, 604800000LL}) {
    auto back = ParseDuration(FormatDuration(ms));
    ASSERT_TRUE(back.ok()) << FormatDuration(ms);
    EXPECT_EQ(ms, *back);
  }
}

TEST(FormatNumberTest, FastPathMatchesTheShortestFixedForm) {
  // Below 1e15, the shortest fixed form that reads back (std::to_chars) is
  // Go's 'f', -1 form; the fast path for few decimals must give the same.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> mag(-12, 14);
  std::uniform_int_distribution<int> decimals(0, 9);
  for (int i = 0; i < 200'000; ++i) {
    double v = std::pow(10.0, mag(rng)) * (rng() % 2 ? 1 : -1);
    if (i % 2 == 0) {  // a value with few decimals, as counters and gauges have
      const double scale = std::pow(10.0, decimals(rng));
      v = std::round(v * scale) / scale;
    }
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
    ASSERT_EQ(std::string(buf, res.ptr), FormatNumber(v)) << i;
  }
}

TEST(FormatNumberTest, GoShortestFixed) {
  EXPECT_EQ("1", FormatNumber(1));
  EXPECT_EQ("-1.5", FormatNumber(-1.5));
  EXPECT_EQ("0.1", FormatNumber(0.1));
  EXPECT_EQ("10000000000", FormatNumber(1e10));
  EXPECT_EQ("0.000001", FormatNumber(1e-6));
  EXPECT_EQ("0.000123", FormatNumber(1.23e-4));
  EXPECT_EQ("123.456", FormatNumber(123.456));
  EXPECT_EQ("-0", FormatNumber(-0.0));
  EXPECT_EQ("1" + std::string(75, '0'), FormatNumber(1e75));
  EXPECT_EQ("12300000000000000000000", FormatNumber(1.23e22));
  EXPECT_EQ("+Inf", FormatNumber(std::numeric_limits<double>::infinity()));
  EXPECT_EQ("-Inf", FormatNumber(-std::numeric_limits<double>::infinity()));
  EXPECT_EQ("NaN", FormatNumber(std::numeric_limits<double>::quiet_NaN()));
}

TEST(PrinterTest, FormatQueryExamples) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {
           Case{"sum(rate(http_requests_total{job=\"api\"}[5m])) by (job)",
                "sum by (job) (rate(http_requests_total{job=\"api\"}[5m]))"},
           Case{"foo{c='3',a=\"1\",b=`2`}", "foo{a=\"1\",b=\"2\",c=\"3\"}"},
           Case{"a+on(x)group_left(y)b", "a + on (x) group_left (y) b"},
           Case{"  topk ( 3 , foo )  ", "topk(3, foo)"},
           Case{"foo{a=\"new\\nline\"}", "foo{a=\"new\\nline\"}"},
           Case{"x[1h:]offset 1d@ 1.5", "x[1h:] @ 1.500 offset 1d"},
           Case{"1 > bool 2", "1 > bool 2"},
           Case{"-(-foo)", "-(-foo)"},
       }) {
    auto e = ParseExpr(c.in);
    ASSERT_TRUE(e.ok()) << c.in << ": " << e.status();
    EXPECT_EQ(c.out, ToString(**e)) << c.in;
  }
}

}  // namespace
}  // namespace espy::query::promql
