// Timestamps as users write them and as Espy prints them. Internally a
// timestamp is int64 milliseconds since the Unix epoch, UTC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace espy::model {

// Parses one of:
//   2016-01-01                      (midnight UTC)
//   2016-01-01T10:00:00Z            (also a space for T; lower-case t/z)
//   2016-01-01T10:00:00.123456+02:00, -0530, Z; no offset means UTC
//   2016-01-01T10:00Z               (seconds optional)
//   1451642400, 1451642400.5, -1.5  (epoch seconds, int or fractional)
// Fractions below a millisecond are truncated toward the past. An error says
// what was expected and quotes the input.
absl::StatusOr<int64_t> ParseTimestamp(std::string_view text);

// Epoch seconds (as a JSON number gives them) to milliseconds; errors for
// NaN, infinities and values outside years 0..9999.
absl::StatusOr<int64_t> EpochSecondsToMillis(double seconds);

// 2016-01-01T10:00:00.000Z: ISO-8601 UTC with milliseconds, always 24 chars
// for years 0..9999.
std::string FormatTimestamp(int64_t millis);
// Appends the same to *out (for writers building large bodies).
void AppendTimestamp(int64_t millis, std::string* out);

}  // namespace espy::model
