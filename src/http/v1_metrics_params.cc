// GET /v1/metrics parameters: see v1_metrics_params.h.
#include "http/v1_metrics_params.h"

#include <charconv>

#include "absl/container/flat_hash_map.h"
#include "base/fmt_absl.h"
#include "fmt/format.h"
#include "model/matcher.h"
#include "model/timestamp.h"
#include "query/promql/parser.h"

namespace espy::http {

namespace {

constexpr std::string_view kTimeForms =
    "want ISO-8601 (2016-01-01T10:00:00Z), epoch seconds, or a time relative to now: now, "
    "now-1h, -15m (units ms s m h d w y)";

std::string ReservedList() {
  std::string out;
  for (std::string_view p : kV1MetricsReservedParams) {
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

absl::Status Invalid(std::string_view key, std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("parameter \"{}\": {}", key, problem));
}

}  // namespace

absl::StatusOr<int64_t> ParseTimeParam(std::string_view key, std::string_view value,
                                       int64_t now_millis) {
  // "now", "now-D", "now+D", "-D": relative to the server's clock.
  std::string_view rest;
  bool relative = false;
  if (value.starts_with("now")) {
    relative = true;
    rest = value.substr(3);
    if (rest.empty()) return now_millis;
  } else if (value.starts_with('-')) {
    // "-15m" is relative; "-1.5" (epoch seconds before 1970) is not.
    absl::StatusOr<int64_t> d = query::promql::ParseDuration(value.substr(1));
    if (d.ok()) return now_millis - *d;
  }
  if (relative) {
    absl::StatusOr<int64_t> d = rest.size() > 1 && (rest[0] == '-' || rest[0] == '+')
                                    ? query::promql::ParseDuration(rest.substr(1))
                                    : absl::InvalidArgumentError("");
    if (!d.ok()) return Invalid(key, fmt::format("{}; got \"{}\"", kTimeForms, value));
    return rest[0] == '-' ? now_millis - *d : now_millis + *d;
  }
  absl::StatusOr<int64_t> t = model::ParseTimestamp(value);
  if (!t.ok()) return Invalid(key, fmt::format("{}; got \"{}\"", kTimeForms, value));
  return t;
}

absl::StatusOr<V1MetricsParams> ParseV1MetricsParams(const boost::urls::params_view& params,
                                                     int64_t now_millis, size_t default_limit,
                                                     size_t max_limit) {
  V1MetricsParams out;
  query::PageRequest& request = out.page;
  request.limit = default_limit;
  absl::flat_hash_map<std::string, int> seen;
  for (const auto& param : params) {
    std::string key = param.key, value = param.has_value ? std::string(param.value) : "";
    if (key != "match" && ++seen[key] > 1) {
      return absl::InvalidArgumentError(fmt::format("parameter \"{}\" given more than once", key));
    }
    if (key == "name") {
      if (value.empty()) return Invalid(key, "must not be empty");
      auto m = model::Matcher::Make(model::MatchType::kEqual, std::string(model::kMetricNameLabel),
                                    value);
      request.matchers.push_back(*std::move(m));
    } else if (key == "sts" || key == "ets") {
      absl::StatusOr<int64_t> t = ParseTimeParam(key, value, now_millis);
      if (!t.ok()) return t.status();
      (key == "sts" ? request.mint : request.maxt) = *t;
    } else if (key == "limit") {
      size_t limit = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || ptr != value.data() + value.size() || limit == 0) {
        return Invalid(
            key, fmt::format("want a positive integer (at most {}), got \"{}\"", max_limit, value));
      }
      request.limit = std::min(limit, max_limit);
    } else if (key == "step") {
      out.step = value;
    } else if (key == "agg") {
      out.agg = value;
    } else if (key == "cursor") {
      auto c = query::DecodeCursor(value);
      if (!c.ok()) return c.status();
      request.after = *c;
    } else if (key == "match") {
      absl::StatusOr<std::vector<model::Matcher>> ms = query::promql::ParseMetricSelector(value);
      if (!ms.ok()) {
        return Invalid(key, fmt::format("want a series selector such as {{host=~\"web.*\"}}: {}",
                                        ms.status().message()));
      }
      for (model::Matcher& m : *ms) request.matchers.push_back(std::move(m));
    } else {
      if (key.empty()) return absl::InvalidArgumentError("empty parameter name");
      if (value.empty()) return Invalid(key, "label filter needs a value");
      auto m = model::Matcher::Make(model::MatchType::kEqual, key, value);
      request.matchers.push_back(*std::move(m));
      out.label_filters.push_back(std::move(key));
    }
  }
  if (request.mint > request.maxt) {
    return absl::InvalidArgumentError("parameters \"sts\" and \"ets\": sts is after ets");
  }
  return out;
}

absl::Status CheckLabelFilters(const std::vector<std::string>& label_filters,
                               const std::function<bool(std::string_view)>& has_label) {
  for (const std::string& key : label_filters) {
    if (has_label(key)) continue;
    return Invalid(key, fmt::format("no series has a label \"{}\"; parameters other than {} "
                                    "filter by label (regex and negative filters: "
                                    "match={{label=~\"re\"}})",
                                    key, ReservedList()));
  }
  return absl::OkStatus();
}

}  // namespace espy::http
