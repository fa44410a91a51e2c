// Limits every ingest protocol enforces on the series it accepts, and the
// shared checks of label names and values. One place, so JSON, remote write,
// line protocol and Graphite agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "model/labels.h"

namespace espy::ingest {

struct Limits {
  size_t max_labels_per_series = 64;  // including __name__
  size_t max_label_name_bytes = 256;
  size_t max_label_value_bytes = 4096;  // also bounds metric names
  // Samples older/newer than this relative to now are rejected; 0 = no bound.
  int64_t max_future_millis = 10 * 60 * 1000;
};

// Checks a finished label set (name included) against `limits`: non-empty
// metric name, valid UTF-8, sizes, no empty values. Errors are BadInput for
// `item` naming the offending label.
absl::Status ValidateLabels(const model::Labels& labels, const Limits& limits, int64_t item);

}  // namespace espy::ingest
