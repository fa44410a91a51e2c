// Queryable: what the PromQL engine reads series from. The engine sees only
// this interface (never storage::Db), so it runs over the head, blocks or
// downsampled tiers alike, and its tests run over an in-memory store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/labels.h"
#include "model/matcher.h"

namespace espy::query::engine {

// What the engine will do with the selected samples. A store may use it to
// pick a downsampled tier (for a long range with a large step): it then
// returns, instead of raw samples, one value per bucket of the tier's
// resolution, stamped with the time of the bucket's last sample. The value
// is what `func` needs: the bucket's minimum for min_over_time, maximum for
// max_over_time, sum for sum_over_time, raw sample count for
// count_over_time, and its last sample otherwise.
struct SelectHints {
  int64_t mint = 0;      // first wanted timestamp, inclusive (ms)
  int64_t maxt = 0;      // last wanted timestamp, inclusive (ms)
  int64_t step_ms = 0;   // evaluation step; 0 for an instant query
  int64_t range_ms = 0;  // range of the enclosing range selector; 0 for none
  std::string func;      // enclosing function ("rate"), empty for none
  // The bucket width to read, as Resolution() returned it (0: raw
  // samples); -1 lets the store choose.
  int64_t resolution = -1;
};

// A cursor over selected series, in ascending label order. Single-threaded.
class SeriesSet {
 public:
  virtual ~SeriesSet() = default;
  // Moves to the next series; false at the end.
  virtual bool Next() = 0;
  // The current series' labels. REQUIRES: Next() returned true.
  virtual const model::Labels& labels() const = 0;
  // Appends the current series' samples with ts in [hints.mint, hints.maxt]
  // to *out, oldest first. Appends at most `max` samples and returns how
  // many it appended (so callers can enforce a sample limit).
  virtual absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) = 0;
};

// Implementations are thread-safe: one Queryable serves concurrent queries.
class Queryable {
 public:
  virtual ~Queryable() = default;
  // The series whose labels satisfy every matcher and that may have samples
  // in [hints.mint, hints.maxt].
  virtual absl::StatusOr<std::unique_ptr<SeriesSet>> Select(
      const std::vector<model::Matcher>& matchers, const SelectHints& hints) const = 0;
  // The bucket width (ms) Select would read with these hints, 0 for raw
  // samples. The engine uses it to widen the lookback and to combine
  // bucket counts and sums where raw samples would be counted or averaged.
  virtual int64_t Resolution(const SelectHints& hints) const {
    (void)hints;
    return 0;
  }
};

}  // namespace espy::query::engine
