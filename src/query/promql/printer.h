// PromQL printer: the canonical text of an expression, as Prometheus 2.42's
// printer.go writes it (what /api/v1/format_query returns), e.g.
//   sum by (job) (rate(http_requests_total{job="api"}[5m]))
// Names PromQL cannot write bare are quoted as Prometheus 3 prints them:
//   sum by ("my-label") ({"my-label"="x",__name__="cpu usage%"})
// Parsing the printed text gives the same tree again.
#pragma once

#include <cstdint>
#include <string>

#include "query/promql/ast.h"

namespace espy::query::promql {

std::string ToString(const Expr& expr);

// A Prometheus duration string: 1h30m, 5m, 90d, 2w, 1y, 1s500ms, 0s.
// Years and weeks are used only when they divide the duration exactly.
// Negative durations get a leading '-'.
std::string FormatDuration(int64_t ms);

// A float as Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits
// that read back exactly, never an exponent; +Inf, -Inf, NaN.
std::string FormatNumber(double v);
// FormatNumber(v) appended to *out, without allocating.
void AppendNumber(double v, std::string* out);

}  // namespace espy::query::promql
