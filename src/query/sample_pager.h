// SamplePager: the read behind GET /v1/metrics. Lists the samples of the
// selected series in (timestamp, series) order, one page at a time, with a
// keyset cursor: a page deep in a large result costs the same as the first,
// and pages stay stable while new data arrives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/labels.h"
#include "model/matcher.h"
#include "storage/api/querier.h"

namespace espy::query {

// The last point of a page: the next page starts strictly after it.
struct Cursor {
  int64_t ts = 0;
  model::SeriesRef ref = 0;
  bool operator==(const Cursor&) const = default;
};

// Opaque to clients: "<ts>_<ref>" in lower-case hex with a sign for ts.
std::string EncodeCursor(const Cursor& c);
absl::StatusOr<Cursor> DecodeCursor(const std::string& text);

struct PageRequest {
  std::vector<model::Matcher> matchers;  // none: every series
  int64_t mint = INT64_MIN;              // inclusive
  int64_t maxt = INT64_MAX;              // inclusive
  size_t limit = 10'000;
  std::optional<Cursor> after;
};

struct PagePoint {
  const model::Labels* labels;  // valid while the Querier read from lives
  model::SeriesRef ref;         // the series' storage::SeriesId
  model::Sample sample;
};

struct Page {
  std::vector<PagePoint> points;
  std::optional<Cursor> next;  // set when more points follow
};

// Reads through `querier` (whose range should cover the request's). Cost:
// one short read per matching series (S) to position it, then
// O(limit log S); samples are read in batches that grow while a series
// keeps contributing, so a page deep in a series costs about what the first
// does and a series that contributes nothing decodes little.
absl::StatusOr<Page> ReadPage(const storage::Querier& querier, const PageRequest& request);

}  // namespace espy::query
