// Internals of the engine shared by the evaluator (engine.cc) and the
// function implementations (functions.cc): label helpers, the execution
// error the evaluator unwinds with, and the PromQL function bodies.
// Not part of the engine's public API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "query/engine/value.h"
#include "query/promql/ast.h"

namespace espy::query::engine::internal {

// Thrown inside one query's evaluation and caught by Engine::Exec, which
// returns its status: an evaluation error ends the whole query (as
// Prometheus's panic/recover), so no partial result ever escapes.
struct EvalError {
  absl::Status status;
};
// Throws an execution error (FailedPrecondition).
[[noreturn]] void ThrowExec(std::string message);

// Delayed name removal (as Prometheus 3 offers it behind a flag;
// VictoriaMetrics answers such queries too): an operation that drops the metric name keeps it
// under this label, which no query can name, until the query's result is
// made. Series that differ only by name so stay apart through the query,
// and sum(rate({__name__=~"a|b"}[5m])) adds the two rates instead of
// failing on "vector cannot contain metrics with the same labelset". A
// result that still holds two such series fails as it did before.
inline constexpr std::string_view kDroppedNameLabel = "\x01__name__";

// `l` without its metric name (kept as kDroppedNameLabel until the end).
model::Labels DropMetricName(const model::Labels& l);
// The label sets of a query's result: the dropped names removed, and the
// series they made equal merged; fails if two of them have a point at the
// same time (as Prometheus fails on two such series at one step).
void FinishDroppedNames(Matrix* m);
// Only the labels named in `names`.
model::Labels KeepLabels(const model::Labels& l, const std::vector<std::string>& names);
// All labels except those named in `names`.
model::Labels DropLabels(const model::Labels& l, const std::vector<std::string>& names);
// `l` with name=value; an empty value removes the label.
model::Labels SetLabel(const model::Labels& l, std::string_view name, std::string_view value);
// Whether `name` is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsValidLabelName(std::string_view name);
// Whether two elements share a label set.
bool ContainsSameLabelset(const Vector& v);
bool ContainsSameLabelset(const Matrix& m);

// Go's math.Max/math.Min: NaN if either argument is NaN.
double GoMax(double a, double b);
double GoMin(double a, double b);
// Prometheus's quantile over values (sorts them; NaN counts as smallest).
double Quantile(double q, std::vector<double> values);

// What a range-vector function sees for one series at one step.
struct RangeFnArgs {
  int64_t ts = 0;           // evaluation time of the step
  int64_t range_start = 0;  // window [range_start, range_end], inclusive
  int64_t range_end = 0;
  int64_t range_ms = 0;
  std::vector<double> scalars;  // the call's arguments by position (0 for non-scalars)
};
// The value of a range-vector function (rate, *_over_time, ...) over the
// points of one series in the window, or nullopt for no output. `name` is the
// function name; absent_over_time returns 1 whenever there are points.
std::optional<double> EvalRangeFunction(std::string_view name, std::span<const Point> points,
                                        const RangeFnArgs& args);

// Per-call state kept across the steps of one evaluation (compiled regexes).
struct InstantFnState {
  struct Regex;
  std::shared_ptr<Regex> regex;
  ~InstantFnState();
};
// The value of an instant-vector function at time `ts`. `args` holds one
// vector per argument (scalars are one-element vectors, strings empty).
Vector EvalInstantFunction(const promql::Call& call, std::vector<Vector>& args, int64_t ts,
                           InstantFnState* state);

// The labels absent()/absent_over_time() give their output for `arg`.
model::Labels LabelsForAbsent(const promql::Expr* arg);

// The expression inside any parentheses.
const promql::Expr* Unparen(const promql::Expr* e);

}  // namespace espy::query::engine::internal
