// DbQueryable: series through the head's label index in label order; each
// series' samples from the head or, for downsampled reads, one rollup of a
// tier's buckets.
#include "query/engine/db_queryable.h"

#include <algorithm>

#include "fmt/format.h"

namespace espy::query::engine {
namespace {

// Which bucket aggregate stands in for raw samples under `func`.
storage::tier::Rollup RollupFor(std::string_view func) {
  using storage::tier::Rollup;
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

class DbSeriesSet : public SeriesSet {
 public:
  DbSeriesSet(const storage::Db* db, std::vector<model::SeriesRef> refs, const SelectHints& hints,
              int level)
      : db_(db),
        refs_(std::move(refs)),
        mint_(hints.mint),
        maxt_(hints.maxt),
        level_(level),
        rollup_(RollupFor(hints.func)) {}

  bool Next() override {
    if (pos_ >= refs_.size()) return false;
    ++pos_;
    return true;
  }
  const model::Labels& labels() const override { return db_->head().SeriesLabels(refs_[pos_ - 1]); }
  absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) override {
    if (level_ == 0) return db_->head().Read(refs_[pos_ - 1], mint_, maxt_, max, out);
    buckets_.clear();
    if (absl::Status s = db_->ReadBuckets(refs_[pos_ - 1], level_, mint_, maxt_, &buckets_);
        !s.ok()) {
      return s;
    }
    const size_t n = std::min(max, buckets_.size());
    for (size_t i = 0; i < n; ++i) out->push_back({buckets_[i].ts, buckets_[i].Get(rollup_)});
    return n;
  }

 private:
  const storage::Db* db_;
  std::vector<model::SeriesRef> refs_;
  size_t pos_ = 0;  // 1 + index of the current series
  int64_t mint_;
  int64_t maxt_;
  int level_;
  storage::tier::Rollup rollup_;
  std::vector<storage::tier::Bucket> buckets_;
};

}  // namespace

int DbQueryable::Level(const SelectHints& hints) const {
  if (hints.resolution < 0) return db_->TierFor(hints.mint, hints.step_ms, MaxResolution(hints));
  if (hints.resolution == 0) return 0;
  const auto& tiers = db_->tiers();
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (tiers[i].resolution_ms == hints.resolution) return static_cast<int>(i) + 1;
  }
  return 0;
}

int64_t DbQueryable::Resolution(const SelectHints& hints) const {
  const int level = Level(hints);
  return level == 0 ? 0 : db_->tiers()[level - 1].resolution_ms;
}

absl::StatusOr<std::unique_ptr<SeriesSet>> DbQueryable::Select(
    const std::vector<model::Matcher>& matchers, const SelectHints& hints) const {
  const int level = Level(hints);
  if (hints.resolution > 0 && level == 0) {
    return absl::InvalidArgumentError(
        fmt::format("no downsampling tier has a resolution of {}ms", hints.resolution));
  }
  std::vector<model::SeriesRef> refs = db_->head().Select(matchers);
  db_->head().SortByLabels(&refs);
  return std::make_unique<DbSeriesSet>(db_, std::move(refs), hints, level);
}

}  // namespace espy::query::engine
