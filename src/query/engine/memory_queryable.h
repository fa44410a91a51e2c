// MemoryQueryable: a Queryable over series held in a map, for the engine's
// tests and the .test script runner.
#pragma once

#include <vector>

#include "absl/container/btree_map.h"
#include "query/engine/queryable.h"

namespace espy::query::engine {

// Thread-compatible: load it first, then query it (queries only read).
class MemoryQueryable : public Queryable {
 public:
  // Adds a sample; the same series and timestamp again overwrites the value.
  void Add(const model::Labels& labels, int64_t ts, double value);
  void Clear() { series_.clear(); }
  size_t num_series() const { return series_.size(); }

  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<model::Matcher>& matchers,
                                                    const SelectHints& hints) const override;

 private:
  // Sorted by labels, samples by ts.
  absl::btree_map<model::Labels, std::vector<model::Sample>> series_;
};

}  // namespace espy::query::engine
