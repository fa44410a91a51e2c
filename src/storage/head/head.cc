#include "storage/head/head.h"

#include <algorithm>

#include "base/check.h"
#include "fmt/format.h"

namespace espy::storage::head {

Head::Head() = default;
Head::~Head() = default;

Head::MemSeries* Head::Get(model::SeriesRef ref) const {
  absl::ReaderMutexLock lock(&mu_);
  if (ref == 0 || ref > series_.size()) return nullptr;
  return series_[ref - 1].get();
}

model::SeriesRef Head::Lookup(const model::Labels& labels) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_labels_.find(labels);
  return it == by_labels_.end() ? 0 : (*it)->ref;
}

model::SeriesRef Head::AddLocked(model::SeriesRef ref, model::Labels labels) {
  if (ref > series_.size()) series_.resize(ref);
  auto series = std::make_unique<MemSeries>(ref, std::move(labels));
  postings_.Add(ref, series->labels);
  by_labels_.insert(series.get());
  series_[ref - 1] = std::move(series);
  num_series_.fetch_add(1, std::memory_order_relaxed);
  return ref;
}

model::SeriesRef Head::Create(model::Labels labels) {
  absl::MutexLock lock(&mu_);
  ESPY_DCHECK(!by_labels_.contains(labels)) << labels.ToString();
  return AddLocked(series_.size() + 1, std::move(labels));
}

absl::Status Head::Recover(model::SeriesRef ref, model::Labels labels) {
  absl::MutexLock lock(&mu_);
  if (ref == 0) return absl::DataLossError("series record with ref 0");
  if (ref <= series_.size() && series_[ref - 1] != nullptr) {
    if (series_[ref - 1]->labels == labels) return absl::OkStatus();
    return absl::DataLossError(fmt::format("series ref {} is {} but the WAL says {}", ref,
                                           series_[ref - 1]->labels.ToString(), labels.ToString()));
  }
  if (by_labels_.contains(labels)) {
    return absl::DataLossError(
        fmt::format("series {} recorded under two refs (second: {})", labels.ToString(), ref));
  }
  // Refs only grow, so the postings lists stay sorted.
  if (ref < series_.size()) {
    return absl::DataLossError(fmt::format("series ref {} out of order", ref));
  }
  AddLocked(ref, std::move(labels));
  return absl::OkStatus();
}

bool Head::Exists(model::SeriesRef ref) const { return Get(ref) != nullptr; }

void Head::Append(model::SeriesRef ref, int64_t ts, double value) {
  MemSeries* s = Get(ref);
  ESPY_CHECK(s != nullptr) << "append to unknown series " << ref;
  absl::MutexLock lock(&StripeFor(ref));
  std::vector<model::Sample>& v = s->samples;
  if (v.empty() || ts > v.back().ts) {
    v.push_back({ts, value});
  } else {
    auto it = std::lower_bound(v.begin(), v.end(), ts,
                               [](const model::Sample& a, int64_t t) { return a.ts < t; });
    if (it != v.end() && it->ts == ts) {
      it->value = value;
      return;
    }
    v.insert(it, {ts, value});
  }
  num_samples_.fetch_add(1, std::memory_order_relaxed);
}

index::Postings Head::Select(const std::vector<model::Matcher>& matchers) const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.Select(matchers);
}

const model::Labels& Head::SeriesLabels(model::SeriesRef ref) const {
  MemSeries* s = Get(ref);
  ESPY_CHECK(s != nullptr) << "unknown series " << ref;
  return s->labels;
}

size_t Head::Read(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t max,
                  std::vector<model::Sample>* out) const {
  MemSeries* s = Get(ref);
  if (s == nullptr || max == 0) return 0;
  absl::MutexLock lock(&StripeFor(ref));
  const std::vector<model::Sample>& v = s->samples;
  auto it = std::lower_bound(v.begin(), v.end(), mint,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  size_t n = 0;
  for (; it != v.end() && it->ts <= maxt && n < max; ++it, ++n) out->push_back(*it);
  return n;
}

std::vector<std::string> Head::LabelNames() const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.LabelNames();
}

std::vector<std::string> Head::LabelValues(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.LabelValues(name);
}

}  // namespace espy::storage::head
