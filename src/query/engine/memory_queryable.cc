// MemoryQueryable: linear scans over a sorted map; fine for tests.
#include "query/engine/memory_queryable.h"

#include <algorithm>

#include "absl/container/btree_set.h"

namespace espy::query::engine {
namespace {

using SampleVec = std::vector<model::Sample>;

// The samples of `s` with ts in [mint, maxt].
std::span<const model::Sample> InRange(const SampleVec& s, int64_t mint, int64_t maxt) {
  auto lo = std::lower_bound(s.begin(), s.end(), mint,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  auto hi = std::upper_bound(lo, s.end(), maxt,
                             [](int64_t t, const model::Sample& a) { return t < a.ts; });
  return std::span<const model::Sample>(lo, hi);
}

class MemorySeriesSet : public SeriesSet {
 public:
  struct Entry {
    const model::Labels* labels;
    storage::SeriesId id;
    const SampleVec* samples;
  };
  MemorySeriesSet(std::vector<Entry> entries, const SelectHints& hints)
      : entries_(std::move(entries)), mint_(hints.mint), maxt_(hints.maxt) {}

  bool Next() override {
    if (pos_ >= entries_.size()) return false;
    ++pos_;
    return true;
  }
  const model::Labels& labels() const override { return *entries_[pos_ - 1].labels; }
  storage::SeriesId id() const override { return entries_[pos_ - 1].id; }
  absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) override {
    std::span<const model::Sample> s = InRange(*entries_[pos_ - 1].samples, mint_, maxt_);
    const size_t n = std::min(max, s.size());
    out->insert(out->end(), s.begin(), s.begin() + static_cast<ptrdiff_t>(n));
    return n;
  }

 private:
  std::vector<Entry> entries_;
  size_t pos_ = 0;
  int64_t mint_;
  int64_t maxt_;
};

class MemorySampleIterator : public storage::SampleIterator {
 public:
  explicit MemorySampleIterator(std::span<const model::Sample> rest) : rest_(rest) {}
  absl::StatusOr<std::span<const model::Sample>> Next(size_t want) override {
    const size_t n = std::min(std::max<size_t>(want, 1), rest_.size());
    std::span<const model::Sample> out = rest_.first(n);
    rest_ = rest_.subspan(n);
    return out;
  }

 private:
  std::span<const model::Sample> rest_;
};

}  // namespace

storage::SeriesId MemoryQueryable::Create(const model::Labels& labels) {
  auto [entry, added] = series_.try_emplace(labels);
  if (added) entry->second.id = next_id_++;
  return entry->second.id;
}

void MemoryQueryable::Add(const model::Labels& labels, int64_t ts, double value) {
  auto [entry, added] = series_.try_emplace(labels);
  if (added) entry->second.id = next_id_++;
  SampleVec& s = entry->second.samples;
  auto it = std::lower_bound(s.begin(), s.end(), ts,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  if (it != s.end() && it->ts == ts) {
    it->value = value;
  } else {
    s.insert(it, model::Sample{ts, value});
  }
}

bool MemoryQueryable::MatchesAny(const model::Labels& labels,
                                 std::span<const std::vector<model::Matcher>> sets) {
  if (sets.empty()) return true;
  for (const std::vector<model::Matcher>& set : sets) {
    if (std::all_of(set.begin(), set.end(),
                    [&](const model::Matcher& m) { return m.Matches(labels.Get(m.name())); })) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::unique_ptr<SeriesSet>> MemoryQueryable::SelectAny(
    std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const {
  std::vector<MemorySeriesSet::Entry> out;
  for (const auto& [labels, stored] : series_) {
    if (MatchesAny(labels, sets)) out.push_back({&labels, stored.id, &stored.samples});
  }
  return std::make_unique<MemorySeriesSet>(std::move(out), hints);
}

absl::StatusOr<std::vector<storage::SeriesEntry>> MemoryQueryable::Series(
    std::span<const std::vector<model::Matcher>> sets) const {
  std::vector<storage::SeriesEntry> out;
  for (const auto& [labels, stored] : series_) {
    if (MatchesAny(labels, sets) && !stored.samples.empty()) out.push_back({stored.id, &labels});
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> MemoryQueryable::LabelNames(
    std::span<const std::vector<model::Matcher>> sets) const {
  absl::btree_set<std::string> names;
  for (const auto& [labels, stored] : series_) {
    if (!MatchesAny(labels, sets) || stored.samples.empty()) continue;
    for (const model::Label& l : labels.items()) names.insert(l.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::vector<std::string>> MemoryQueryable::LabelValues(
    std::string_view name, std::span<const std::vector<model::Matcher>> sets) const {
  absl::btree_set<std::string> values;
  for (const auto& [labels, stored] : series_) {
    if (!MatchesAny(labels, sets) || stored.samples.empty()) continue;
    std::string_view v = labels.Get(name);
    if (!v.empty()) values.insert(std::string(v));
  }
  return std::vector<std::string>(values.begin(), values.end());
}

const model::Labels* MemoryQueryable::Labels(storage::SeriesId id) const {
  for (const auto& [labels, stored] : series_) {
    if (stored.id == id) return &labels;
  }
  return nullptr;
}

storage::SampleIteratorPtr MemoryQueryable::Samples(storage::SeriesId id, int64_t mint,
                                                    int64_t maxt,
                                                    std::pmr::memory_resource* memory) const {
  for (const auto& [labels, stored] : series_) {
    if (stored.id == id) {
      return storage::MakeSampleIterator<MemorySampleIterator>(memory,
                                                               InRange(stored.samples, mint, maxt));
    }
  }
  return storage::MakeSampleIterator<MemorySampleIterator>(memory,
                                                           std::span<const model::Sample>());
}

}  // namespace espy::query::engine
