// Shared checks of finished label sets and timestamps for every ingest
// protocol. Label sets are checked after a parser built them, so each rule
// lives here once.
#include "ingest/limits.h"

#include <cstring>
#include <string>

#include "fmt/format.h"
#include "ingest/bad_input.h"
#include "model/timestamp.h"

namespace espy::ingest {

namespace {

constexpr size_t kNotFound = std::string_view::npos;

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const size_t left = s.size() - i;
  const auto cont = [&](size_t k) { return (byte(k) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && byte(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && byte(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && byte(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && byte(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Offset of the first byte that does not start a well-formed UTF-8 sequence,
// or kNotFound. ASCII, by far the common case, goes eight bytes at a time.
size_t FindInvalidUtf8(std::string_view s) {
  // Short all-ASCII strings (most names and values): one branch-free pass.
  unsigned char any = 0;
  for (char c : s) any |= static_cast<unsigned char>(c);
  if (any < 0x80) return kNotFound;
  size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, sizeof(word));
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return kNotFound;
}

// A label name as it may appear in an error's field: at most 64 bytes (cut at
// a character boundary, then "..."), bytes that are not UTF-8 as \xNN.
std::string DisplayName(std::string_view name) {
  constexpr size_t kMaxShown = 64;
  std::string out;
  size_t i = 0;
  while (i < name.size()) {
    if (out.size() >= kMaxShown) {
      out += "...";
      break;
    }
    const size_t n = Utf8SequenceLength(name, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(name[i]));
      ++i;
    } else {
      out.append(name.data() + i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace

absl::Status ValidateLabels(const model::Labels& labels, const Limits& limits, int64_t item) {
  if (labels.size() > limits.max_labels_per_series) {
    return MakeBadInput(item, "",
                        fmt::format("{} labels, at most {} allowed per series (name included)",
                                    labels.size(), limits.max_labels_per_series));
  }
  if (labels.MetricName().empty()) {
    return MakeBadInput(item, "name", "want a non-empty metric name");
  }
  for (const model::Label& label : labels.items()) {
    const bool is_name = label.name == model::kMetricNameLabel;
    if (label.name.empty()) return MakeBadInput(item, "", "empty label name");
    // __name__ is ours, not the user's: only its value is checked.
    if (!is_name && label.name.size() > limits.max_label_name_bytes) {
      return MakeBadInput(item, DisplayName(label.name),
                          fmt::format("label name is {} bytes, at most {} allowed",
                                      label.name.size(), limits.max_label_name_bytes));
    }
    if (size_t bad = FindInvalidUtf8(label.name); bad != kNotFound) {
      return MakeBadInput(item, DisplayName(label.name),
                          fmt::format("label name is not valid UTF-8 (byte {})", bad));
    }
    const std::string_view field = is_name ? std::string_view("name") : label.name;
    const std::string_view what = is_name ? "metric name" : "label value";
    if (label.value.empty()) {
      // The metric name was checked above; only labels get here.
      return MakeBadInput(item, field, "empty label value; omit the label instead");
    }
    if (label.value.size() > limits.max_label_value_bytes) {
      return MakeBadInput(item, field,
                          fmt::format("{} is {} bytes, at most {} allowed", what,
                                      label.value.size(), limits.max_label_value_bytes));
    }
    if (size_t bad = FindInvalidUtf8(label.value); bad != kNotFound) {
      return MakeBadInput(item, field, fmt::format("{} is not valid UTF-8 (byte {})", what, bad));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTimestamp(int64_t ts, int64_t now_millis, const Limits& limits, int64_t item) {
  if (limits.max_future_millis > 0 && ts > now_millis + limits.max_future_millis) {
    return MakeBadInput(item, "ts",
                        fmt::format("timestamp {} is more than {}s in the future (now {})",
                                    model::FormatTimestamp(ts),
                                    static_cast<double>(limits.max_future_millis) / 1000,
                                    model::FormatTimestamp(now_millis)));
  }
  if (limits.retention_millis > 0 && ts < now_millis - limits.retention_millis) {
    return MakeBadInput(
        item, "ts",
        fmt::format("timestamp {} is older than the retention ({}): the oldest kept now is {}",
                    model::FormatTimestamp(ts), FormatSpan(limits.retention_millis),
                    model::FormatTimestamp(now_millis - limits.retention_millis)));
  }
  return absl::OkStatus();
}

std::string FormatSpan(int64_t millis) {
  static constexpr struct {
    int64_t millis;
    const char* suffix;
  } kUnits[] = {{365 * 24 * 3600 * 1000ll, "y"},
                {7 * 24 * 3600 * 1000ll, "w"},
                {24 * 3600 * 1000ll, "d"},
                {3600 * 1000ll, "h"},
                {60 * 1000ll, "m"},
                {1000, "s"}};
  for (const auto& unit : kUnits) {
    if (millis != 0 && millis % unit.millis == 0) {
      return fmt::format("{}{}", millis / unit.millis, unit.suffix);
    }
  }
  return fmt::format("{}ms", millis);
}

}  // namespace espy::ingest
