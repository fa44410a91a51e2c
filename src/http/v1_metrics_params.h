// The query parameters of GET /v1/metrics: reserved ones (name, sts, ets,
// limit, cursor, step, agg, match) and label filters (every other key).
// Parsing is apart from the handler so each rule is tested on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/url/params_view.hpp"
#include "query/sample_pager.h"

namespace espy::http {

// Parameters with a meaning of their own; any other key is a label filter.
inline constexpr std::string_view kV1MetricsReservedParams[] = {"name",   "sts",  "ets", "limit",
                                                                "cursor", "step", "agg", "match"};

struct V1MetricsParams {
  // Matchers of name, label filters and match selectors, ANDed; the time
  // range, limit and cursor.
  query::PageRequest page;
  std::string step;  // "" when not given
  std::string agg;   // "" when not given
  // The keys used as exact label filters (`host=a`), in order.
  std::vector<std::string> label_filters;
};

// Parses every parameter; an error (InvalidArgument) names the parameter and
// says what it wants. Rules:
//   name         exact metric name, non-empty
//   sts, ets     inclusive bounds: a time ParseTimeParam accepts
//   limit        points per page, 1.. (above max_limit is lowered to it)
//   cursor       from a previous page's Link header
//   step, agg    kept as given (the step handler checks them)
//   match        a PromQL series selector, `{host=~"web.*",dc!="x"}` or
//                `cpu{host="a"}`; may repeat, every one must match
//   other=value  the label `other` equals `value` (non-empty)
// Keys other than match may appear once.
absl::StatusOr<V1MetricsParams> ParseV1MetricsParams(const boost::urls::params_view& params,
                                                     int64_t now_millis, size_t default_limit,
                                                     size_t max_limit);

// An absolute time (model::ParseTimestamp: ISO-8601 or epoch seconds) or one
// relative to `now_millis`: "now", "now-1h", "now+30s", "-15m", with
// Prometheus durations (units ms s m h d w y, largest first: "1h30m").
// `key` names the parameter in errors.
absl::StatusOr<int64_t> ParseTimeParam(std::string_view key, std::string_view value,
                                       int64_t now_millis);

// A label filter naming a label that no series has can only return nothing,
// which is nearly always a misspelt parameter (`nme=cpu`): an error naming
// the parameter and the reserved ones. `has_label` says whether any series
// has a label of that name.
absl::Status CheckLabelFilters(const std::vector<std::string>& label_filters,
                               const std::function<bool(std::string_view)>& has_label);

}  // namespace espy::http
