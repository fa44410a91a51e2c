// StepAggregator: a single pass over each series' samples, bucket by bucket.
#include "query/engine/step_aggregator.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"

namespace espy::query::engine {

absl::StatusOr<StepAgg> ParseStepAgg(std::string_view name) {
  if (name == "avg") return StepAgg::kAvg;
  if (name == "min") return StepAgg::kMin;
  if (name == "max") return StepAgg::kMax;
  if (name == "sum") return StepAgg::kSum;
  if (name == "count") return StepAgg::kCount;
  if (name == "last") return StepAgg::kLast;
  if (name == "rate") return StepAgg::kRate;
  return absl::InvalidArgumentError(fmt::format(
      "parameter \"agg\": want one of avg, min, max, sum, count, last, rate, got \"{}\"", name));
}

namespace {

double Reduce(StepAgg agg, const model::Sample* begin, const model::Sample* end,
              const model::Sample* before, int64_t step_ms) {
  double v = begin->value;
  switch (agg) {
    case StepAgg::kAvg:
    case StepAgg::kSum: {
      double sum = 0;
      for (const model::Sample* s = begin; s != end; ++s) sum += s->value;
      return agg == StepAgg::kSum ? sum : sum / static_cast<double>(end - begin);
    }
    case StepAgg::kMin:
      for (const model::Sample* s = begin; s != end; ++s) v = std::min(v, s->value);
      return v;
    case StepAgg::kMax:
      for (const model::Sample* s = begin; s != end; ++s) v = std::max(v, s->value);
      return v;
    case StepAgg::kCount:
      return static_cast<double>(end - begin);
    case StepAgg::kLast:
      return (end - 1)->value;
    case StepAgg::kRate: {
      double increase = 0;
      double prev = before != nullptr ? before->value : begin->value;
      for (const model::Sample* s = begin; s != end; ++s) {
        increase += s->value >= prev ? s->value - prev : s->value;  // a drop is a reset
        prev = s->value;
      }
      return increase / (static_cast<double>(step_ms) / 1000);
    }
  }
  return v;
}

}  // namespace

absl::StatusOr<Matrix> AggregateSteps(const Queryable& q, const StepRequest& r) {
  if (r.step_ms <= 0) {
    return absl::InvalidArgumentError("parameter \"step\": want a positive duration");
  }
  if (r.maxt < r.mint) return absl::InvalidArgumentError("sts is after ets");
  SelectHints hints;
  // One sample before the range lets rate see the first bucket's increase.
  hints.mint = r.agg == StepAgg::kRate ? r.mint - r.step_ms : r.mint;
  hints.maxt = r.maxt;
  hints.step_ms = r.step_ms;
  hints.range_ms = r.step_ms;
  auto set = q.Select(r.matchers, hints);
  if (!set.ok()) return set.status();
  Matrix out;
  size_t points = 0;
  std::vector<model::Sample> samples;
  while ((*set)->Next()) {
    samples.clear();
    auto n = (*set)->ReadSamples(SIZE_MAX, &samples);
    if (!n.ok()) return n.status();
    std::erase_if(samples, [](const model::Sample& s) { return IsStaleNaN(s.value); });
    Series series{(*set)->labels(), {}};
    const model::Sample* const first = samples.data();
    const model::Sample* const last = samples.data() + samples.size();
    const model::Sample* it = std::lower_bound(
        first, last, r.mint, [](const model::Sample& s, int64_t t) { return s.ts < t; });
    while (it != last) {
      int64_t bucket = r.mint + (it->ts - r.mint) / r.step_ms * r.step_ms;
      const model::Sample* end = it;
      while (end != last && end->ts < bucket + r.step_ms) ++end;
      const model::Sample* before = it != first ? it - 1 : nullptr;
      series.points.push_back(Point{bucket, Reduce(r.agg, it, end, before, r.step_ms)});
      it = end;
    }
    points += series.points.size();
    if (points > r.max_points) {
      return absl::InvalidArgumentError(fmt::format(
          "more than {} aggregated points; use a larger \"step\" or a shorter sts..ets range",
          r.max_points));
    }
    if (!series.points.empty()) out.push_back(std::move(series));
  }
  return out;
}

}  // namespace espy::query::engine
