// Influx line protocol (InfluxDB 1.x /write and 2.x /api/v2/write bodies):
//   measurement,tag=v,tag2=v2 f1=1.5,f2=3i,f3=t 1700000000000000000
// One sample per field, in a series named as VictoriaMetrics names them:
// measurement_field{tags}, or just measurement{tags} for a field named "value".
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "ingest/limits.h"
#include "ingest/series_cache.h"
#include "model/sample_batch.h"

namespace espy::ingest {

using Batch = model::SampleBatch;

// Unit of the line timestamps, from the `precision` query parameter.
enum class InfluxPrecision {
  kNanoseconds,  // the default
  kMicroseconds,
  kMilliseconds,
  kSeconds,
  kMinutes,  // InfluxDB 1.x only
  kHours,    // InfluxDB 1.x only
};

// Parses the `precision` query parameter: "" (nanoseconds), "ns"/"n",
// "us"/"u", "ms", "s", and InfluxDB 1.x's "m" and "h". Any other text is a
// BadInput for field "precision" saying what is accepted.
absl::StatusOr<InfluxPrecision> ParseInfluxPrecision(std::string_view text);

// Parses a whole body; batches are atomic, so the first bad line fails the
// batch with a BadInput whose item is the 0-based physical line index (blank
// and comment lines count) and whose field names the offending tag or field.
// Rules:
//   - Lines are separated by LF or CRLF; blank lines and lines whose first
//     non-blank character is '#' are skipped.
//   - Escapes: measurement: "\," and "\ "; tag keys, tag values and field
//     keys: "\,", "\=" and "\ ". A backslash before any other character is
//     kept literally, as InfluxDB does.
//   - Field values: float (1.5, -2e3), integer (3i), unsigned (3u), bool
//     (t, T, true, True, TRUE, f, F, false, False, FALSE -> 1 or 0). String
//     fields ("...") are rejected: Espy stores numbers only.
//   - The timestamp is optional (missing means `now_millis`), an integer in
//     `precision` units, converted to milliseconds rounding toward the past.
//   - A tag with an empty value ("host=") is rejected, as InfluxDB rejects it
//     (it is not silently dropped: a typo should not merge two series).
//   - Tag keys must not start with "__" (reserved, as in Prometheus), and
//     must not repeat within a line; neither may field keys.
//   - Every label set goes through ValidateLabels and every timestamp through
//     ValidateTimestamp (field "ts").
// The series table may hold equal label sets more than once (it is
// de-duplicated by spelling, not by canonical form); storage resolves them.
// With a `lookup`, a series whose key and field key are spelled as a cached
// one's is added by ref, its labels neither built nor checked again.
absl::StatusOr<Batch> ParseInfluxLines(std::string_view body, InfluxPrecision precision,
                                       int64_t now_millis, const Limits& limits,
                                       SeriesLookup* lookup = nullptr);

}  // namespace espy::ingest
