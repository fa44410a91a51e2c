// MemoryQueryable: a storage::Querier over series held in a map, for the
// engine's tests and the .test script runner.
#pragma once

#include <vector>

#include "absl/container/btree_map.h"
#include "query/engine/queryable.h"

namespace espy::query::engine {

// Thread-compatible: load it first, then query it (queries only read).
// Covers all time; series ids are 1, 2, ... in the order series were added.
class MemoryQueryable : public Queryable {
 public:
  MemoryQueryable() : Queryable(INT64_MIN, INT64_MAX) {}

  // The id of the series with these labels, added (with no samples) if new.
  storage::SeriesId Create(const model::Labels& labels);
  // Adds a sample; the same series and timestamp again overwrites the value.
  void Add(const model::Labels& labels, int64_t ts, double value);
  void Clear() { series_.clear(); }
  size_t num_series() const { return series_.size(); }

  absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const override;
  absl::StatusOr<std::vector<storage::SeriesEntry>> Series(
      std::span<const std::vector<model::Matcher>> sets) const override;
  absl::StatusOr<std::vector<std::string>> LabelNames(
      std::span<const std::vector<model::Matcher>> sets) const override;
  absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, std::span<const std::vector<model::Matcher>> sets) const override;
  const model::Labels* Labels(storage::SeriesId id) const override;
  storage::SampleIteratorPtr Samples(storage::SeriesId id, int64_t mint, int64_t maxt,
                                     std::pmr::memory_resource* memory) const override;

 private:
  struct Stored {
    storage::SeriesId id = 0;
    std::vector<model::Sample> samples;  // by ts
  };
  // Whether the series matches all of one of the sets (no sets: any).
  static bool MatchesAny(const model::Labels& labels,
                         std::span<const std::vector<model::Matcher>> sets);

  // Sorted by labels.
  absl::btree_map<model::Labels, Stored> series_;
  storage::SeriesId next_id_ = 1;
};

}  // namespace espy::query::engine
