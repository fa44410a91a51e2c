#include "storage/index/postings.h"

#include <algorithm>
#include <queue>

namespace espy::storage::index {

Postings Intersect(const Postings& a, const Postings& b) {
  Postings out;
  const Postings& small = a.size() <= b.size() ? a : b;
  const Postings& large = a.size() <= b.size() ? b : a;
  // When one side is much shorter, galloping (binary search) beats a merge.
  if (small.size() * 16 < large.size()) {
    auto it = large.begin();
    for (model::SeriesRef r : small) {
      it = std::lower_bound(it, large.end(), r);
      if (it == large.end()) break;
      if (*it == r) out.push_back(r);
    }
    return out;
  }
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

Postings Merge(const std::vector<const Postings*>& lists) {
  if (lists.empty()) return {};
  if (lists.size() == 1) return *lists[0];
  size_t total = 0;
  for (const Postings* p : lists) total += p->size();
  Postings out;
  out.reserve(total);
  for (const Postings* p : lists) out.insert(out.end(), p->begin(), p->end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Postings Without(const Postings& a, const Postings& b) {
  Postings out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

namespace {

// Appends in the common case; a ref below the last (WAL replay after
// truncation re-logs old series late) is inserted in place.
void InsertSorted(Postings* list, model::SeriesRef ref) {
  if (list->empty() || list->back() < ref) {
    list->push_back(ref);
    return;
  }
  auto it = std::lower_bound(list->begin(), list->end(), ref);
  if (it == list->end() || *it != ref) list->insert(it, ref);
}

}  // namespace

void MemPostings::Add(model::SeriesRef ref, const model::Labels& labels) {
  InsertSorted(&all_, ref);
  for (const model::Label& l : labels.items()) InsertSorted(&by_name_[l.name][l.value], ref);
}

const Postings& MemPostings::Get(std::string_view name, std::string_view value) const {
  static const Postings kEmpty;
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return kEmpty;
  auto vit = it->second.find(value);
  return vit == it->second.end() ? kEmpty : vit->second;
}

Postings MemPostings::MatchingValues(const std::string& name,
                                     const std::function<bool(std::string_view)>& pred) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return {};
  std::vector<const Postings*> lists;
  for (const auto& [value, refs] : it->second) {
    if (pred(value)) lists.push_back(&refs);
  }
  return Merge(lists);
}

Postings MemPostings::Select(const std::vector<model::Matcher>& matchers) const {
  // As Prometheus does: matchers that reject the empty value select the
  // series that have a matching value; matchers that accept it (x!="a",
  // x=~".*") remove the series whose value fails them.
  bool have_positive = false;
  Postings result;
  std::vector<const model::Matcher*> negative;
  for (const model::Matcher& m : matchers) {
    if (m.MatchesEmpty()) {
      negative.push_back(&m);
      continue;
    }
    Postings p = m.type() == model::MatchType::kEqual
                     ? Get(m.name(), m.value())
                     : MatchingValues(m.name(), [&m](std::string_view v) { return m.Matches(v); });
    result = have_positive ? Intersect(result, p) : std::move(p);
    have_positive = true;
    if (result.empty()) return result;
  }
  if (!have_positive) result = all_;
  for (const model::Matcher* m : negative) {
    result = Without(result,
                     MatchingValues(m->name(), [m](std::string_view v) { return !m->Matches(v); }));
  }
  return result;
}

std::vector<std::string> MemPostings::LabelNames() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, values] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> MemPostings::LabelValues(std::string_view name) const {
  std::vector<std::string> values;
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return values;
  values.reserve(it->second.size());
  for (const auto& [value, refs] : it->second) values.push_back(value);
  return values;
}

}  // namespace espy::storage::index
