// ForwardingQuerier: a Querier that passes every call to another one, for
// wrappers that change or watch a few calls (tests record select hints,
// inject writes between reads) and leave the rest alone.
#pragma once

#include "storage/api/querier.h"

namespace espy::storage {

// Thread-safe if the inner Querier is; "inner" must outlive it.
class ForwardingQuerier : public Querier {
 public:
  explicit ForwardingQuerier(const Querier* inner)
      : Querier(inner->mint(), inner->maxt()), inner_(inner) {}

  absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const override {
    return inner_->SelectAny(sets, hints);
  }
  int64_t Resolution(const SelectHints& hints) const override { return inner_->Resolution(hints); }
  absl::StatusOr<std::vector<SeriesEntry>> Series(
      std::span<const std::vector<model::Matcher>> sets) const override {
    return inner_->Series(sets);
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(
      std::span<const std::vector<model::Matcher>> sets) const override {
    return inner_->LabelNames(sets);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, std::span<const std::vector<model::Matcher>> sets) const override {
    return inner_->LabelValues(name, sets);
  }
  const model::Labels* Labels(SeriesId id) const override { return inner_->Labels(id); }
  SampleIteratorPtr Samples(SeriesId id, int64_t mint, int64_t maxt,
                            std::pmr::memory_resource* memory) const override {
    return inner_->Samples(id, mint, maxt, memory);
  }

 protected:
  const Querier* inner() const { return inner_; }

 private:
  const Querier* inner_;
};

}  // namespace espy::storage
