// The values a PromQL evaluation produces: points, series, instant vectors,
// matrices, and a query's result, as Prometheus 2.42's promql/value.go.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "model/labels.h"
#include "model/sample_batch.h"
#include "query/promql/ast.h"

namespace espy::query::engine {

using model::IsStaleNaN;
using model::kStaleNaNBits;
using model::StaleNaN;

struct Point {
  int64_t t = 0;  // milliseconds
  double v = 0;
};

// One series of a matrix. Thread-compatible, like every type here.
struct Series {
  model::Labels metric;
  std::vector<Point> points;  // ascending t
};
using Matrix = std::vector<Series>;

// One element of an instant vector.
struct Sample {
  model::Labels metric;
  int64_t t = 0;
  double v = 0;
};
using Vector = std::vector<Sample>;

// What a query returns. `type` says which member holds the answer:
// kScalar: scalar/time, kString: str/time, kVector: vector, kMatrix: matrix.
struct QueryResult {
  promql::ValueType type = promql::ValueType::kNone;
  double scalar = 0;
  std::string str;
  int64_t time = 0;  // evaluation time of scalars and strings
  Vector vector;
  Matrix matrix;
};

}  // namespace espy::query::engine
