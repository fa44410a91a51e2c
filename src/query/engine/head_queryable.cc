// HeadQueryable: selects through the head's label index, orders the series by
// labels (the engine's contract), reads samples on demand.
#include "query/engine/head_queryable.h"

namespace espy::query::engine {
namespace {

class HeadSeriesSet : public SeriesSet {
 public:
  HeadSeriesSet(const storage::head::Head* head, std::vector<model::SeriesRef> refs,
                const SelectHints& hints)
      : head_(head), refs_(std::move(refs)), mint_(hints.mint), maxt_(hints.maxt) {}

  bool Next() override {
    if (pos_ >= refs_.size()) return false;
    ++pos_;
    return true;
  }
  const model::Labels& labels() const override { return head_->SeriesLabels(refs_[pos_ - 1]); }
  absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) override {
    return head_->Read(refs_[pos_ - 1], mint_, maxt_, max, out);
  }

 private:
  const storage::head::Head* head_;
  std::vector<model::SeriesRef> refs_;
  size_t pos_ = 0;  // 1 + index of the current series
  int64_t mint_;
  int64_t maxt_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SeriesSet>> HeadQueryable::Select(
    const std::vector<model::Matcher>& matchers, const SelectHints& hints) const {
  std::vector<model::SeriesRef> refs = head_->Select(matchers);
  head_->SortByLabels(&refs);
  return std::make_unique<HeadSeriesSet>(head_, std::move(refs), hints);
}

}  // namespace espy::query::engine
