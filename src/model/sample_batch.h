// SampleBatch: what a parser produces and the storage commits atomically: a
// table of series and the samples that point into it. ingest::Batch is this.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "model/labels.h"

namespace espy::model {

// The bit pattern Prometheus writes to mark a series stale (value.StaleNaN):
// a series that stopped being reported ends here, not five minutes later.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
inline double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }
inline bool IsStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }

struct BatchSample {
  uint32_t series;  // index into SampleBatch::series
  int64_t ts;       // milliseconds since the Unix epoch
  double value;
};

// Thread-compatible.
struct SampleBatch {
  std::vector<Labels> series;
  std::vector<BatchSample> samples;
  // Empty, or parallel to `series`: the storage ref of a series the
  // producer already knows (ingest::SeriesCache), whose Labels are then
  // left empty; 0 for a series given by its labels.
  std::vector<SeriesRef> refs;

  // Adds a series and returns its index for BatchSample::series.
  uint32_t AddSeries(Labels labels) {
    series.push_back(std::move(labels));
    if (!refs.empty()) refs.push_back(0);
    return static_cast<uint32_t>(series.size() - 1);
  }
  // Adds a series known to storage by its ref. REQUIRES: ref != 0.
  uint32_t AddSeriesRef(SeriesRef ref) {
    refs.resize(series.size());
    series.emplace_back();
    refs.push_back(ref);
    return static_cast<uint32_t>(series.size() - 1);
  }
  // The ref of series i if the producer gave one, else 0.
  SeriesRef RefOf(size_t i) const { return i < refs.size() ? refs[i] : 0; }
  void Add(uint32_t series_index, int64_t ts, double value) {
    samples.push_back({series_index, ts, value});
  }
  bool empty() const { return samples.empty(); }
};

}  // namespace espy::model
