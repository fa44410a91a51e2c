// Influx line protocol parser: one pass over the body, line by line, with the
// series table de-duplicated by the raw spelling of "measurement,tags" and of
// the field key, so a body repeating the same series builds its labels once.
#include "ingest/influx_parser.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "ingest/bad_input.h"

namespace espy::ingest {

namespace {

// Quotes user input for an error message, cut to a readable length.
std::string QuoteInput(std::string_view text) {
  constexpr size_t kMaxQuoted = 64;
  if (text.size() <= kMaxQuoted) return fmt::format("\"{}\"", text);
  return fmt::format("\"{}...\" ({} bytes)", text.substr(0, kMaxQuoted), text.size());
}

// Characters a backslash escapes in each kind of token.
constexpr std::string_view kMeasurementEscapes = ", ";
constexpr std::string_view kKeyEscapes = ",= ";

// Removes the backslash before each escapable character; a backslash before
// anything else is kept, as InfluxDB does.
std::string Unescape(std::string_view raw, std::string_view escapable) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) {
      if (escapable.find(raw[i + 1]) == std::string_view::npos) out += '\\';
      out += raw[i + 1];
      ++i;
      continue;
    }
    out += raw[i];
  }
  return out;
}

std::string UnescapeIf(bool escaped, std::string_view raw, std::string_view escapable) {
  return escaped ? Unescape(raw, escapable) : std::string(raw);
}

// Advances past a token ending at the first unescaped delimiter (or the end
// of the line). A backslash always takes the next character with it, so an
// escaped delimiter never ends a token.
template <typename IsDelimiter>
size_t ScanToken(std::string_view line, size_t pos, bool* escaped, IsDelimiter is_delimiter) {
  while (pos < line.size()) {
    char c = line[pos];
    if (c == '\\') {
      *escaped = true;
      pos = std::min(pos + 2, line.size());
      continue;
    }
    if (is_delimiter(c)) return pos;
    ++pos;
  }
  return line.size();
}

size_t SkipSpaces(std::string_view line, size_t pos) {
  while (pos < line.size() && line[pos] == ' ') ++pos;
  return pos;
}

bool IsBoolTrue(std::string_view v) {
  return v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE";
}
bool IsBoolFalse(std::string_view v) {
  return v == "f" || v == "F" || v == "false" || v == "False" || v == "FALSE";
}

// Influx's float grammar: digits, '.', '-', exponent. Excludes the "inf" and
// "nan" spellings std::from_chars would take.
bool LooksLikeFloat(std::string_view v) {
  for (char c : v) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) {
      return false;
    }
  }
  return true;
}

struct Field {
  std::string_view raw_key;
  bool key_escaped;
  double value;
};

// A measurement and tag set, as spelled on one or more lines. Its labels
// are built on the first field that is not found in the SeriesCache.
struct SeriesBase {
  bool built = false;
  std::string measurement;
  std::vector<model::Label> tags;  // sorted by name, unique
  // The series made from it so far: raw field key -> batch series index. A
  // line has a handful of fields, so a linear scan beats hashing.
  std::vector<std::pair<std::string_view, uint32_t>> series;
};

// absl's hash (std::string_view falls back to std::hash in this Abseil build).
struct ViewHash {
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};

// Single-threaded: one per ParseInfluxLines call.
class InfluxParser {
 public:
  InfluxParser(InfluxPrecision precision, int64_t now_millis, const Limits& limits,
               SeriesLookup* lookup)
      : precision_(precision),
        now_millis_(now_millis),
        limits_(limits),
        lookup_(lookup != nullptr && lookup->enabled() ? lookup : nullptr) {}

  absl::Status ParseLine(std::string_view line, int64_t item);
  Batch TakeBatch() { return std::move(batch_); }

 private:
  // The line's measurement and tags, as parsed by ParseLine.
  struct LineKey {
    std::string_view raw;  // measurement and tags as spelled
    std::string_view measurement;
    bool measurement_escaped;
    bool tags_escaped;
  };
  uint32_t FindOrAddBase(std::string_view raw_key);
  // Unescapes and checks the measurement and raw_tags_ of `line` into `base`.
  absl::Status BuildBase(SeriesBase& base, const LineKey& line, int64_t item);
  absl::StatusOr<uint32_t> FindOrAddSeries(const LineKey& line, const Field& field, int64_t item);
  absl::StatusOr<double> ParseFieldValue(std::string_view key, std::string_view value,
                                         int64_t item) const;
  absl::StatusOr<int64_t> ParseTimestamp(std::string_view text, int64_t item) const;

  const InfluxPrecision precision_;
  const int64_t now_millis_;
  const Limits& limits_;
  SeriesLookup* const lookup_;  // null: no SeriesCache
  Batch batch_;
  std::vector<SeriesBase> bases_;
  // Keys view the body, which outlives the parser.
  absl::flat_hash_map<std::string_view, uint32_t, ViewHash> base_index_;
  // Scratch, reused across lines.
  std::vector<std::pair<std::string_view, std::string_view>> raw_tags_;
  std::vector<Field> fields_;
};

absl::Status InfluxParser::ParseLine(std::string_view line, int64_t item) {
  size_t pos = 0;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos == line.size() || line[pos] == '#') return absl::OkStatus();
  const size_t key_start = pos;

  bool measurement_escaped = false;
  pos = ScanToken(line, pos, &measurement_escaped, [](char c) { return c == ',' || c == ' '; });
  std::string_view measurement = line.substr(key_start, pos - key_start);
  if (measurement.empty()) {
    return MakeBadInput(item, "measurement", "missing measurement name at the start of the line");
  }

  raw_tags_.clear();
  bool tags_escaped = false;
  while (pos < line.size() && line[pos] == ',') {
    ++pos;
    const size_t tag_key_start = pos;
    pos = ScanToken(line, pos, &tags_escaped,
                    [](char c) { return c == '=' || c == ',' || c == ' '; });
    std::string_view key = line.substr(tag_key_start, pos - tag_key_start);
    if (key.empty()) {
      return MakeBadInput(item, "", fmt::format("empty tag key after {}", QuoteInput(measurement)));
    }
    if (pos == line.size() || line[pos] != '=') {
      return MakeBadInput(item, Unescape(key, kKeyEscapes), "tag has no value: want key=value");
    }
    ++pos;
    const size_t value_start = pos;
    pos = ScanToken(line, pos, &tags_escaped,
                    [](char c) { return c == '=' || c == ',' || c == ' '; });
    std::string_view value = line.substr(value_start, pos - value_start);
    if (pos < line.size() && line[pos] == '=') {
      return MakeBadInput(item, Unescape(key, kKeyEscapes),
                          "unescaped '=' in tag value: write it as \\=");
    }
    if (value.empty()) {
      return MakeBadInput(item, Unescape(key, kKeyEscapes),
                          "empty tag value (InfluxDB rejects it too): omit the tag instead");
    }
    raw_tags_.emplace_back(key, value);
  }
  const std::string_view raw_series_key = line.substr(key_start, pos - key_start);

  if (pos == line.size() || line[pos] != ' ') {
    return MakeBadInput(item, "",
                        "missing field set: want measurement[,tag=value...] field=value[,...] "
                        "[timestamp]");
  }
  pos = SkipSpaces(line, pos);
  if (pos == line.size()) {
    return MakeBadInput(item, "", "missing field set: want at least one field=value");
  }

  fields_.clear();
  while (true) {
    const size_t field_key_start = pos;
    bool key_escaped = false;
    pos =
        ScanToken(line, pos, &key_escaped, [](char c) { return c == '=' || c == ',' || c == ' '; });
    std::string_view key = line.substr(field_key_start, pos - field_key_start);
    if (key.empty()) return MakeBadInput(item, "", "empty field key: want field=value");
    if (pos == line.size() || line[pos] != '=') {
      return MakeBadInput(item, UnescapeIf(key_escaped, key, kKeyEscapes),
                          "field has no value: want field=value");
    }
    ++pos;
    if (pos < line.size() && line[pos] == '"') {
      return MakeBadInput(item, UnescapeIf(key_escaped, key, kKeyEscapes),
                          "string field values are not supported: Espy stores numbers only "
                          "(float, 3i, 3u, t/f)");
    }
    const size_t value_start = pos;
    while (pos < line.size() && line[pos] != ',' && line[pos] != ' ') ++pos;
    std::string_view value = line.substr(value_start, pos - value_start);
    for (const Field& f : fields_) {
      if (f.raw_key == key) {
        return MakeBadInput(item, UnescapeIf(key_escaped, key, kKeyEscapes),
                            "field appears twice on the line");
      }
    }
    absl::StatusOr<double> parsed = ParseFieldValue(key, value, item);
    if (!parsed.ok()) {
      // Re-issue with the unescaped key when the raw one had escapes.
      if (!key_escaped) return parsed.status();
      std::optional<BadInput> bad = GetBadInput(parsed.status());
      return MakeBadInput(item, Unescape(key, kKeyEscapes), bad ? bad->problem : "bad value");
    }
    fields_.push_back({key, key_escaped, *parsed});
    if (pos < line.size() && line[pos] == ',') {
      ++pos;
      continue;
    }
    break;
  }

  int64_t ts = now_millis_;
  pos = SkipSpaces(line, pos);
  if (pos < line.size()) {
    const size_t ts_start = pos;
    while (pos < line.size() && line[pos] != ' ') ++pos;
    ESPY_ASSIGN_OR_RETURN(ts, ParseTimestamp(line.substr(ts_start, pos - ts_start), item));
    pos = SkipSpaces(line, pos);
    if (pos < line.size()) {
      return MakeBadInput(
          item, "",
          fmt::format("unexpected text after the timestamp: {}", QuoteInput(line.substr(pos))));
    }
  }
  ESPY_RETURN_IF_ERROR(ValidateTimestamp(ts, now_millis_, limits_, item));

  const LineKey line_key{raw_series_key, measurement, measurement_escaped, tags_escaped};
  for (const Field& field : fields_) {
    ESPY_ASSIGN_OR_RETURN(uint32_t series, FindOrAddSeries(line_key, field, item));
    batch_.Add(series, ts, field.value);
  }
  return absl::OkStatus();
}

uint32_t InfluxParser::FindOrAddBase(std::string_view raw_key) {
  auto [it, inserted] = base_index_.try_emplace(raw_key, static_cast<uint32_t>(bases_.size()));
  if (inserted) bases_.emplace_back();
  return it->second;
}

absl::Status InfluxParser::BuildBase(SeriesBase& base, const LineKey& line, int64_t item) {
  base.measurement = UnescapeIf(line.measurement_escaped, line.measurement, kMeasurementEscapes);
  base.tags.clear();
  base.tags.reserve(raw_tags_.size() + 1);
  for (const auto& [key, value] : raw_tags_) {
    base.tags.push_back({UnescapeIf(line.tags_escaped, key, kKeyEscapes),
                         UnescapeIf(line.tags_escaped, value, kKeyEscapes)});
    if (base.tags.back().name.starts_with("__")) {
      return MakeBadInput(item, base.tags.back().name,
                          "tag keys starting with \"__\" are reserved");
    }
  }
  std::sort(base.tags.begin(), base.tags.end());
  for (size_t i = 1; i < base.tags.size(); ++i) {
    if (base.tags[i].name == base.tags[i - 1].name) {
      return MakeBadInput(item, base.tags[i].name, "tag appears twice on the line");
    }
  }
  base.built = true;
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> InfluxParser::FindOrAddSeries(const LineKey& line, const Field& field,
                                                       int64_t item) {
  if (lookup_ != nullptr) {
    // The spelling: the series key and the field key, which never hold a
    // raw newline. A hit is added by ref each time: cheaper than finding
    // it again in this batch.
    std::string& key = lookup_->StartKey();
    key.append(line.raw);
    key += '\n';
    key.append(field.raw_key);
    if (model::SeriesRef ref = lookup_->Find(); ref != 0) return batch_.AddSeriesRef(ref);
  }
  SeriesBase& base = bases_[FindOrAddBase(line.raw)];
  for (const auto& [raw_key, index] : base.series) {
    if (raw_key == field.raw_key) return index;
  }
  if (!base.built) ESPY_RETURN_IF_ERROR(BuildBase(base, line, item));

  std::string field_key = UnescapeIf(field.key_escaped, field.raw_key, kKeyEscapes);
  std::string name = base.measurement;
  if (field_key != "value") {
    name += '_';
    name += field_key;
  }
  std::vector<model::Label> labels;
  labels.reserve(base.tags.size() + 1);
  labels.push_back({std::string(model::kMetricNameLabel), std::move(name)});
  labels.insert(labels.end(), base.tags.begin(), base.tags.end());
  model::Labels series(std::move(labels));
  ESPY_RETURN_IF_ERROR(ValidateLabels(series, limits_, item));
  const uint32_t index = batch_.AddSeries(std::move(series));
  if (lookup_ != nullptr) lookup_->Missed(index);
  base.series.emplace_back(field.raw_key, index);
  return index;
}

absl::StatusOr<double> InfluxParser::ParseFieldValue(std::string_view key, std::string_view value,
                                                     int64_t item) const {
  auto bad = [&](std::string_view what) {
    return MakeBadInput(item, key, fmt::format("{}, got {}", what, QuoteInput(value)));
  };
  if (value.empty()) {
    return bad("want a value: float (1.5), integer (3i), unsigned (3u) or boolean (t/f)");
  }
  const char* begin = value.data();
  const char* end = value.data() + value.size();
  switch (value.back()) {
    case 'i': {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(begin, end - 1, v);
      if (ec == std::errc::result_out_of_range) return bad("integer out of the int64 range");
      if (ec != std::errc() || ptr != end - 1 || value.size() == 1) {
        return bad("want an integer like 42i");
      }
      return static_cast<double>(v);
    }
    case 'u': {
      uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(begin, end - 1, v);
      if (ec == std::errc::result_out_of_range) return bad("unsigned out of the uint64 range");
      if (ec != std::errc() || ptr != end - 1 || value.size() == 1) {
        return bad("want an unsigned integer like 42u");
      }
      return static_cast<double>(v);
    }
    default:
      break;
  }
  if (IsBoolTrue(value)) return 1.0;
  if (IsBoolFalse(value)) return 0.0;
  if (LooksLikeFloat(value)) {
    double v = 0;
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (ec == std::errc() && ptr == end) return v;
    if (ec == std::errc::result_out_of_range) return bad("float out of the double range");
  }
  return bad("want a float (1.5), integer (3i), unsigned (3u) or boolean (t/f)");
}

absl::StatusOr<int64_t> InfluxParser::ParseTimestamp(std::string_view text, int64_t item) const {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return MakeBadInput(item, "timestamp",
                        fmt::format("want an integer timestamp, got {}", QuoteInput(text)));
  }
  // Division rounds toward the past; multiplication must not overflow.
  auto floor_div = [](int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
  };
  int64_t multiplier = 1;
  switch (precision_) {
    case InfluxPrecision::kNanoseconds:
      return floor_div(v, 1'000'000);
    case InfluxPrecision::kMicroseconds:
      return floor_div(v, 1'000);
    case InfluxPrecision::kMilliseconds:
      return v;
    case InfluxPrecision::kSeconds:
      multiplier = 1'000;
      break;
    case InfluxPrecision::kMinutes:
      multiplier = 60'000;
      break;
    case InfluxPrecision::kHours:
      multiplier = 3'600'000;
      break;
  }
  int64_t millis = 0;
  if (__builtin_mul_overflow(v, multiplier, &millis)) {
    return MakeBadInput(item, "timestamp",
                        fmt::format("timestamp {} is out of range for its precision", v));
  }
  return millis;
}

}  // namespace

absl::StatusOr<InfluxPrecision> ParseInfluxPrecision(std::string_view text) {
  if (text.empty() || text == "ns" || text == "n") return InfluxPrecision::kNanoseconds;
  if (text == "us" || text == "u") return InfluxPrecision::kMicroseconds;
  if (text == "ms") return InfluxPrecision::kMilliseconds;
  if (text == "s") return InfluxPrecision::kSeconds;
  if (text == "m") return InfluxPrecision::kMinutes;
  if (text == "h") return InfluxPrecision::kHours;
  return MakeBadInput(
      -1, "precision",
      fmt::format("want one of ns, n, us, u, ms, s, m, h, got {}", QuoteInput(text)));
}

absl::StatusOr<Batch> ParseInfluxLines(std::string_view body, InfluxPrecision precision,
                                       int64_t now_millis, const Limits& limits,
                                       SeriesLookup* lookup) {
  InfluxParser parser(precision, now_millis, limits, lookup);
  int64_t item = 0;
  size_t start = 0;
  while (start < body.size()) {
    const void* nl = std::memchr(body.data() + start, '\n', body.size() - start);
    size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
    std::string_view line = body.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ESPY_RETURN_IF_ERROR(parser.ParseLine(line, item));
    ++item;
    start = end + 1;
  }
  return parser.TakeBatch();
}

}  // namespace espy::ingest
