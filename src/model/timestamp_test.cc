#include "model/timestamp.h"

#include <cmath>
#include <limits>
#include <random>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace espy::model {
namespace {

using ::testing::HasSubstr;

constexpr int64_t k2016 = 1451606400000;  // 2016-01-01T00:00:00Z
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kMinMillis = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxMillis = 253402300799999;  // 9999-12-31T23:59:59.999Z

int64_t Parse(std::string_view text) {
  absl::StatusOr<int64_t> got = ParseTimestamp(text);
  EXPECT_TRUE(got.ok()) << text << ": " << got.status();
  return got.ok() ? *got : std::numeric_limits<int64_t>::min();
}

std::string ParseError(std::string_view text) {
  absl::StatusOr<int64_t> got = ParseTimestamp(text);
  EXPECT_FALSE(got.ok()) << text << " parsed as " << (got.ok() ? *got : 0);
  if (got.ok()) return "";
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, got.status().code());
  return std::string(got.status().message());
}

TEST(ParseTimestampTest, DateAloneIsMidnightUtc) {
  EXPECT_EQ(k2016, Parse("2016-01-01"));
  EXPECT_EQ(0, Parse("1970-01-01"));
  EXPECT_EQ(kMinMillis, Parse("0000-01-01"));
}

TEST(ParseTimestampTest, DateTimeSeparatorsAndZone) {
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01T10:00:00Z"));
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01t10:00:00z"));
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01 10:00:00Z"));
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01T10:00:00"));  // no offset: UTC
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01T10:00Z"));    // seconds optional
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01T10:00"));
  EXPECT_EQ(k2016 + 10 * kHour + 59 * 1000, Parse("2016-01-01T10:00:59Z"));
  EXPECT_EQ(k2016 + 23 * kHour + 59 * 60000, Parse("2016-01-01T23:59Z"));
}

TEST(ParseTimestampTest, Offsets) {
  EXPECT_EQ(k2016 + 8 * kHour, Parse("2016-01-01T10:00:00+02:00"));
  EXPECT_EQ(k2016 + 8 * kHour, Parse("2016-01-01T10:00:00+0200"));
  EXPECT_EQ(k2016 + 8 * kHour, Parse("2016-01-01T10:00+02:00"));
  EXPECT_EQ(k2016 + 15 * kHour + 30 * 60000, Parse("2016-01-01T10:00:00-05:30"));
  EXPECT_EQ(k2016 + 15 * kHour + 30 * 60000, Parse("2016-01-01T10:00:00-0530"));
  EXPECT_EQ(k2016 + 10 * kHour, Parse("2016-01-01T10:00:00+00:00"));
  // An offset may move the instant into the previous day or year.
  EXPECT_EQ(k2016 - kHour, Parse("2016-01-01T00:00:00+01:00"));
  EXPECT_EQ(k2016 + 10 * kHour + 500, Parse("2016-01-01T12:00:00.5+02:00"));
}

TEST(ParseTimestampTest, FractionsOfAnyLengthTruncateToMillis) {
  EXPECT_EQ(k2016 + 100, Parse("2016-01-01T00:00:00.1Z"));
  EXPECT_EQ(k2016 + 120, Parse("2016-01-01T00:00:00.12Z"));
  EXPECT_EQ(k2016 + 123, Parse("2016-01-01T00:00:00.123Z"));
  EXPECT_EQ(k2016 + 123, Parse("2016-01-01T00:00:00.123456+00:00"));
  EXPECT_EQ(k2016 + 999, Parse("2016-01-01T00:00:00.999999999999999999999Z"));
  EXPECT_EQ(k2016 + 8 * kHour + 123, Parse("2016-01-01T10:00:00.123456+02:00"));
  // Before 1970 the fraction still counts forward from the whole second.
  EXPECT_EQ(-1000 + 999, Parse("1969-12-31T23:59:59.9999Z"));
}

TEST(ParseTimestampTest, EpochSeconds) {
  EXPECT_EQ(k2016, Parse("1451606400"));
  EXPECT_EQ(k2016 + 250, Parse("1451606400.25"));
  EXPECT_EQ(k2016 + 1, Parse("1451606400.001"));
  EXPECT_EQ(k2016 + 1, Parse("1451606400.0019"));
  EXPECT_EQ(0, Parse("0"));
  EXPECT_EQ(0, Parse("-0"));
  EXPECT_EQ(2016 * 1000, Parse("2016"));  // four digits without a dash: seconds
  EXPECT_EQ(-1500, Parse("-1.5"));
  EXPECT_EQ(-1001, Parse("-1.0001"));  // floor, not toward zero
  EXPECT_EQ(-1, Parse("-0.0000001"));
  EXPECT_EQ(-1000, Parse("-1.000000"));
  EXPECT_EQ(kMaxMillis, Parse("253402300799.999"));
  EXPECT_EQ(kMinMillis, Parse("-62167219200"));
  EXPECT_EQ(k2016, Parse("0000001451606400"));
}

TEST(ParseTimestampTest, LeapYears) {
  EXPECT_EQ(Parse("2016-03-01") - 86400000, Parse("2016-02-29"));
  EXPECT_EQ(Parse("2000-03-01") - 86400000, Parse("2000-02-29"));
  EXPECT_EQ(Parse("0000-03-01") - 86400000, Parse("0000-02-29"));  // year 0 is a leap year
  EXPECT_THAT(ParseError("2015-02-29"), HasSubstr("day 29 out of range 01-28"));
  EXPECT_THAT(ParseError("1900-02-29"), HasSubstr("day 29 out of range 01-28"));
  EXPECT_THAT(ParseError("2016-02-30"), HasSubstr("day 30 out of range 01-29"));
}

TEST(ParseTimestampTest, RangeErrorsNameTheField) {
  EXPECT_EQ(R"(month 13 out of range 01-12 in "2016-13-01")", ParseError("2016-13-01"));
  EXPECT_THAT(ParseError("2016-00-01"), HasSubstr("month 00 out of range"));
  EXPECT_THAT(ParseError("2016-01-00"), HasSubstr("day 00 out of range 01-31"));
  EXPECT_THAT(ParseError("2016-04-31"), HasSubstr("day 31 out of range 01-30"));
  EXPECT_THAT(ParseError("2016-01-01T24:00:00Z"), HasSubstr("hour 24 out of range 00-23"));
  EXPECT_THAT(ParseError("2016-01-01T10:60:00Z"), HasSubstr("minute 60 out of range 00-59"));
  EXPECT_THAT(ParseError("2016-01-01T10:00:60Z"), HasSubstr("second 60 out of range 00-59"));
  EXPECT_THAT(ParseError("2016-01-01T10:00:00+24:00"),
              HasSubstr("UTC offset hour 24 out of range"));
  EXPECT_THAT(ParseError("2016-01-01T10:00:00+02:60"),
              HasSubstr("UTC offset minute 60 out of range"));
}

TEST(ParseTimestampTest, ShapeErrorsSayWhatIsWanted) {
  EXPECT_EQ(R"(want ISO-8601 (2016-01-01T10:00:00Z) or epoch seconds, got "yesterday")",
            ParseError("yesterday"));
  EXPECT_EQ(R"(want ISO-8601 (2016-01-01T10:00:00Z) or epoch seconds, got "")", ParseError(""));
  for (std::string_view bad : {
           "2016-01-01T10:00:00Zjunk",    // trailing garbage
           "2016-01-01T10:00:00+02:00x",  //
           "2016-01-01 ",                 //
           "2016-01-01T",                 //
           "2016-01-01T10",               //
           "2016-01-01T10:0",             //
           "2016-01-01T10:00:0",          //
           "2016-01-01T10:00:00.",        // fraction without digits
           "2016-01-01T10:00:00,5Z",      //
           "2016-01-01T10:00:00+2",       // bad offsets
           "2016-01-01T10:00:00+02",      //
           "2016-01-01T10:00:00+02:0",    //
           "2016-01-01T10:00:00+020",     //
           "2016-01-01T10:00:00+02:00:00",
           "2016-01-01T10:00:00 +02:00",  //
           "2016-1-01",                   //
           "2016-01-1",                   //
           "16-01-01",                    //
           "2016/01/01",                  //
           " 1451606400",                 // whitespace is not trimmed
           "1451606400 ",                 //
           "+1451606400",                 //
           "1451606400.",                 //
           ".5",                          //
           "1e9",                         //
           "0x10",                        //
           "--1",                         //
           "-",                           //
           "NaN",                         //
       }) {
    EXPECT_THAT(ParseError(bad), HasSubstr("want ISO-8601")) << bad;
  }
  // Digits without dashes are epoch seconds, not a basic-format date.
  EXPECT_EQ(20160101 * int64_t{1000}, Parse("20160101"));
}

TEST(ParseTimestampTest, QuotesLongAndBinaryInputSafely) {
  std::string long_input(1000, 'x');
  std::string message = ParseError(long_input);
  EXPECT_LT(message.size(), 200u);
  EXPECT_THAT(message, HasSubstr("xxx\"..."));
  EXPECT_THAT(ParseError(std::string_view("\xff\n", 2)), HasSubstr(R"("\xff\n")"));
}

TEST(ParseTimestampTest, YearsOutsideZeroToNineThousandNineHundredNinetyNine) {
  EXPECT_THAT(ParseError("0000-01-01T00:00:00+00:01"), HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(ParseError("9999-12-31T23:59:59-00:01"), HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(ParseError("253402300800"), HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(ParseError("-62167219200.001"), HasSubstr("outside years 0000-9999"));
  EXPECT_THAT(ParseError("99999999999999999999999999999999"), HasSubstr("outside years"));
  EXPECT_EQ(kMaxMillis, Parse("9999-12-31T23:59:59.999999Z"));
}

TEST(EpochSecondsToMillisTest, ConvertsAndFloors) {
  EXPECT_EQ(k2016, *EpochSecondsToMillis(1451606400.0));
  EXPECT_EQ(1700000000500, *EpochSecondsToMillis(1700000000.5));
  // Not exact in binary; still the millisecond the user wrote.
  EXPECT_EQ(k2016 + 1, *EpochSecondsToMillis(1451606400.001));
  EXPECT_EQ(k2016 + 3, *EpochSecondsToMillis(1451606400.003));
  EXPECT_EQ(1100, *EpochSecondsToMillis(1.1));
  EXPECT_EQ(1, *EpochSecondsToMillis(0.0015));
  EXPECT_EQ(-1500, *EpochSecondsToMillis(-1.5));
  EXPECT_EQ(-2, *EpochSecondsToMillis(-0.0015));
  EXPECT_EQ(kMinMillis, *EpochSecondsToMillis(-62167219200.0));
}

TEST(EpochSecondsToMillisTest, RejectsNonFiniteAndOutOfRange) {
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    absl::StatusOr<int64_t> got = EpochSecondsToMillis(bad);
    ASSERT_FALSE(got.ok());
    EXPECT_THAT(got.status().message(), HasSubstr("want a finite number of epoch seconds"));
  }
  for (double bad : {1e300, -1e300, 253402300800.0, -62167219200.5}) {
    absl::StatusOr<int64_t> got = EpochSecondsToMillis(bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_THAT(got.status().message(), HasSubstr("outside years 0000-9999"));
  }
}

TEST(FormatTimestampTest, KnownInstants) {
  EXPECT_EQ("2016-01-01T10:00:00.000Z", FormatTimestamp(k2016 + 10 * kHour));
  EXPECT_EQ("1970-01-01T00:00:00.000Z", FormatTimestamp(0));
  EXPECT_EQ("1969-12-31T23:59:59.999Z", FormatTimestamp(-1));
  EXPECT_EQ("1969-12-31T23:59:58.500Z", FormatTimestamp(-1500));
  EXPECT_EQ("1900-02-28T00:00:00.000Z", FormatTimestamp(Parse("1900-02-28")));
  EXPECT_EQ("0000-01-01T00:00:00.000Z", FormatTimestamp(kMinMillis));
  EXPECT_EQ("9999-12-31T23:59:59.999Z", FormatTimestamp(kMaxMillis));
  EXPECT_EQ("2016-02-29T12:34:56.789Z", FormatTimestamp(Parse("2016-02-29T12:34:56.789Z")));
  std::string out = "ts=";
  AppendTimestamp(k2016, &out);
  EXPECT_EQ("ts=2016-01-01T00:00:00.000Z", out);
}

TEST(FormatTimestampTest, YearsOutsideTheParsedRangeStillFormat) {
  EXPECT_EQ("-0001-12-31T23:59:59.999Z", FormatTimestamp(kMinMillis - 1));
  EXPECT_EQ("+10000-01-01T00:00:00.000Z", FormatTimestamp(kMaxMillis + 1));
  // Extremes do not crash or overflow.
  EXPECT_FALSE(FormatTimestamp(std::numeric_limits<int64_t>::min()).empty());
  EXPECT_FALSE(FormatTimestamp(std::numeric_limits<int64_t>::max()).empty());
}

TEST(FormatTimestampTest, RoundTripsRandomMillisOverAllYears) {
  std::mt19937_64 rng(20160101);
  std::uniform_int_distribution<int64_t> any(kMinMillis, kMaxMillis);
  for (int i = 0; i < 200000; ++i) {
    const int64_t millis = any(rng);
    const std::string text = FormatTimestamp(millis);
    ASSERT_EQ(24u, text.size()) << millis;
    ASSERT_EQ(millis, Parse(text)) << text;
    // The same instant as exact epoch seconds; "-1.500" is -1500 ms.
    const uint64_t magnitude = millis < 0 ? -static_cast<uint64_t>(millis) : millis;
    const std::string epoch =
        fmt::format("{}{}.{:03}", millis < 0 ? "-" : "", magnitude / 1000, magnitude % 1000);
    ASSERT_EQ(millis, Parse(epoch)) << epoch;
  }
}

// Walks every day of years 0..9999 with a naive calendar and checks both
// directions against it.
TEST(FormatTimestampTest, EveryDayMatchesANaiveCalendar) {
  int year = 0;
  int month = 1;
  int day = 1;
  const int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int64_t millis = kMinMillis; millis <= kMaxMillis; millis += 86400000) {
    const std::string want = fmt::format("{:04}-{:02}-{:02}", year, month, day);
    const std::string got = FormatTimestamp(millis);
    ASSERT_EQ(want, got.substr(0, 10)) << millis;
    ASSERT_EQ(millis, Parse(want));
    const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    const int month_days = month == 2 && leap ? 29 : kDays[month - 1];
    if (++day > month_days) {
      day = 1;
      if (++month > 12) {
        month = 1;
        ++year;
      }
    }
  }
  EXPECT_EQ(10000, year);
}

}  // namespace
}  // namespace espy::model
