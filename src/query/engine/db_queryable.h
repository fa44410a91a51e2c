// DbQueryable: the Queryable over storage::Db. Reads raw samples from the
// head and blocks, or, for a range that reaches back into downsampled data,
// bucket aggregates from a tier (storage::Db::TierFor picks it from the
// range, the step and what the enclosing function can use): the "last"
// stream for most functions, min, max, sum or count for the *_over_time
// functions that want those.
#pragma once

#include "query/engine/queryable.h"
#include "storage/db.h"

namespace espy::query::engine {

// Thread-safe (the Db is). "*db" must outlive this object.
class DbQueryable : public Queryable {
 public:
  explicit DbQueryable(const storage::Db* db) : db_(db) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<model::Matcher>& matchers,
                                                    const SelectHints& hints) const override;
  int64_t Resolution(const SelectHints& hints) const override;

 private:
  // The tier level (0: raw) for these hints.
  int Level(const SelectHints& hints) const;

  const storage::Db* db_;
};

}  // namespace espy::query::engine
