// PromQL parser: a hand-written recursive-descent parser with precedence
// climbing that accepts what Prometheus 2.42's yacc grammar accepts, builds
// the AST of ast.h and type-checks it as Prometheus's checkAST does. It also
// takes Prometheus 3's quoted names, for names a JSON write may carry that
// PromQL cannot write bare: {"cpu usage%", "my-label"="x"}, by ("my-label").
//
// Errors are InvalidArgument and read like Prometheus's:
//   1:14: parse error: unexpected <by>
//   1:1: parse error: expected type range vector in call to function "rate", got instant vector
// (line:column of the offending byte, both from 1). Only the first error is
// reported.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/matcher.h"
#include "query/promql/ast.h"

namespace espy::query::promql {

// Parses and type-checks a whole PromQL expression. Thread-safe.
absl::StatusOr<ExprPtr> ParseExpr(std::string_view input);

// Parses a series selector as given in match[] parameters: `up`,
// `up{job="api"}`, `{__name__=~"http_.*"}`. Like Prometheus, it does not
// require a non-empty matcher; callers that need one check it themselves.
absl::StatusOr<std::vector<model::Matcher>> ParseMetricSelector(std::string_view input);

// Parses a Prometheus duration ("1h30m", "5m", "1y", "2w", "1d", "100ms",
// "0") into milliseconds. Units must come in order y w d h m s ms, each at
// most once. Errors: not a valid duration string: "5m1h"; duration out of range.
absl::StatusOr<int64_t> ParseDuration(std::string_view text);

}  // namespace espy::query::promql
