// Postings: sorted lists of series refs, and the set operations selectors
// are answered with. MemPostings is the in-memory inverted index
// (label name -> value -> refs) the head keeps.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "model/labels.h"
#include "model/matcher.h"

namespace espy::storage::index {

using Postings = std::vector<model::SeriesRef>;  // strictly increasing

Postings Intersect(const Postings& a, const Postings& b);
Postings Merge(const std::vector<const Postings*>& lists);  // union
Postings Without(const Postings& a, const Postings& b);     // a minus b

// Thread-compatible: the owner locks. Refs are normally added in increasing
// order (the head hands them out that way), which keeps every list sorted
// for free; a smaller ref is inserted in place (slower, but rare: replay).
class MemPostings {
 public:
  void Add(model::SeriesRef ref, const model::Labels& labels);

  // Refs of the series that satisfy every matcher, sorted. With no matchers,
  // every series. Regex matchers are run against the value dictionary of
  // their label name, not against series.
  Postings Select(const std::vector<model::Matcher>& matchers) const;

  const Postings& All() const { return all_; }
  // Sorted label names / values of one name.
  std::vector<std::string> LabelNames() const;
  std::vector<std::string> LabelValues(std::string_view name) const;
  // Refs for one name=value pair (empty if none).
  const Postings& Get(std::string_view name, std::string_view value) const;

 private:
  using ValueMap = absl::btree_map<std::string, Postings, std::less<>>;
  // Union of the lists of every value of `name` for which pred(value).
  Postings MatchingValues(const std::string& name,
                          const std::function<bool(std::string_view)>& pred) const;

  absl::flat_hash_map<std::string, ValueMap> by_name_;
  Postings all_;
};

}  // namespace espy::storage::index
