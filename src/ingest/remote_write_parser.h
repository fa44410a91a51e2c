// Prometheus remote write 1.0 (POST /api/v1/write): a snappy block-compressed
// prometheus.WriteRequest (remote_write.proto) to a Batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "ingest/limits.h"
#include "ingest/series_cache.h"
#include "model/sample_batch.h"

namespace espy::ingest {

using Batch = model::SampleBatch;

// Decodes and validates the whole body; any bad series fails the batch.
// Errors are BadInput: item -1 for the body (snappy, protobuf, size), else
// the 0-based timeseries index with field = the offending label name.
//   - The snappy block's declared length is checked against
//     `max_decoded_bytes` before anything is allocated.
//   - Each series needs a non-empty __name__; label names must match
//     [a-zA-Z_][a-zA-Z0-9_]* and appear once. A label with an empty value is
//     dropped (Prometheus treats it as absent); then ValidateLabels applies.
//   - Values are copied bit-exact, so staleness markers (the NaN
//     0x7ff0000000000002) survive. Timestamps go through ValidateTimestamp.
//   - Native histograms are rejected; exemplars and metadata are accepted
//     and skipped without being parsed. Unknown fields are skipped, as
//     protobuf does; groups (wire types 3, 4) are corrupt input.
//   - With a `lookup`, a series whose Label messages are spelled as a cached
//     one's is added by ref, its labels neither converted nor checked again.
absl::StatusOr<Batch> ParseRemoteWrite(std::string_view body, size_t max_decoded_bytes,
                                       int64_t now_millis, const Limits& limits,
                                       SeriesLookup* lookup = nullptr);

}  // namespace espy::ingest
