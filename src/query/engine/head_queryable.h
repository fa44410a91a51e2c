// HeadQueryable: the Queryable over storage::head::Head (the in-memory part
// of the storage). Blocks will get their own adapter and a merging one.
#pragma once

#include "query/engine/queryable.h"
#include "storage/head/head.h"

namespace espy::query::engine {

// Thread-safe (the Head is). "*head" must outlive this object.
class HeadQueryable : public Queryable {
 public:
  explicit HeadQueryable(const storage::head::Head* head) : head_(head) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<model::Matcher>& matchers,
                                                    const SelectHints& hints) const override;

 private:
  const storage::head::Head* head_;
};

}  // namespace espy::query::engine
