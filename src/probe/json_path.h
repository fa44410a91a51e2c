// JsonPath: the small JSONPath subset collectors use to find numbers in an
// API's answer: `$` (the root), `.key`, `["key"]`, `[N]`, and the wildcards
// `.*` and `[*]` (every member of an object or element of an array).
// Relative paths (for fields of a match) start at `.` or `[`; "." alone is
// the match itself.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"

namespace espy::probe {

// Immutable; thread-safe.
class JsonPath {
 public:
  // `relative`: the path must not start with `$`.
  static absl::StatusOr<JsonPath> Parse(std::string_view text, bool relative);

  // Calls `fn` for each value the path reaches, with the keys (or indexes, as
  // decimal text) the wildcards matched, in order.
  using Visitor =
      std::function<void(const boost::json::value&, const std::vector<std::string>& captures)>;
  void Select(const boost::json::value& root, const Visitor& fn) const;
  // The single value a wildcard-free path reaches, or null.
  const boost::json::value* Find(const boost::json::value& root) const;

  int wildcards() const { return wildcards_; }
  const std::string& text() const { return text_; }

 private:
  struct Step {
    enum class Kind { kKey, kIndex, kWildcard } kind;
    std::string key;
    size_t index = 0;
  };
  void Walk(const boost::json::value& v, size_t step, std::vector<std::string>& captures,
            const Visitor& fn) const;

  std::string text_;
  std::vector<Step> steps_;
  int wildcards_ = 0;
};

// A JSON value as a sample value: numbers, numeric strings ("64000.5"),
// booleans (1/0). Anything else is an error saying what was found.
absl::StatusOr<double> JsonNumber(const boost::json::value& v);

}  // namespace espy::probe
