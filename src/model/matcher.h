// Matcher: one label condition of a selector: =, !=, =~, !~ (RE2, anchored,
// linear time so user regexes cannot hang the server).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "re2/re2.h"

namespace espy::model {

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

// Immutable; thread-safe.
class Matcher {
 public:
  // Fails with InvalidArgument naming the label when the regex does not compile.
  static absl::StatusOr<Matcher> Make(MatchType type, std::string name, std::string value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

  // Whether a label value (empty for an absent label) satisfies the matcher.
  bool Matches(std::string_view label_value) const;
  // Whether the matcher accepts the empty value, i.e. series without the label.
  bool MatchesEmpty() const { return Matches(""); }

  std::string ToString() const;

 private:
  Matcher(MatchType type, std::string name, std::string value, std::shared_ptr<const re2::RE2> re)
      : type_(type), name_(std::move(name)), value_(std::move(value)), re_(std::move(re)) {}

  MatchType type_;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;  // shared: matchers are copied into queries
};

}  // namespace espy::model
