// StepAggregator: one aggregated point per series per step, for GET
// /v1/metrics?step=&agg= (charts of long ranges without shipping every raw
// sample). Reads through the Queryable interface like the PromQL engine.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/engine/queryable.h"
#include "query/engine/value.h"

namespace espy::query::engine {

enum class StepAgg { kAvg, kMin, kMax, kSum, kCount, kLast, kRate };

// "avg", "min", "max", "sum", "count", "last", "rate"; InvalidArgument
// naming the accepted values otherwise.
absl::StatusOr<StepAgg> ParseStepAgg(std::string_view name);

struct StepRequest {
  std::vector<model::Matcher> matchers;
  int64_t mint = 0;  // first bucket starts here (inclusive)
  int64_t maxt = 0;  // inclusive
  int64_t step_ms = 0;
  StepAgg agg = StepAgg::kAvg;
  // Most points (series x buckets with data) to return; more is an error
  // rather than a silent cut.
  size_t max_points = 100'000;
};

// For each series (in label order), a point per bucket [mint + k*step,
// mint + (k+1)*step) that holds samples, stamped with the bucket start.
// Staleness markers are skipped. kRate is the reset-aware increase within
// the bucket (from the last sample before it when there is one) per second
// of step. Thread-safe (reads only).
absl::StatusOr<Matrix> AggregateSteps(const Queryable& q, const StepRequest& request);

}  // namespace espy::query::engine
