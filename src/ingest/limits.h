// Limits every ingest protocol enforces on the series it accepts, and the
// shared checks of label names and values. One place, so JSON, remote write,
// line protocol and Graphite agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "model/labels.h"

namespace espy::ingest {

struct Limits {
  size_t max_labels_per_series = 64;  // including __name__
  size_t max_label_name_bytes = 256;
  size_t max_label_value_bytes = 4096;  // also bounds metric names
  // Samples further in the future than this are rejected (clock skew is
  // tolerated, typos like 2062 are not). 0: no bound.
  int64_t max_future_millis = 2 * 24 * 3600 * 1000ll;
  // The storage retention: samples already older than now - this are
  // rejected, since retention would drop them right after acknowledging
  // them. 0: no bound (data is kept forever).
  int64_t retention_millis = 0;
};

// Checks a finished label set (name included) against `limits`: non-empty
// metric name, valid UTF-8, sizes, no empty values. Errors are BadInput for
// `item` naming the offending label.
// The field of a too-long or non-UTF-8 label name is shown cut to 64 bytes and
// with bytes that are not UTF-8 escaped as \xNN, so an error body stays valid
// JSON; __name__ is reported as field "name".
absl::Status ValidateLabels(const model::Labels& labels, const Limits& limits, int64_t item);

// Checks a sample timestamp against limits.max_future_millis and
// limits.retention_millis (0 = no bound) relative to `now_millis`; the error
// is BadInput for `item`, field "ts", naming the bound.
absl::Status ValidateTimestamp(int64_t ts, int64_t now_millis, const Limits& limits, int64_t item);

// A span of milliseconds in the largest unit that divides it (y = 365d, w,
// d, h, m, s, ms), as retentions are written: "30d", "2w", "90m".
std::string FormatSpan(int64_t millis);

}  // namespace espy::ingest
