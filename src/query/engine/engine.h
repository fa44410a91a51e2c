// Engine: evaluates PromQL (Prometheus 2.42 semantics) over a Queryable:
// instant and range queries, lookback and staleness, offset and @, range
// vectors and subqueries, every operator, aggregation and function of the
// parser's table. Evaluation follows Prometheus's engine: every node yields
// its value at each step of the query, series by series where possible.
//
// Errors (absl::Status):
//   InvalidArgument     bad query or parameters (Prometheus "bad_data"), e.g.
//                       "1:5: parse error: unexpected <by>"
//   FailedPrecondition  execution errors (Prometheus "execution"), e.g.
//                       "vector cannot contain metrics with the same labelset"
//   ResourceExhausted   too many samples loaded (also "execution" for the API)
//   DeadlineExceeded    the query ran longer than its timeout ("timeout")
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "query/engine/queryable.h"
#include "query/engine/value.h"
#include "query/promql/ast.h"

namespace espy::query::engine {

struct EngineOptions {
  // How far back a selector looks for the latest sample (Prometheus's
  // --query.lookback-delta).
  int64_t lookback_delta_ms = 5 * 60 * 1000;
  // Samples a query may hold in memory at once; more fails the query rather
  // than the server (Prometheus's --query.max-samples).
  int64_t max_samples = 50'000'000;
  // Longest a query may run (Prometheus's --query.timeout).
  std::chrono::milliseconds timeout = std::chrono::minutes(2);
  // Most points a range query may return per series (Prometheus's API limit).
  int64_t max_points_per_series = 11'000;
  // Step of subqueries written without one ("foo[1h:]"), as Prometheus's
  // global evaluation_interval.
  int64_t default_subquery_step_ms = 60 * 1000;
};

// Thread-safe: queries may run concurrently; each has its own evaluator.
class Engine {
 public:
  explicit Engine(EngineOptions options = {}) : options_(options) {}

  const EngineOptions& options() const { return options_; }

  // Evaluates `query` at `time_ms`.
  absl::StatusOr<QueryResult> InstantQuery(const Queryable& q, std::string_view query,
                                           int64_t time_ms) const;
  // Evaluates `query` at start, start+step, ... <= end; the result is a
  // matrix sorted by labels. The expression must be a scalar or an instant
  // vector.
  absl::StatusOr<QueryResult> RangeQuery(const Queryable& q, std::string_view query,
                                         int64_t start_ms, int64_t end_ms, int64_t step_ms) const;

  // The same over an already parsed expression.
  absl::StatusOr<QueryResult> Exec(const Queryable& q, const promql::Expr& expr, int64_t start_ms,
                                   int64_t end_ms, int64_t step_ms) const;

 private:
  EngineOptions options_;
};

// True for execution errors the API reports as "execution" (HTTP 422).
bool IsExecutionError(const absl::Status& s);

}  // namespace espy::query::engine
