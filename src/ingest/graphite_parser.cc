// Graphite plaintext parser and the TCP line splitter. Each line stands
// alone: a bad one is reported and skipped, the rest still count.
#include "ingest/graphite_parser.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "base/status_macros.h"
#include "base/swar.h"
#include "fmt/format.h"
#include "ingest/bad_input.h"

namespace espy::ingest {

namespace {

// The number of '\n' bytes in `s`, 8 bytes at a time (std::count goes byte
// by byte: it was a seventh of a Graphite connection's parsing).
int64_t CountNewlines(std::string_view s) {
  int64_t n = 0;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    n += std::popcount(base::BytesEqual(base::LoadWord(s.data() + i), '\n'));
  }
  for (; i < s.size(); ++i) n += s[i] == '\n';
  return n;
}

// Quotes user input for an error message, cut to a readable length.
std::string QuoteInput(std::string_view text) {
  constexpr size_t kMaxQuoted = 64;
  if (text.size() <= kMaxQuoted) return fmt::format("\"{}\"", text);
  return fmt::format("\"{}...\" ({} bytes)", text.substr(0, kMaxQuoted), text.size());
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Epoch seconds as Graphite senders write them ("1700000000",
// "1700000000.123456", "-5.5", "1.7e9") to milliseconds, truncated toward
// the past; nullopt when it is not a number or out of range.
std::optional<int64_t> EpochSecondsToMillis(std::string_view text) {
  size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  const size_t int_start = i;
  int64_t seconds = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (__builtin_mul_overflow(seconds, 10, &seconds) ||
        __builtin_add_overflow(seconds, text[i] - '0', &seconds)) {
      return std::nullopt;
    }
    ++i;
  }
  bool plain = i > int_start;
  int64_t fraction = 0;  // milliseconds
  bool below_millis = false;
  if (plain && i < text.size() && text[i] == '.') {
    ++i;
    int digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (digits < 3) {
        fraction = fraction * 10 + (text[i] - '0');
      } else if (text[i] != '0') {
        below_millis = true;
      }
      ++digits;
      ++i;
    }
    for (; digits < 3; ++digits) fraction *= 10;
  }
  if (plain && i == text.size()) {
    int64_t millis = 0;
    if (__builtin_mul_overflow(seconds, 1000, &millis)) return std::nullopt;
    millis += fraction;
    if (negative) millis = -millis - (below_millis ? 1 : 0);
    return millis;
  }
  // Exponent forms and the like: go through double.
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  constexpr double kMaxSeconds = 9.2e15;  // keeps seconds * 1000 inside int64
  if (std::fabs(v) > kMaxSeconds) return std::nullopt;
  return static_cast<int64_t>(std::floor(v * 1000));
}

// absl's hash (std::string_view falls back to std::hash in this Abseil build).
struct ViewHash {
  size_t operator()(std::string_view s) const {
    return absl::Hash<absl::string_view>{}(absl::string_view(s.data(), s.size()));
  }
};

// Single-threaded: one per ParseGraphiteLines call.
class GraphiteParser {
 public:
  GraphiteParser(int64_t now_millis, const Limits& limits, size_t max_line_bytes,
                 SeriesLookup* lookup)
      : now_millis_(now_millis),
        limits_(limits),
        max_line_bytes_(max_line_bytes),
        lookup_(lookup != nullptr && lookup->enabled() ? lookup : nullptr) {}

  // Adds the line's sample to the batch, or returns why it is bad.
  absl::Status ParseLine(std::string_view line, int64_t line_number);
  Batch& batch() { return batch_; }

 private:
  absl::StatusOr<uint32_t> FindOrAddSeries(std::string_view key, int64_t line_number);

  const int64_t now_millis_;
  const Limits& limits_;
  const size_t max_line_bytes_;
  SeriesLookup* const lookup_;  // null: no SeriesCache
  Batch batch_;
  // Keys view the chunk, which outlives the parser.
  absl::flat_hash_map<std::string_view, uint32_t, ViewHash> series_index_;
};

absl::Status GraphiteParser::ParseLine(std::string_view line, int64_t line_number) {
  if (line.size() > max_line_bytes_) {
    return MakeBadInput(line_number, "",
                        fmt::format("line is {} bytes, longer than the {}-byte limit; skipped",
                                    line.size(), max_line_bytes_));
  }
  std::string_view parts[3];
  size_t count = 0;
  size_t pos = 0;
  while (true) {
    while (pos < line.size() && IsBlank(line[pos])) ++pos;
    if (pos == line.size()) break;
    const size_t start = pos;
    while (pos < line.size() && !IsBlank(line[pos])) ++pos;
    if (count == 3) {
      return MakeBadInput(line_number, "",
                          fmt::format("want \"path value [timestamp]\", got extra text {}",
                                      QuoteInput(line.substr(start))));
    }
    parts[count++] = line.substr(start, pos - start);
  }
  if (count == 0) return absl::OkStatus();  // blank line
  if (count == 1) {
    return MakeBadInput(
        line_number, "value",
        fmt::format("want \"path value [timestamp]\", got only {}", QuoteInput(parts[0])));
  }

  std::string_view value_text = parts[1];
  if (value_text.size() > 1 && value_text[0] == '+' && value_text[1] != '-') {
    value_text.remove_prefix(1);
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(value_text.data(), value_text.data() + value_text.size(), value);
  if (ec != std::errc() || ptr != value_text.data() + value_text.size()) {
    return MakeBadInput(line_number, "value",
                        fmt::format("want a number, got {}", QuoteInput(parts[1])));
  }

  int64_t ts = now_millis_;
  if (count == 3 && parts[2] != "-1") {
    std::optional<int64_t> millis = EpochSecondsToMillis(parts[2]);
    if (!millis) {
      return MakeBadInput(
          line_number, "timestamp",
          fmt::format("want epoch seconds (or -1 for now), got {}", QuoteInput(parts[2])));
    }
    ts = *millis;
  }
  ESPY_RETURN_IF_ERROR(ValidateTimestamp(ts, now_millis_, limits_, line_number));
  ESPY_ASSIGN_OR_RETURN(uint32_t series, FindOrAddSeries(parts[0], line_number));
  batch_.Add(series, ts, value);
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> GraphiteParser::FindOrAddSeries(std::string_view key,
                                                         int64_t line_number) {
  if (lookup_ != nullptr) {
    // A hit is added by ref each time: cheaper than finding it again here.
    lookup_->StartKey().append(key);
    if (model::SeriesRef ref = lookup_->Find(); ref != 0) return batch_.AddSeriesRef(ref);
  }
  auto it = series_index_.find(key);
  if (it != series_index_.end()) return it->second;

  size_t semicolon = key.find(';');
  std::string_view path = key.substr(0, semicolon);
  if (path.empty()) {
    return MakeBadInput(line_number, "path", "empty metric path before the tags");
  }
  std::vector<model::Label> labels;
  labels.push_back({std::string(model::kMetricNameLabel), std::string(path)});
  while (semicolon != std::string_view::npos) {
    const size_t start = semicolon + 1;
    semicolon = key.find(';', start);
    std::string_view tag = key.substr(
        start, semicolon == std::string_view::npos ? std::string_view::npos : semicolon - start);
    const size_t equals = tag.find('=');
    if (equals == std::string_view::npos) {
      return MakeBadInput(line_number, tag, "tag has no '=': want ;name=value");
    }
    std::string_view name = tag.substr(0, equals);
    std::string_view value = tag.substr(equals + 1);
    if (name.empty()) {
      return MakeBadInput(line_number, "", fmt::format("empty tag name in {}", QuoteInput(tag)));
    }
    if (name.find_first_of("!^") != std::string_view::npos) {
      return MakeBadInput(line_number, name, "tag names may not contain '!' or '^'");
    }
    if (name.starts_with("__")) {
      return MakeBadInput(line_number, name, "tag names starting with \"__\" are reserved");
    }
    if (value.empty()) return MakeBadInput(line_number, name, "empty tag value");
    if (value[0] == '~') {
      return MakeBadInput(line_number, name, "tag values may not start with '~'");
    }
    labels.push_back({std::string(name), std::string(value)});
  }
  std::sort(labels.begin(), labels.end());
  for (size_t i = 1; i < labels.size(); ++i) {
    if (labels[i].name == labels[i - 1].name) {
      return MakeBadInput(line_number, labels[i].name, "tag appears twice on the line");
    }
  }
  model::Labels series(std::move(labels));
  ESPY_RETURN_IF_ERROR(ValidateLabels(series, limits_, line_number));
  const uint32_t index = batch_.AddSeries(std::move(series));
  if (lookup_ != nullptr) lookup_->Missed(index);
  series_index_.emplace(key, index);
  return index;
}

}  // namespace

GraphiteParseResult ParseGraphiteLines(std::string_view chunk, int64_t first_line,
                                       int64_t now_millis, const Limits& limits,
                                       size_t max_line_bytes, SeriesLookup* lookup) {
  GraphiteParser parser(now_millis, limits, max_line_bytes, lookup);
  GraphiteParseResult result;
  int64_t line_number = first_line;
  size_t start = 0;
  while (start < chunk.size()) {
    const void* nl = std::memchr(chunk.data() + start, '\n', chunk.size() - start);
    const size_t end =
        nl ? static_cast<size_t>(static_cast<const char*>(nl) - chunk.data()) : chunk.size();
    std::string_view line = chunk.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (absl::Status s = parser.ParseLine(line, line_number); !s.ok()) {
      ++result.error_count;
      if (result.errors.size() < kMaxGraphiteErrorsKept) {
        result.errors.push_back({line_number, std::move(s)});
      }
    }
    ++line_number;
    start = end + 1;
  }
  result.batch = std::move(parser.batch());
  return result;
}

GraphiteLineSplitter::Block GraphiteLineSplitter::Feed(std::string_view data,
                                                       std::vector<GraphiteLineError>* errors) {
  if (discarding_) {
    const void* nl = std::memchr(data.data(), '\n', data.size());
    if (nl == nullptr) return {{}, next_line_};
    data.remove_prefix(static_cast<const char*>(nl) - data.data() + 1);
    discarding_ = false;
    ++next_line_;
  }
  const void* last = data.empty() ? nullptr : memrchr(data.data(), '\n', data.size());
  if (last == nullptr) {
    KeepPartial(data, errors);
    return {{}, next_line_};
  }
  const size_t head_size = static_cast<const char*>(last) - data.data() + 1;
  std::string_view head = data.substr(0, head_size);
  Block block{head, next_line_};
  if (!partial_.empty()) {
    // The partial line's completion may make it over-long; the parser checks
    // whole lines, so it is reported once, there.
    joined_.clear();
    joined_.reserve(partial_.size() + head.size());
    joined_ += partial_;
    joined_ += head;
    partial_.clear();
    block.text = joined_;
  }
  next_line_ += CountNewlines(head);
  KeepPartial(data.substr(head_size), errors);
  return block;
}

GraphiteLineSplitter::Block GraphiteLineSplitter::Finish() {
  if (discarding_) {
    discarding_ = false;
    ++next_line_;
    return {{}, next_line_};
  }
  if (partial_.empty()) return {{}, next_line_};
  joined_ = std::move(partial_);
  partial_.clear();
  return {joined_, next_line_++};
}

void GraphiteLineSplitter::KeepPartial(std::string_view tail,
                                       std::vector<GraphiteLineError>* errors) {
  if (partial_.size() + tail.size() <= max_line_bytes_) {
    partial_ += tail;
    return;
  }
  errors->push_back(
      {next_line_,
       MakeBadInput(next_line_, "",
                    fmt::format("line is longer than the {}-byte limit; skipped up to its end",
                                max_line_bytes_))});
  partial_.clear();
  discarding_ = true;
}

}  // namespace espy::ingest
