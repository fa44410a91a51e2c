// Db's side of the storage interfaces (api/querier.h, api/appender.h): the
// Querier over the head (which covers the attached blocks) and the
// downsampled tiers. Which data answers a select, and what a deletion means
// for listings, is decided here, not by the readers.
#include <algorithm>
#include <memory_resource>

#include "absl/container/btree_set.h"
#include "fmt/format.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

// A range reaching this far both ways covers every sample there is (the
// Prometheus API's "no bound" values, ±2^62 ms, are inside it).
constexpr int64_t kAllMin = std::numeric_limits<int64_t>::min() / 2;
constexpr int64_t kAllMax = std::numeric_limits<int64_t>::max() / 2;

// Which bucket aggregate stands in for raw samples under `func`.
tier::Rollup RollupFor(std::string_view func) {
  using tier::Rollup;
  if (func == "min_over_time") return Rollup::kMin;
  if (func == "max_over_time") return Rollup::kMax;
  if (func == "sum_over_time") return Rollup::kSum;
  if (func == "count_over_time") return Rollup::kCount;
  return Rollup::kLast;
}

// The coarsest buckets a function over a range selector still gets right:
// the aggregating *_over_time functions need a bucket within the range,
// rate-like ones two points.
int64_t MaxResolution(const SelectHints& hints) {
  if (hints.range_ms <= 0) return INT64_MAX;
  if (hints.func.ends_with("_over_time")) return hints.range_ms;
  return hints.range_ms / 2;
}

// The series of the selected refs: labels from the head; samples from the
// head and blocks, or one rollup of a tier's buckets.
class DbSeriesSet final : public SeriesSet {
 public:
  DbSeriesSet(const Db* db, std::vector<model::SeriesRef> refs, int64_t mint, int64_t maxt,
              int level, tier::Rollup rollup)
      : db_(db), refs_(std::move(refs)), mint_(mint), maxt_(maxt), level_(level), rollup_(rollup) {}

  bool Next() override {
    if (pos_ >= refs_.size()) return false;
    ++pos_;
    return true;
  }
  const model::Labels& labels() const override { return db_->head().SeriesLabels(id()); }
  SeriesId id() const override { return refs_[pos_ - 1]; }
  absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) override {
    if (mint_ > maxt_) return 0;
    if (level_ == 0) return db_->head().Read(id(), mint_, maxt_, max, out);
    buckets_.clear();
    if (absl::Status s = db_->ReadBuckets(id(), level_, mint_, maxt_, &buckets_); !s.ok()) {
      return s;
    }
    const size_t n = std::min(max, buckets_.size());
    for (size_t i = 0; i < n; ++i) out->push_back({buckets_[i].ts, buckets_[i].Get(rollup_)});
    return n;
  }

 private:
  const Db* db_;
  std::vector<model::SeriesRef> refs_;
  size_t pos_ = 0;  // 1 + index of the current series
  int64_t mint_;
  int64_t maxt_;
  int level_;
  tier::Rollup rollup_;
  std::vector<tier::Bucket> buckets_;
};

// Raw samples of one series through head snapshots taken by timestamp (not
// index), so concurrent out-of-order inserts cannot make it skip or repeat a
// sample. A snapshot decodes lazily, so a batch costs about what it holds.
class DbSampleIterator final : public SampleIterator {
 public:
  DbSampleIterator(const head::Head* head, SeriesId id, int64_t mint, int64_t maxt,
                   std::pmr::memory_resource* memory)
      : head_(head), id_(id), mint_(mint), maxt_(maxt), snap_(memory), batch_(memory) {}

  absl::StatusOr<std::span<const model::Sample>> Next(size_t want) override {
    batch_.clear();
    batch_.reserve(want);
    while (batch_.size() < want) {
      if (loaded_) {
        if (snap_.Next()) {
          batch_.push_back(snap_.At());
          continue;
        }
        if (snap_.covered_maxt() >= maxt_) break;
      } else if (mint_ > maxt_) {
        break;
      }
      // Copying encoded chunks is cheap next to decoding them (lazy), and
      // fewer snapshots mean fewer lock round trips: copy a good run.
      const int64_t start = loaded_ ? snap_.covered_maxt() + 1 : mint_;
      head_->Snapshot(id_, start, maxt_, std::max<size_t>(want, 256), &snap_);
      loaded_ = true;
    }
    return std::span<const model::Sample>(batch_.data(), batch_.size());
  }

 private:
  const head::Head* head_;
  const SeriesId id_;
  const int64_t mint_;
  const int64_t maxt_;
  head::SeriesSnapshot snap_;
  bool loaded_ = false;
  std::pmr::vector<model::Sample> batch_;
};

class DbQuerier final : public storage::Querier {
 public:
  DbQuerier(const Db* db, int64_t mint, int64_t maxt) : Querier(mint, maxt), db_(db) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const override {
    const int level = Level(hints);
    if (hints.resolution > 0 && level == 0) {
      return absl::InvalidArgumentError(
          fmt::format("no downsampling tier has a resolution of {}ms", hints.resolution));
    }
    std::vector<model::SeriesRef> refs = MatchAny(sets);
    if (hints.sorted) db_->head().SortByLabels(&refs);
    return std::make_unique<DbSeriesSet>(db_, std::move(refs), std::max(hints.mint, mint()),
                                         std::min(hints.maxt, maxt()), level,
                                         RollupFor(hints.func));
  }

  int64_t Resolution(const SelectHints& hints) const override {
    const int level = Level(hints);
    return level == 0 ? 0 : db_->tiers()[level - 1].resolution_ms;
  }

  absl::StatusOr<std::vector<SeriesEntry>> Series(
      std::span<const std::vector<model::Matcher>> sets) const override {
    const head::Head& head = db_->head();
    std::vector<SeriesEntry> out;
    for (model::SeriesRef ref : WithSamples(MatchAny(sets))) {
      out.push_back({ref, &head.SeriesLabels(ref)});
    }
    std::sort(out.begin(), out.end(),
              [](const SeriesEntry& a, const SeriesEntry& b) { return *a.labels < *b.labels; });
    return out;
  }

  absl::StatusOr<std::vector<std::string>> LabelNames(
      std::span<const std::vector<model::Matcher>> sets) const override {
    return Collect(nullptr, sets);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, std::span<const std::vector<model::Matcher>> sets) const override {
    return Collect(&name, sets);
  }

  const model::Labels* Labels(SeriesId id) const override {
    const head::Head& head = db_->head();
    return head.Exists(id) ? &head.SeriesLabels(id) : nullptr;
  }

  SampleIteratorPtr Samples(SeriesId id, int64_t mint, int64_t maxt,
                            std::pmr::memory_resource* memory) const override {
    return MakeSampleIterator<DbSampleIterator>(memory, &db_->head(), id,
                                                std::max(mint, this->mint()),
                                                std::min(maxt, this->maxt()), memory);
  }

 private:
  // The tier level (0: raw) for these hints.
  int Level(const SelectHints& hints) const {
    if (hints.resolution < 0) {
      return db_->TierFor(std::max(hints.mint, mint()), hints.step_ms, MaxResolution(hints));
    }
    if (hints.resolution == 0) return 0;
    const auto& tiers = db_->tiers();
    for (size_t i = 0; i < tiers.size(); ++i) {
      if (tiers[i].resolution_ms == hints.resolution) return static_cast<int>(i) + 1;
    }
    return 0;
  }

  bool WholeRange() const { return mint() <= kAllMin && maxt() >= kAllMax; }

  // Refs of series matching any of the sets, ascending.
  std::vector<model::SeriesRef> MatchAny(std::span<const std::vector<model::Matcher>> sets) const {
    const head::Head& head = db_->head();
    if (sets.size() == 1) return head.Select(sets[0]);
    absl::btree_set<model::SeriesRef> refs;
    for (const auto& set : sets) {
      for (model::SeriesRef ref : head.Select(set)) refs.insert(ref);
    }
    return std::vector<model::SeriesRef>(refs.begin(), refs.end());
  }

  // The refs with a sample in range. Over the whole range the label index
  // says so, except for a series some deletion touched: it may have no
  // samples left (Prometheus, too, skips series whose chunks are all
  // deleted), so it is read.
  std::vector<model::SeriesRef> WithSamples(std::vector<model::SeriesRef> refs) const {
    const head::Head& head = db_->head();
    const bool whole = WholeRange();
    std::vector<model::Sample> buf;
    std::erase_if(refs, [&](model::SeriesRef ref) {
      if (whole && !head.HadDeletion(ref)) return false;
      buf.clear();
      return head.Read(ref, mint(), maxt(), 1, &buf) == 0;
    });
    return refs;
  }

  // LabelNames (name null) or LabelValues(*name).
  absl::StatusOr<std::vector<std::string>> Collect(
      const std::string_view* name, std::span<const std::vector<model::Matcher>> sets) const {
    const head::Head& head = db_->head();
    std::vector<std::string> result;
    // The label index is exact unless a deletion may have left series empty.
    if (sets.empty() && WholeRange() && head.num_series_with_deletions() == 0) {
      result = name ? head.LabelValues(*name) : head.LabelNames();
      std::sort(result.begin(), result.end());
      return result;
    }
    std::vector<std::vector<model::Matcher>> every;
    if (sets.empty()) {
      // Every series: a matcher on __name__ that accepts any non-empty name.
      auto any = model::Matcher::Make(model::MatchType::kRegexMatch,
                                      std::string(model::kMetricNameLabel), ".+");
      if (!any.ok()) return any.status();
      every.push_back({*std::move(any)});
      sets = every;
    }
    absl::btree_set<std::string> set;
    for (model::SeriesRef ref : WithSamples(MatchAny(sets))) {
      const model::Labels& l = head.SeriesLabels(ref);
      if (name) {
        std::string_view v = l.Get(*name);
        if (!v.empty()) set.insert(std::string(v));
      } else {
        for (const model::Label& x : l.items()) set.insert(x.name);
      }
    }
    result.assign(set.begin(), set.end());
    return result;
  }

  const Db* db_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<storage::Querier>> Db::Querier(int64_t mint, int64_t maxt) const {
  return std::make_unique<DbQuerier>(this, mint, maxt);
}

SeriesId Db::Lookup(const model::Labels& labels) const { return head_.Lookup(labels); }

}  // namespace espy::storage
