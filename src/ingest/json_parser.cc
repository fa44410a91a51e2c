// The JSON metrics parser, on simdjson's On-Demand API: it reads each value
// exactly once and keeps the raw text of numbers, which label values need
// ({"port": 8080} is the label port="8080" as written, not as re-printed).
#include "ingest/json_parser.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "ingest/bad_input.h"
#include "model/timestamp.h"
#include "simdjson.h"

namespace espy::ingest {

namespace {

namespace ondemand = simdjson::ondemand;
using ondemand::json_type;

constexpr std::string_view kNameKey = "name";
constexpr std::string_view kValueKey = "value";
constexpr std::string_view kTsKey = "ts";

std::string_view TypeName(json_type type) {
  switch (type) {
    case json_type::array:
      return "an array";
    case json_type::object:
      return "an object";
    case json_type::number:
      return "a number";
    case json_type::string:
      return "a string";
    case json_type::boolean:
      return "a boolean";
    case json_type::null:
      return "null";
  }
  return "an unknown value";
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

inline bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// simdjson's raw tokens keep the whitespace that follows them.
std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Equality for the short strings keys and labels mostly are, without a call
// to memcmp for each.
inline bool ShortEq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  constexpr size_t kShort = 16;
  if (a.size() > kShort) return std::memcmp(a.data(), b.data(), a.size()) == 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

bool IsBlankLine(std::string_view s) {
  for (char c : s) {
    if (!IsBlank(c)) return false;
  }
  return true;
}

// RFC 8259's number grammar; On-Demand does not check a number it is not
// asked to convert, and label values are kept as text, unconverted.
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  const auto digits = [&] {
    const size_t start = i;
    while (i < n && IsDigit(s[i])) ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

bool HasExponent(std::string_view number) {
  for (char c : number) {
    if (c == 'e' || c == 'E') return true;
  }
  return false;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// A value given as a string: the whole string must be one number: optional
// sign, decimal digits with an optional point and exponent, or NaN / Inf /
// +Inf / -Inf in any case. No whitespace, hex or trailing text.
absl::StatusOr<double> ParseNumericString(std::string_view s) {
  if (EqualsIgnoreCase(s, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (EqualsIgnoreCase(s, "inf") || EqualsIgnoreCase(s, "+inf")) {
    return std::numeric_limits<double>::infinity();
  }
  if (EqualsIgnoreCase(s, "-inf")) return -std::numeric_limits<double>::infinity();
  std::string_view body = s;
  if (!body.empty() && body[0] == '+') body.remove_prefix(1);
  // std::from_chars also takes "inf", "nan(...)" and the like; allow only
  // decimal notation through.
  size_t i = body.empty() || body[0] != '-' ? 0 : 1;
  size_t mantissa_digits = 0;
  for (; i < body.size() && IsDigit(body[i]); ++i) ++mantissa_digits;
  if (i < body.size() && body[i] == '.') {
    for (++i; i < body.size() && IsDigit(body[i]); ++i) ++mantissa_digits;
  }
  bool ok = mantissa_digits > 0;
  if (ok && i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    const size_t start = i;
    while (i < body.size() && IsDigit(body[i])) ++i;
    ok = i > start;
  }
  double value = 0;
  if (ok && i == body.size()) {
    auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
    if (ec == std::errc() && end == body.data() + body.size()) return value;
    if (ec == std::errc::result_out_of_range) {
      return absl::InvalidArgumentError(
          fmt::format("number \"{}\" is out of the range of a double", s));
    }
  }
  constexpr size_t kMaxQuoted = 64;
  return absl::InvalidArgumentError(
      fmt::format("want a number or a numeric string (\"42\", \"1e3\", \"NaN\", \"+Inf\"), got "
                  "\"{}\"{}",
                  s.substr(0, kMaxQuoted), s.size() > kMaxQuoted ? "..." : ""));
}

// A key as it may appear in an error's field (at most 64 bytes).
std::string DisplayKey(std::string_view key) {
  constexpr size_t kMaxShown = 64;
  if (key.size() <= kMaxShown) return std::string(key);
  return fmt::format("{}...", key.substr(0, kMaxShown));
}

// An item's labels in name order, as pointers into its scratch labels
// (sorting pointers is cheaper than sorting strings).
struct SortedRefs {
  const model::Label* const* refs;
  size_t size;

  template <typename H>
  friend H AbslHashValue(H h, const SortedRefs& labels) {
    for (size_t i = 0; i < labels.size; ++i) {
      h = H::combine(std::move(h), labels.refs[i]->name, labels.refs[i]->value);
    }
    return H::combine(std::move(h), labels.size);
  }
};

bool SameLabels(const SortedRefs& a, const std::vector<model::Label>& b) {
  if (a.size != b.size()) return false;
  for (size_t i = 0; i < a.size; ++i) {
    if (!ShortEq(a.refs[i]->value, b[i].value) || !ShortEq(a.refs[i]->name, b[i].name)) {
      return false;
    }
  }
  return true;
}

// Finds series already in the batch by their labels, so a body that sends one
// series many times stores (and validates) its labels once. Entries keep
// their hash so that growing the table does not rehash label strings.
struct SeriesEntry {
  size_t hash;
  uint32_t index;  // into Batch::series
};
struct SeriesProbe {
  size_t hash;
  SortedRefs labels;
};
struct SeriesHash {
  using is_transparent = void;
  size_t operator()(const SeriesEntry& e) const { return e.hash; }
  size_t operator()(const SeriesProbe& p) const { return p.hash; }
};
struct SeriesEq {
  using is_transparent = void;
  const std::vector<model::Labels>* series;
  const std::vector<model::Label>& Items(const SeriesEntry& e) const {
    return (*series)[e.index].items();
  }
  bool operator()(const SeriesEntry& a, const SeriesEntry& b) const {
    return a.hash == b.hash && Items(a) == Items(b);
  }
  bool operator()(const SeriesProbe& a, const SeriesEntry& b) const {
    return a.hash == b.hash && SameLabels(a.labels, Items(b));
  }
  bool operator()(const SeriesEntry& a, const SeriesProbe& b) const { return (*this)(b, a); }
};

// Turns parsed items into the batch. Single-threaded; lives for one call.
class ItemParser {
 public:
  ItemParser(Batch* batch, int64_t now_millis, const Limits& limits)
      : batch_(batch),
        now_millis_(now_millis),
        limits_(limits),
        series_index_(0, SeriesHash{}, SeriesEq{&batch->series}) {}

  // One element of the top-level array, or an NDJSON line's value.
  template <typename Value>
  absl::Status ParseItem(Value& value, int64_t item) {
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(item, "", error);
    if (type != json_type::object) {
      return MakeBadInput(item, "", fmt::format("want a JSON object, got {}", TypeName(type)));
    }
    ondemand::object object;
    if (auto error = value.get_object().get(object)) return Malformed(item, "", error);
    return ParseObject(object, item);
  }

  static absl::Status Malformed(int64_t item, std::string_view field, simdjson::error_code error) {
    return MakeBadInput(item, field,
                        fmt::format("malformed JSON: {}", simdjson::error_message(error)));
  }

 private:
  absl::Status ParseObject(ondemand::object& object, int64_t item) {
    keys_.clear();
    // labels_ keeps its strings between items so their buffers are reused;
    // only the first num_labels_ are this item's.
    num_labels_ = 0;
    model::Label& name_label = NextLabel();  // slot 0, never reordered
    if (name_label.name.empty()) name_label.name.assign(model::kMetricNameLabel);
    bool has_name = false;
    bool has_value = false;
    double sample_value = 0;
    int64_t ts = now_millis_;
    for (auto field_or : object) {
      ondemand::field field;
      if (auto error = std::move(field_or).get(field)) return Malformed(item, "", error);
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) return Malformed(item, "", error);
      for (std::string_view seen : keys_) {
        if (ShortEq(seen, key)) return MakeBadInput(item, DisplayKey(key), "duplicate key");
      }
      keys_.push_back(key);
      ondemand::value& value = field.value();
      if (ShortEq(key, kNameKey)) {
        has_name = true;
        ESPY_RETURN_IF_ERROR(ParseName(value, item, &labels_[0].value));
      } else if (ShortEq(key, kValueKey)) {
        has_value = true;
        ESPY_RETURN_IF_ERROR(ParseValue(value, item, &sample_value));
      } else if (ShortEq(key, kTsKey)) {
        ESPY_RETURN_IF_ERROR(ParseTs(value, item, &ts));  // absent: now
      } else {
        if (key.size() >= 2 && key[0] == '_' && key[1] == '_') {
          return MakeBadInput(item, DisplayKey(key),
                              "label names starting with \"__\" are reserved");
        }
        // Checked here, not only in ValidateLabels, so that a huge object
        // cannot make the duplicate-key scan quadratic.
        if (num_labels_ >= limits_.max_labels_per_series) {
          return MakeBadInput(item, "",
                              fmt::format("too many labels: at most {} allowed per series "
                                          "(name included)",
                                          limits_.max_labels_per_series));
        }
        model::Label& label = NextLabel();
        // Bodies repeat their label names item after item.
        if (!ShortEq(label.name, key)) label.name.assign(key);
        ESPY_RETURN_IF_ERROR(ParseLabelValue(value, item, key, &label.value));
      }
    }
    if (!has_name) return MakeBadInput(item, kNameKey, "required");
    if (!has_value) return MakeBadInput(item, kValueKey, "required");
    ESPY_RETURN_IF_ERROR(ValidateTimestamp(ts, now_millis_, limits_, item));
    // Sorted as model::Labels sorts them, so equal sets compare equal.
    refs_.clear();
    for (size_t i = 0; i < num_labels_; ++i) refs_.push_back(&labels_[i]);
    // Insertion sort: items have a handful of labels. Names mostly differ in
    // their first byte, which spares most string compares.
    for (size_t i = 1; i < refs_.size(); ++i) {
      const model::Label* label = refs_[i];
      size_t j = i;
      for (; j > 0 && NameLess(*label, *refs_[j - 1]); --j) refs_[j] = refs_[j - 1];
      refs_[j] = label;
    }
    const SortedRefs sorted{refs_.data(), refs_.size()};
    const SeriesProbe probe{absl::HashOf(sorted), sorted};
    uint32_t series;
    if (auto it = series_index_.find(probe); it != series_index_.end()) {
      series = it->index;  // validated when first seen
    } else {
      std::vector<model::Label> items;
      items.reserve(refs_.size());
      for (const model::Label* label : refs_) items.push_back(*label);
      model::Labels labels(std::move(items));
      ESPY_RETURN_IF_ERROR(ValidateLabels(labels, limits_, item));
      series = batch_->AddSeries(std::move(labels));
      series_index_.insert(SeriesEntry{probe.hash, series});
    }
    batch_->Add(series, ts, sample_value);
    return absl::OkStatus();
  }

  static bool NameLess(const model::Label& a, const model::Label& b) {
    if (!a.name.empty() && !b.name.empty() && a.name[0] != b.name[0]) {
      return static_cast<unsigned char>(a.name[0]) < static_cast<unsigned char>(b.name[0]);
    }
    return a.name < b.name;
  }

  model::Label& NextLabel() {
    if (num_labels_ == labels_.size()) labels_.emplace_back();
    return labels_[num_labels_++];
  }

  static absl::Status ParseName(ondemand::value& value, int64_t item, std::string* out) {
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(item, kNameKey, error);
    if (type != json_type::string) {
      return MakeBadInput(item, kNameKey,
                          fmt::format("want a non-empty string, got {}", TypeName(type)));
    }
    std::string_view name;
    if (auto error = value.get_string().get(name)) return Malformed(item, kNameKey, error);
    if (name.empty()) return MakeBadInput(item, kNameKey, "want a non-empty string, got \"\"");
    out->assign(name);
    return absl::OkStatus();
  }

  static absl::Status ParseValue(ondemand::value& value, int64_t item, double* out) {
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(item, kValueKey, error);
    if (type == json_type::number) {
      const std::string_view raw = TrimTrailingSpace(value.raw_json_token());
      if (auto error = value.get_double().get(*out)) {
        if (IsJsonNumber(raw)) {
          return MakeBadInput(item, kValueKey,
                              fmt::format("number {} is out of the range of a double", raw));
        }
        return Malformed(item, kValueKey, error);
      }
      return absl::OkStatus();
    }
    if (type == json_type::string) {
      std::string_view text;
      if (auto error = value.get_string().get(text)) return Malformed(item, kValueKey, error);
      absl::StatusOr<double> number = ParseNumericString(text);
      if (!number.ok())
        return MakeBadInput(item, kValueKey, std::string(number.status().message()));
      *out = *number;
      return absl::OkStatus();
    }
    return MakeBadInput(item, kValueKey,
                        fmt::format("want a number or a numeric string, got {}", TypeName(type)));
  }

  static absl::Status ParseTs(ondemand::value& value, int64_t item, int64_t* out) {
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(item, kTsKey, error);
    absl::StatusOr<int64_t> ts;
    if (type == json_type::number) {
      const std::string_view raw = TrimTrailingSpace(value.raw_json_token());
      double seconds;
      if (IsJsonNumber(raw) && !HasExponent(raw)) {
        // Plain decimals convert exactly, without binary rounding; the token
        // is left for On-Demand to skip.
        ts = model::ParseTimestamp(raw);
      } else if (auto error = value.get_double().get(seconds)) {
        if (!IsJsonNumber(raw)) return Malformed(item, kTsKey, error);
        ts = absl::InvalidArgumentError(
            fmt::format("epoch seconds {} are outside years 0000-9999", raw));
      } else {
        ts = model::EpochSecondsToMillis(seconds);
      }
    } else if (type == json_type::string) {
      std::string_view text;
      if (auto error = value.get_string().get(text)) return Malformed(item, kTsKey, error);
      ts = model::ParseTimestamp(text);
    } else {
      return MakeBadInput(item, kTsKey,
                          fmt::format("want an ISO-8601 string or epoch seconds, got {}; "
                                      "omit ts to mean now",
                                      TypeName(type)));
    }
    if (!ts.ok()) return MakeBadInput(item, kTsKey, std::string(ts.status().message()));
    *out = *ts;
    return absl::OkStatus();
  }

  static absl::Status ParseLabelValue(ondemand::value& value, int64_t item, std::string_view key,
                                      std::string* out) {
    json_type type;
    if (auto error = value.type().get(type)) return Malformed(item, DisplayKey(key), error);
    switch (type) {
      case json_type::string: {
        std::string_view text;
        if (auto error = value.get_string().get(text)) {
          return Malformed(item, DisplayKey(key), error);
        }
        out->assign(text);
        return absl::OkStatus();
      }
      case json_type::number: {
        // Kept as written; On-Demand skips the token unconverted.
        const std::string_view raw = TrimTrailingSpace(value.raw_json_token());
        if (!IsJsonNumber(raw)) {
          return Malformed(item, DisplayKey(key), simdjson::NUMBER_ERROR);
        }
        out->assign(raw);
        return absl::OkStatus();
      }
      case json_type::boolean: {
        bool b;
        if (auto error = value.get_bool().get(b)) return Malformed(item, DisplayKey(key), error);
        out->assign(b ? "true" : "false");
        return absl::OkStatus();
      }
      default:
        return MakeBadInput(item, DisplayKey(key),
                            fmt::format("label values must be strings, numbers or booleans, got {}",
                                        TypeName(type)));
    }
  }

  Batch* batch_;
  const int64_t now_millis_;
  const Limits& limits_;
  absl::flat_hash_set<SeriesEntry, SeriesHash, SeriesEq> series_index_;
  // Scratch for the current item; keys point into the parser's string buffer.
  std::vector<std::string_view> keys_;
  std::vector<model::Label> labels_;
  size_t num_labels_ = 0;
  std::vector<const model::Label*> refs_;
};

// `at` is a byte offset into the body, or into the NDJSON line of `item`.
absl::Status TrailingData(int64_t item, size_t at) {
  return MakeBadInput(item, "",
                      fmt::format("malformed JSON: trailing data after the first JSON value, at "
                                  "byte {}{}",
                                  at, item >= 0 ? " of the line" : ""));
}

// Where non-blank content starts after a first, complete object or array in
// `text`, or npos when there is none or the first value is unfinished or
// mismatched. Only run once parsing failed: On-Demand refuses a root object or
// array whose last token is not its closing bracket with "document ended
// early", which would hide that the first value was fine.
size_t TrailingDataAt(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && IsBlank(text[i])) ++i;
  if (i == text.size() || (text[i] != '{' && text[i] != '[')) return std::string_view::npos;
  std::string closers;  // expected closing brackets, innermost last
  bool in_string = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      closers.push_back(c == '{' ? '}' : ']');
    } else if (c == '}' || c == ']') {
      if (c != closers.back()) return std::string_view::npos;
      closers.pop_back();
      if (closers.empty()) {
        size_t rest = i + 1;
        while (rest < text.size() && IsBlank(text[rest])) ++rest;
        return rest < text.size() ? rest : std::string_view::npos;
      }
    }
  }
  return std::string_view::npos;
}

// Content after the top-level value ("{...} {...}" in a JSON body, or two
// objects on one NDJSON line) is an error; On-Demand 3.0 stops reading at the
// end of the first value, so ask where it stands.
absl::Status CheckNothingFollows(ondemand::document& doc, std::string_view text, int64_t item) {
  const char* location = nullptr;
  if (doc.current_location().get(location) == simdjson::SUCCESS) {
    return TrailingData(item, static_cast<size_t>(location - text.data()));
  }
  return absl::OkStatus();
}

// A failed parse of `text` (the body, or the NDJSON line of `item`) reported
// as trailing data when that is what broke it.
absl::Status PreferTrailingData(absl::Status status, std::string_view text, int64_t item) {
  if (status.ok()) return status;
  if (size_t at = TrailingDataAt(text); at != std::string_view::npos) return TrailingData(item, at);
  return status;
}

absl::Status ParseJsonValue(ondemand::parser& parser, simdjson::padded_string_view text,
                            ItemParser& items) {
  ondemand::document doc;
  if (auto error = parser.iterate(text).get(doc)) return ItemParser::Malformed(-1, "", error);
  json_type type;
  if (auto error = doc.type().get(type)) return ItemParser::Malformed(-1, "", error);
  if (type == json_type::object) {
    ESPY_RETURN_IF_ERROR(items.ParseItem(doc, 0));
  } else if (type == json_type::array) {
    ondemand::array array;
    if (auto error = doc.get_array().get(array)) return ItemParser::Malformed(-1, "", error);
    int64_t item = 0;
    for (auto element_or : array) {
      ondemand::value element;
      if (auto error = element_or.get(element)) return ItemParser::Malformed(item, "", error);
      ESPY_RETURN_IF_ERROR(items.ParseItem(element, item));
      ++item;
    }
  } else {
    return MakeBadInput(
        -1, "", fmt::format("want a JSON object or an array of objects, got {}", TypeName(type)));
  }
  return CheckNothingFollows(doc, text, -1);
}

absl::Status ParseJsonBody(ondemand::parser& parser, simdjson::padded_string_view text,
                           ItemParser& items) {
  if (IsBlankLine(text)) {
    return MakeBadInput(-1, "", "empty body: want a JSON object or an array of objects");
  }
  return PreferTrailingData(ParseJsonValue(parser, text, items), text, -1);
}

// One NDJSON line's object.
absl::Status ParseNdjsonLine(ondemand::parser& parser, simdjson::padded_string_view line,
                             int64_t item, ItemParser& items) {
  ondemand::document doc;
  if (auto error = parser.iterate(line).get(doc)) return ItemParser::Malformed(item, "", error);
  ESPY_RETURN_IF_ERROR(items.ParseItem(doc, item));
  return CheckNothingFollows(doc, line, item);
}

absl::Status ParseNdjsonBody(ondemand::parser& parser, std::string_view text, size_t capacity,
                             ItemParser& items) {
  const char* const buffer_end = text.data() + capacity;
  int64_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const void* newline = std::memchr(text.data() + pos, '\n', text.size() - pos);
    const size_t end =
        newline == nullptr ? text.size() : static_cast<const char*>(newline) - text.data();
    std::string_view line = text.substr(pos, end - pos);
    const int64_t item = line_number++;
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (IsBlankLine(line)) continue;
    // The rest of the padded buffer (later lines, then the padding) serves as
    // this line's padding: simdjson reads but never interprets it.
    simdjson::padded_string_view view(line.data(), line.size(),
                                      static_cast<size_t>(buffer_end - line.data()));
    ESPY_RETURN_IF_ERROR(
        PreferTrailingData(ParseNdjsonLine(parser, view, item, items), line, item));
  }
  return absl::OkStatus();
}

// A padded copy of the body and a simdjson parser (which keeps its index and
// string buffers between documents).
struct ReusedBuffers {
  std::unique_ptr<char[]> text;
  size_t capacity = 0;
  ondemand::parser parser;
};

}  // namespace

absl::StatusOr<Batch> ParseJsonMetrics(std::string_view body, JsonFormat format, int64_t now_millis,
                                       const Limits& limits) {
  // simdjson reads SIMDJSON_PADDING bytes past the input, which a string_view
  // does not promise: copy the body into a padded buffer. Bodies up to
  // kMaxReusedBytes reuse this thread's buffer and parser, which saves
  // allocating and page-faulting several times the body size per request;
  // larger ones get their own, freed on return.
  constexpr size_t kMaxReusedBytes = size_t{1} << 20;
  thread_local ReusedBuffers reused;
  std::optional<ReusedBuffers> own;
  ReusedBuffers& buffers = body.size() <= kMaxReusedBytes ? reused : own.emplace();
  const size_t capacity = body.size() + simdjson::SIMDJSON_PADDING;
  if (buffers.capacity < capacity) {
    buffers.text = std::make_unique<char[]>(capacity);
    buffers.capacity = capacity;
  }
  std::memcpy(buffers.text.get(), body.data(), body.size());
  std::memset(buffers.text.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
  ondemand::parser& parser = buffers.parser;
  Batch batch;
  ItemParser items(&batch, now_millis, limits);
  const std::string_view text(buffers.text.get(), body.size());
  if (format == JsonFormat::kNdjson) {
    ESPY_RETURN_IF_ERROR(ParseNdjsonBody(parser, text, capacity, items));
  } else {
    ESPY_RETURN_IF_ERROR(
        ParseJsonBody(parser, simdjson::padded_string_view(text, capacity), items));
  }
  return batch;
}

}  // namespace espy::ingest
