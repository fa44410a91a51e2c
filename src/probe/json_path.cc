#include "probe/json_path.h"

#include <charconv>

#include "fmt/format.h"

namespace espy::probe {

absl::StatusOr<JsonPath> JsonPath::Parse(std::string_view text, bool relative) {
  JsonPath path;
  path.text_ = std::string(text);
  auto bad = [&](size_t at, std::string_view what) {
    return absl::InvalidArgumentError(
        fmt::format("bad JSON path \"{}\" at character {}: {} (want e.g. {})", text, at + 1, what,
                    relative ? ".price or .data[0].name" : "$.data[*].price or $.prices.*"));
  };
  size_t i = 0;
  if (relative) {
    if (text.empty() || (text[0] != '.' && text[0] != '[')) {
      return bad(0, "a field path starts with . or [");
    }
    if (text == ".") return path;
  } else {
    if (text.empty() || text[0] != '$') return bad(0, "a path starts with $");
    i = 1;
  }
  while (i < text.size()) {
    if (text[i] == '.') {
      ++i;
      if (i < text.size() && text[i] == '*') {
        path.steps_.push_back({Step::Kind::kWildcard, "", 0});
        ++path.wildcards_;
        ++i;
        continue;
      }
      size_t end = i;
      while (end < text.size() && text[end] != '.' && text[end] != '[') ++end;
      if (end == i) return bad(i, "want a key after .");
      path.steps_.push_back({Step::Kind::kKey, std::string(text.substr(i, end - i)), 0});
      i = end;
    } else if (text[i] == '[') {
      ++i;
      if (i >= text.size()) return bad(i, "unclosed [");
      if (text[i] == '*') {
        if (i + 1 >= text.size() || text[i + 1] != ']') return bad(i + 1, "want ] after [*");
        path.steps_.push_back({Step::Kind::kWildcard, "", 0});
        ++path.wildcards_;
        i += 2;
      } else if (text[i] == '"' || text[i] == '\'') {
        char quote = text[i];
        size_t close = text.find(quote, i + 1);
        if (close == std::string_view::npos) return bad(i, "unclosed quoted key");
        if (close + 1 >= text.size() || text[close + 1] != ']') {
          return bad(close + 1, "want ] after a quoted key");
        }
        path.steps_.push_back(
            {Step::Kind::kKey, std::string(text.substr(i + 1, close - i - 1)), 0});
        i = close + 2;
      } else {
        size_t index = 0;
        auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), index);
        size_t end = ptr - text.data();
        if (ec != std::errc() || end >= text.size() || text[end] != ']') {
          return bad(i, "want [N], [*] or [\"key\"]");
        }
        path.steps_.push_back({Step::Kind::kIndex, "", index});
        i = end + 1;
      }
    } else {
      return bad(i, "want . or [");
    }
  }
  return path;
}

void JsonPath::Walk(const boost::json::value& v, size_t step, std::vector<std::string>& captures,
                    const Visitor& fn) const {
  if (step == steps_.size()) {
    fn(v, captures);
    return;
  }
  const Step& s = steps_[step];
  switch (s.kind) {
    case Step::Kind::kKey:
      if (const auto* obj = v.if_object()) {
        if (const auto* next = obj->if_contains(s.key)) Walk(*next, step + 1, captures, fn);
      }
      break;
    case Step::Kind::kIndex:
      if (const auto* arr = v.if_array(); arr && s.index < arr->size()) {
        Walk((*arr)[s.index], step + 1, captures, fn);
      }
      break;
    case Step::Kind::kWildcard:
      if (const auto* obj = v.if_object()) {
        for (const auto& kv : *obj) {
          captures.emplace_back(kv.key());
          Walk(kv.value(), step + 1, captures, fn);
          captures.pop_back();
        }
      } else if (const auto* arr = v.if_array()) {
        for (size_t i = 0; i < arr->size(); ++i) {
          captures.push_back(std::to_string(i));
          Walk((*arr)[i], step + 1, captures, fn);
          captures.pop_back();
        }
      }
      break;
  }
}

void JsonPath::Select(const boost::json::value& root, const Visitor& fn) const {
  std::vector<std::string> captures;
  Walk(root, 0, captures, fn);
}

const boost::json::value* JsonPath::Find(const boost::json::value& root) const {
  const boost::json::value* found = nullptr;
  Select(root, [&](const boost::json::value& v, const std::vector<std::string>&) {
    if (found == nullptr) found = &v;
  });
  return found;
}

absl::StatusOr<double> JsonNumber(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::int64:
      return static_cast<double>(v.get_int64());
    case boost::json::kind::uint64:
      return static_cast<double>(v.get_uint64());
    case boost::json::kind::double_:
      return v.get_double();
    case boost::json::kind::bool_:
      return v.get_bool() ? 1.0 : 0.0;
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      double d = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) return d;
      return absl::InvalidArgumentError(
          fmt::format("want a number, got the string \"{}\"",
                      std::string_view(s.data(), std::min<size_t>(s.size(), 40))));
    }
    case boost::json::kind::null:
      return absl::InvalidArgumentError("want a number, got null");
    case boost::json::kind::array:
      return absl::InvalidArgumentError("want a number, got an array");
    case boost::json::kind::object:
      return absl::InvalidArgumentError("want a number, got an object");
  }
  return absl::InvalidArgumentError("want a number");
}

}  // namespace espy::probe
