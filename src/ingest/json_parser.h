// The JSON metrics format of POST /v1/metrics: one object, an array of
// objects, or NDJSON. An object is {"name": "cpu", "value": 0.5,
// "ts": "2016-01-01T10:00:00Z", "host": "a"}: every key other than name,
// value and ts is a label.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "ingest/limits.h"
#include "model/sample_batch.h"

namespace espy::ingest {

using Batch = model::SampleBatch;

enum class JsonFormat {
  kJson,    // application/json: one object or an array of objects
  kNdjson,  // application/x-ndjson: one object per line, blank lines ignored
};

// Parses and validates the whole body; any bad item fails the whole batch
// with a BadInput status (item index, field, problem). `now_millis` stands in
// for a missing ts. Rules:
//   name   required, non-empty string
//   value  JSON number, or a string holding one ("42", "1e3", "NaN", "+Inf")
//   ts     ISO-8601 string or epoch seconds (number or numeric string); see
//          model::ParseTimestamp
//   other  labels: string, number or bool values (numbers keep their JSON
//          spelling, bools become "true"/"false"); objects, arrays and null
//          are errors; names must not start with "__"
//   keys   unique within an object
// Each item's labels then pass ValidateLabels and its ts ValidateTimestamp.
// An empty array, or an NDJSON body of blank lines, is a valid batch of zero
// samples; an empty JSON body is an error.
// Items are numbered from 0: array elements by index (a single object is item
// 0); NDJSON items by 0-based line number counting every line, blank ones
// too, so "item 6" is line 7 of the user's file. Errors about the whole body
// (not JSON, trailing content after the array) have item -1.
// Identical label sets within one body share one entry of Batch::series.
absl::StatusOr<Batch> ParseJsonMetrics(std::string_view body, JsonFormat format, int64_t now_millis,
                                       const Limits& limits);

}  // namespace espy::ingest
