// MemoryQueryable: linear scan over a sorted map; fine for tests.
#include "query/engine/memory_queryable.h"

#include <algorithm>

namespace espy::query::engine {
namespace {

class MemorySeriesSet : public SeriesSet {
 public:
  using Entry = std::pair<const model::Labels*, const std::vector<model::Sample>*>;
  MemorySeriesSet(std::vector<Entry> entries, const SelectHints& hints)
      : entries_(std::move(entries)), mint_(hints.mint), maxt_(hints.maxt) {}

  bool Next() override {
    if (pos_ >= entries_.size()) return false;
    ++pos_;
    return true;
  }
  const model::Labels& labels() const override { return *entries_[pos_ - 1].first; }
  absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) override {
    const std::vector<model::Sample>& s = *entries_[pos_ - 1].second;
    auto it = std::lower_bound(s.begin(), s.end(), mint_,
                               [](const model::Sample& a, int64_t t) { return a.ts < t; });
    size_t n = 0;
    for (; it != s.end() && it->ts <= maxt_ && n < max; ++it, ++n) out->push_back(*it);
    return n;
  }

 private:
  std::vector<Entry> entries_;
  size_t pos_ = 0;
  int64_t mint_;
  int64_t maxt_;
};

}  // namespace

void MemoryQueryable::Add(const model::Labels& labels, int64_t ts, double value) {
  std::vector<model::Sample>& s = series_[labels];
  auto it = std::lower_bound(s.begin(), s.end(), ts,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  if (it != s.end() && it->ts == ts) {
    it->value = value;
  } else {
    s.insert(it, model::Sample{ts, value});
  }
}

absl::StatusOr<std::unique_ptr<SeriesSet>> MemoryQueryable::Select(
    const std::vector<model::Matcher>& matchers, const SelectHints& hints) const {
  std::vector<MemorySeriesSet::Entry> out;
  for (const auto& [labels, samples] : series_) {
    bool ok = true;
    for (const model::Matcher& m : matchers) {
      if (!m.Matches(labels.Get(m.name()))) {
        ok = false;
        break;
      }
    }
    if (ok) out.emplace_back(&labels, &samples);
  }
  return std::make_unique<MemorySeriesSet>(std::move(out), hints);
}

}  // namespace espy::query::engine
