// Labels: a series' identity, a sorted set of name=value pairs with the metric
// name under "__name__", as in Prometheus. Sample and SeriesRef live here too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"

namespace espy::model {

inline constexpr std::string_view kMetricNameLabel = "__name__";

// A series id, dense from 1, stable across restarts (it is written to the WAL).
using SeriesRef = uint64_t;

struct Sample {
  int64_t ts = 0;  // milliseconds since the Unix epoch, UTC
  double value = 0;
};

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
  auto operator<=>(const Label&) const = default;
};

// Immutable after construction; thread-compatible. Names are unique and sorted.
class Labels {
 public:
  Labels() = default;
  // Sorts `labels` by name. REQUIRES: names are unique (parsers check this
  // and report the duplicate to the user).
  explicit Labels(std::vector<Label> labels);

  const std::vector<Label>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  // The value of `name`, or "" when absent.
  std::string_view Get(std::string_view name) const;
  std::string_view MetricName() const { return Get(kMetricNameLabel); }

  // Prometheus notation: cpu{host="a",region="eu"}.
  std::string ToString() const;
  // Bytes held by the strings (for memory accounting).
  size_t ByteSize() const;

  bool operator==(const Labels&) const = default;
  auto operator<=>(const Labels&) const = default;

  template <typename H>
  friend H AbslHashValue(H h, const Labels& l) {
    for (const Label& label : l.items_) h = H::combine(std::move(h), label.name, label.value);
    return H::combine(std::move(h), l.items_.size());
  }

 private:
  std::vector<Label> items_;
};

}  // namespace espy::model
