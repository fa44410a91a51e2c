#include "model/matcher.h"

#include "model/names.h"

namespace espy::model {

absl::StatusOr<Matcher> Matcher::Make(MatchType type, std::string name, std::string value) {
  std::shared_ptr<const re2::RE2> re;
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    options.set_dot_nl(true);
    re = std::make_shared<const re2::RE2>("^(?:" + value + ")$", options);
    if (!re->ok()) {
      return absl::InvalidArgumentError("invalid regular expression for label \"" + name +
                                        "\": " + re->error());
    }
  }
  return Matcher(type, std::move(name), std::move(value), std::move(re));
}

bool Matcher::Matches(std::string_view v) const {
  switch (type_) {
    case MatchType::kEqual:
      return v == value_;
    case MatchType::kNotEqual:
      return v != value_;
    case MatchType::kRegexMatch:
      return re2::RE2::FullMatch(v, *re_);
    case MatchType::kRegexNoMatch:
      return !re2::RE2::FullMatch(v, *re_);
  }
  return false;
}

std::string Matcher::ToString() const {
  static constexpr const char* kOps[] = {"=", "!=", "=~", "!~"};
  std::string out = FormatLabelName(name_) + kOps[static_cast<int>(type_)] + "\"";
  for (char c : value_) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace espy::model
