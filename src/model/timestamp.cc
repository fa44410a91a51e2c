// Hand-written ISO-8601 / epoch-seconds parsing and formatting. It sits on the
// ingest hot path, so it avoids locales, timegm and allocation on success; the
// calendar arithmetic is Howard Hinnant's days_from_civil / civil_from_days
// (http://howardhinnant.github.io/date_algorithms.html), exact for any year.
#include "model/timestamp.h"

#include <cmath>
#include <iterator>
#include <limits>

#include "absl/strings/escaping.h"
#include "fmt/format.h"

namespace espy::model {

namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerMinute = 60 * kMillisPerSecond;
constexpr int64_t kMillisPerDay = 24 * 60 * kMillisPerMinute;

// Days since 1970-01-01 of the proleptic Gregorian date y-m-d.
constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);             // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct CivilDate {
  int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

// Inverse of DaysFromCivil.
constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);                // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return {y + (m <= 2), m, d};
}

// The accepted range: years 0000..9999 inclusive.
constexpr int64_t kMinMillis = DaysFromCivil(0, 1, 1) * kMillisPerDay;
constexpr int64_t kMaxMillis = DaysFromCivil(10000, 1, 1) * kMillisPerDay - 1;
static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(2016, 1, 1) == 16801);
static_assert(CivilFromDays(16801).year == 2016);

constexpr bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned DaysInMonth(int64_t y, unsigned m) {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Two ASCII digits at p as a number; REQUIRES: both are digits.
inline unsigned Two(const char* p) {
  return static_cast<unsigned>((p[0] - '0') * 10 + (p[1] - '0'));
}

inline bool Digits(const char* p, int n) {
  for (int i = 0; i < n; ++i) {
    if (!IsDigit(p[i])) return false;
  }
  return true;
}

// The input as it appears in error messages: escaped and cut to a sane size.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxQuoted = 64;
  std::string_view shown = text.substr(0, kMaxQuoted);
  std::string out = "\"" + absl::CHexEscape(absl::string_view(shown.data(), shown.size())) + "\"";
  if (text.size() > kMaxQuoted) out += "...";
  return out;
}

absl::Status WantTimestamp(std::string_view text) {
  return absl::InvalidArgumentError(
      fmt::format("want ISO-8601 (2016-01-01T10:00:00Z) or epoch seconds, got {}", Quote(text)));
}

absl::Status OutOfRange(std::string_view what, unsigned got, std::string_view range,
                        std::string_view text) {
  return absl::InvalidArgumentError(
      fmt::format("{} {:02} out of range {} in {}", what, got, range, Quote(text)));
}

absl::Status YearsOutOfRange(std::string_view text) {
  return absl::InvalidArgumentError(
      fmt::format("timestamp {} is outside years 0000-9999", Quote(text)));
}

// [-]digits[.digits] as epoch seconds, exactly (no binary floating point), the
// fraction floored to milliseconds.
absl::StatusOr<int64_t> ParseEpochSeconds(std::string_view text) {
  const char* p = text.data();
  const char* end = p + text.size();
  bool negative = false;
  if (p < end && *p == '-') {
    negative = true;
    ++p;
  }
  if (p == end || !IsDigit(*p)) return WantTimestamp(text);
  // 10^13 seconds is far past year 9999; stop accumulating there so long
  // inputs cannot overflow, and report the range afterwards.
  constexpr int64_t kSecondsCap = 10'000'000'000'000;
  int64_t seconds = 0;
  for (; p < end && IsDigit(*p); ++p) {
    if (seconds < kSecondsCap) seconds = seconds * 10 + (*p - '0');
  }
  int64_t frac_millis = 0;
  bool below_millis = false;  // non-zero digits past the third fractional one
  if (p < end && *p == '.') {
    ++p;
    if (p == end) return WantTimestamp(text);
    int digits = 0;
    for (; p < end && IsDigit(*p); ++p, ++digits) {
      if (digits < 3) {
        frac_millis = frac_millis * 10 + (*p - '0');
      } else if (*p != '0') {
        below_millis = true;
      }
    }
    if (digits == 0) return WantTimestamp(text);
    for (; digits < 3; ++digits) frac_millis *= 10;
  }
  if (p != end) return WantTimestamp(text);
  if (seconds >= kSecondsCap) return YearsOutOfRange(text);
  int64_t millis = seconds * kMillisPerSecond + frac_millis;
  if (negative) millis = -millis - (below_millis ? 1 : 0);
  if (millis < kMinMillis || millis > kMaxMillis) return YearsOutOfRange(text);
  return millis;
}

// YYYY-MM-DD[(T|t| )hh:mm[:ss[.f+]][Z|z|(+|-)hh[:]mm]].
absl::StatusOr<int64_t> ParseIso(std::string_view text) {
  const char* s = text.data();
  const size_t n = text.size();
  if (n < 10 || s[7] != '-' || !Digits(s, 4) || !Digits(s + 5, 2) || !Digits(s + 8, 2)) {
    return WantTimestamp(text);
  }
  const int64_t year = Two(s) * 100 + Two(s + 2);
  const unsigned month = Two(s + 5);
  const unsigned day = Two(s + 8);
  if (month < 1 || month > 12) return OutOfRange("month", month, "01-12", text);
  const unsigned days_in_month = DaysInMonth(year, month);
  if (day < 1 || day > days_in_month) {
    return OutOfRange("day", day, fmt::format("01-{}", days_in_month), text);
  }
  int64_t millis = DaysFromCivil(year, month, day) * kMillisPerDay;
  if (n == 10) return millis;

  const char* p = s + 10;
  const char* end = s + n;
  if (*p != 'T' && *p != 't' && *p != ' ') return WantTimestamp(text);
  ++p;
  if (end - p < 5 || !Digits(p, 2) || p[2] != ':' || !Digits(p + 3, 2)) return WantTimestamp(text);
  const unsigned hour = Two(p);
  const unsigned minute = Two(p + 3);
  p += 5;
  unsigned second = 0;
  int64_t frac_millis = 0;
  if (p < end && *p == ':') {
    if (end - p < 3 || !Digits(p + 1, 2)) return WantTimestamp(text);
    second = Two(p + 1);
    p += 3;
    if (p < end && *p == '.') {
      ++p;
      int digits = 0;
      for (; p < end && IsDigit(*p); ++p, ++digits) {
        if (digits < 3) frac_millis = frac_millis * 10 + (*p - '0');
      }
      if (digits == 0) return WantTimestamp(text);
      for (; digits < 3; ++digits) frac_millis *= 10;
    }
  }
  if (hour > 23) return OutOfRange("hour", hour, "00-23", text);
  if (minute > 59) return OutOfRange("minute", minute, "00-59", text);
  if (second > 59) return OutOfRange("second", second, "00-59", text);
  millis += ((hour * 60 + minute) * 60 + second) * kMillisPerSecond + frac_millis;

  if (p < end && (*p == 'Z' || *p == 'z')) {
    ++p;
  } else if (p < end && (*p == '+' || *p == '-')) {
    const bool east = *p == '+';
    ++p;
    unsigned off_hour = 0;
    unsigned off_minute = 0;
    if (end - p == 5 && Digits(p, 2) && p[2] == ':' && Digits(p + 3, 2)) {
      off_hour = Two(p);
      off_minute = Two(p + 3);
    } else if (end - p == 4 && Digits(p, 4)) {
      off_hour = Two(p);
      off_minute = Two(p + 2);
    } else {
      return WantTimestamp(text);
    }
    if (off_hour > 23) return OutOfRange("UTC offset hour", off_hour, "00-23", text);
    if (off_minute > 59) return OutOfRange("UTC offset minute", off_minute, "00-59", text);
    const int64_t offset = (off_hour * 60 + off_minute) * kMillisPerMinute;
    // Local time = UTC + offset, so UTC = local - offset.
    millis += east ? -offset : offset;
    p = end;
  }
  if (p != end) return WantTimestamp(text);
  if (millis < kMinMillis || millis > kMaxMillis) return YearsOutOfRange(text);
  return millis;
}

}  // namespace

absl::StatusOr<int64_t> ParseTimestamp(std::string_view text) {
  // A date starts with four digits and a dash; anything else is epoch seconds.
  if (text.size() >= 5 && text[4] == '-' && Digits(text.data(), 4)) return ParseIso(text);
  return ParseEpochSeconds(text);
}

absl::StatusOr<int64_t> EpochSecondsToMillis(double seconds) {
  if (!std::isfinite(seconds)) {
    return absl::InvalidArgumentError(
        fmt::format("want a finite number of epoch seconds, got {}", seconds));
  }
  // A loose bound first so the conversion below cannot overflow.
  constexpr double kLooseBound = 1e12;
  if (std::fabs(seconds) > kLooseBound) {
    return absl::InvalidArgumentError(
        fmt::format("epoch seconds {} are outside years 0000-9999", seconds));
  }
  const double millis = seconds * 1000.0;
  // Decimal fractions such as 1451606400.001 are not exact in binary; snap
  // products within a few ulps of a whole millisecond to it instead of
  // flooring them to the millisecond before.
  const double nearest = std::nearbyint(millis);
  const double tolerance = 4 * std::numeric_limits<double>::epsilon() * std::fabs(millis);
  const int64_t result =
      static_cast<int64_t>(std::fabs(millis - nearest) <= tolerance ? nearest : std::floor(millis));
  if (result < kMinMillis || result > kMaxMillis) {
    return absl::InvalidArgumentError(
        fmt::format("epoch seconds {} are outside years 0000-9999", seconds));
  }
  return result;
}

void AppendTimestamp(int64_t millis, std::string* out) {
  const int64_t days = FloorDiv(millis, kMillisPerDay);
  int64_t rest = millis % kMillisPerDay;  // no days * kMillisPerDay: it overflows at the extremes
  if (rest < 0) rest += kMillisPerDay;    // now [0, kMillisPerDay)
  const unsigned ms = static_cast<unsigned>(rest % 1000);
  rest /= 1000;
  const unsigned sec = static_cast<unsigned>(rest % 60);
  rest /= 60;
  const unsigned min = static_cast<unsigned>(rest % 60);
  const unsigned hour = static_cast<unsigned>(rest / 60);
  // Bulk output (a page of points) mostly repeats the same day: keep the
  // last date's text instead of redoing the civil-date arithmetic.
  thread_local int64_t cached_days = INT64_MIN;
  thread_local std::string cached_date;
  if (days != cached_days) {
    cached_date.clear();
    const CivilDate date = CivilFromDays(days);
    if (date.year < 0 || date.year > 9999) {
      // Outside what ParseTimestamp accepts; ISO-8601's expanded years.
      fmt::format_to(std::back_inserter(cached_date), "{}{:04}", date.year < 0 ? '-' : '+',
                     date.year < 0 ? -date.year : date.year);
    } else {
      const unsigned y = static_cast<unsigned>(date.year);
      cached_date.push_back(static_cast<char>('0' + y / 1000));
      cached_date.push_back(static_cast<char>('0' + y / 100 % 10));
      cached_date.push_back(static_cast<char>('0' + y / 10 % 10));
      cached_date.push_back(static_cast<char>('0' + y % 10));
    }
    fmt::format_to(std::back_inserter(cached_date), "-{:02}-{:02}", date.month, date.day);
    cached_days = days;
  }
  out->append(cached_date);
  auto two = [](char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  char buf[14];
  buf[0] = 'T';
  two(buf + 1, hour);
  buf[3] = ':';
  two(buf + 4, min);
  buf[6] = ':';
  two(buf + 7, sec);
  buf[9] = '.';
  buf[10] = static_cast<char>('0' + ms / 100);
  two(buf + 11, ms % 100);
  buf[13] = 'Z';
  out->append(buf, sizeof(buf));
}

std::string FormatTimestamp(int64_t millis) {
  std::string out;
  out.reserve(24);
  AppendTimestamp(millis, &out);
  return out;
}

}  // namespace espy::model
