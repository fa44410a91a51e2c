// WAL record payloads: what the bytes of one committed batch mean. A batch
// record carries the series first seen in that batch (ref + labels) and all
// of its samples (ref, ts, value), so replaying a record is all or nothing.
// Format: docs/format/wal.md ("Record payloads").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "model/labels.h"

namespace espy::storage::record {

enum class RecordType : uint8_t {
  kBatch = 1,
};

struct RefSeries {
  model::SeriesRef ref;
  model::Labels labels;
};

struct RefSample {
  model::SeriesRef ref;
  int64_t ts;
  double value;
};

// Appends one kBatch payload to *out.
void EncodeBatch(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                 std::string* out);

// Decodes a payload made by EncodeBatch, replacing the contents of *series
// and *samples. DataLoss naming the byte offset on malformed input.
absl::Status DecodeBatch(std::string_view payload, std::vector<RefSeries>* series,
                         std::vector<RefSample>* samples);

}  // namespace espy::storage::record
