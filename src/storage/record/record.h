// WAL record payloads: what the bytes of one WAL record mean. A batch
// record carries the series first seen in that batch (ref + labels) and all
// of its samples (ref, ts, value), so replaying a record is all or nothing.
// A batch is stored in columns (refs, timestamps as deltas, values as
// decimal mantissas where exact) and zstd-compressed when it is large; each
// record stands alone, so a damaged record loses nothing around it.
// A tombstones record carries one deletion (selector + time range), applied
// on replay to the samples replayed before it.
// Format: docs/format/wal.md ("Record payloads").
//
// Thread-safety: all functions may be called from any thread at once; each
// thread keeps its own zstd context.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/labels.h"
#include "model/matcher.h"

namespace espy::storage::record {

enum class RecordType : uint8_t {
  kBatchV1 = 1,  // the batch format before kBatch: read (old WALs replay), never written
  kTombstones = 2,
  kBatch = 3,  // compact batch, written by EncodeBatch
};

// The type byte of a payload; nullopt for an empty payload or an unknown type.
std::optional<RecordType> TypeOf(std::string_view payload);

struct RefSeries {
  model::SeriesRef ref;
  model::Labels labels;
};

struct RefSample {
  model::SeriesRef ref;
  int64_t ts;
  double value;
};

// Appends one kBatch payload to *out. Every double round-trips bit for bit
// (NaN payloads such as stale markers, infinities, -0 included).
void EncodeBatch(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                 std::string* out);

// Decodes a kBatch payload made by EncodeBatch, or a kBatchV1 payload of an
// older binary, replacing the contents of *series and *samples. DataLoss
// naming the byte offset on malformed input, a bad zstd frame included
// (then *series and *samples are unspecified).
absl::Status DecodeBatch(std::string_view payload, std::vector<RefSeries>* series,
                         std::vector<RefSample>* samples);

// One deletion: the samples of the series matching every matcher with
// mint <= ts <= maxt.
struct Tombstone {
  std::vector<model::Matcher> matchers;
  int64_t mint = 0;
  int64_t maxt = 0;
};

// Appends one kTombstones payload to *out.
void EncodeTombstone(const Tombstone& t, std::string* out);

// Decodes a payload made by EncodeTombstone. DataLoss naming the byte
// offset on malformed input (a regex that no longer compiles included).
absl::StatusOr<Tombstone> DecodeTombstone(std::string_view payload);

}  // namespace espy::storage::record
