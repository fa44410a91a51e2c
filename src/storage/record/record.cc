#include "storage/record/record.h"

#include "base/fmt_absl.h"
#include "encoding/coding.h"
#include "fmt/format.h"

namespace espy::storage::record {

using encoding::GetDouble;
using encoding::GetLengthPrefixed;
using encoding::GetVarint64;
using encoding::GetVarsint64;

void EncodeBatch(const std::vector<RefSeries>& series, const std::vector<RefSample>& samples,
                 std::string* out) {
  out->push_back(static_cast<char>(RecordType::kBatch));
  encoding::PutVarint64(out, series.size());
  for (const RefSeries& s : series) {
    encoding::PutVarint64(out, s.ref);
    encoding::PutVarint64(out, s.labels.size());
    for (const model::Label& l : s.labels.items()) {
      encoding::PutLengthPrefixed(out, l.name);
      encoding::PutLengthPrefixed(out, l.value);
    }
  }
  encoding::PutVarint64(out, samples.size());
  // Timestamps are stored as deltas from the first sample's: batches are
  // mostly close in time, so the deltas are short varints.
  int64_t base = samples.empty() ? 0 : samples.front().ts;
  encoding::PutVarsint64(out, base);
  for (const RefSample& s : samples) {
    encoding::PutVarint64(out, s.ref);
    encoding::PutVarsint64(
        out, static_cast<int64_t>(static_cast<uint64_t>(s.ts) - static_cast<uint64_t>(base)));
    encoding::PutDouble(out, s.value);
  }
}

absl::Status DecodeBatch(std::string_view payload, std::vector<RefSeries>* series,
                         std::vector<RefSample>* samples) {
  series->clear();
  samples->clear();
  const size_t total = payload.size();
  std::string_view in = payload;
  auto fail = [&](std::string_view what) {
    return absl::DataLossError(
        fmt::format("batch record offset {}: malformed {}", total - in.size(), what));
  };
  if (in.empty() || static_cast<RecordType>(in[0]) != RecordType::kBatch) {
    return fail("record type");
  }
  in.remove_prefix(1);
  uint64_t n;
  if (!GetVarint64(&in, &n) || n > in.size()) return fail("series count");
  series->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t ref, nlabels;
    if (!GetVarint64(&in, &ref) || !GetVarint64(&in, &nlabels) || nlabels > in.size()) {
      return fail("series header");
    }
    std::vector<model::Label> labels;
    labels.reserve(nlabels);
    for (uint64_t j = 0; j < nlabels; ++j) {
      std::string_view name, value;
      if (!GetLengthPrefixed(&in, &name) || !GetLengthPrefixed(&in, &value)) {
        return fail("label");
      }
      labels.push_back({std::string(name), std::string(value)});
    }
    series->push_back({ref, model::Labels(std::move(labels))});
  }
  int64_t base;
  if (!GetVarint64(&in, &n) || n > in.size() || !GetVarsint64(&in, &base)) {
    return fail("sample count");
  }
  samples->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    RefSample s;
    int64_t delta;
    if (!GetVarint64(&in, &s.ref) || !GetVarsint64(&in, &delta) || !GetDouble(&in, &s.value)) {
      return fail("sample");
    }
    s.ts = static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(delta));
    samples->push_back(s);
  }
  if (!in.empty()) return fail("trailing bytes");
  return absl::OkStatus();
}

std::optional<RecordType> TypeOf(std::string_view payload) {
  if (payload.empty()) return std::nullopt;
  auto t = static_cast<RecordType>(payload[0]);
  if (t != RecordType::kBatch && t != RecordType::kTombstones) return std::nullopt;
  return t;
}

namespace {

// Matcher types as stored: fixed numbers, independent of the enum's order.
constexpr uint8_t kEqual = 0, kNotEqual = 1, kRegexMatch = 2, kRegexNoMatch = 3;

uint8_t MatchTypeByte(model::MatchType t) {
  switch (t) {
    case model::MatchType::kEqual:
      return kEqual;
    case model::MatchType::kNotEqual:
      return kNotEqual;
    case model::MatchType::kRegexMatch:
      return kRegexMatch;
    case model::MatchType::kRegexNoMatch:
      return kRegexNoMatch;
  }
  return kEqual;
}

}  // namespace

void EncodeTombstone(const Tombstone& t, std::string* out) {
  out->push_back(static_cast<char>(RecordType::kTombstones));
  encoding::PutVarsint64(out, t.mint);
  encoding::PutVarsint64(out, t.maxt);
  encoding::PutVarint64(out, t.matchers.size());
  for (const model::Matcher& m : t.matchers) {
    out->push_back(static_cast<char>(MatchTypeByte(m.type())));
    encoding::PutLengthPrefixed(out, m.name());
    encoding::PutLengthPrefixed(out, m.value());
  }
}

absl::StatusOr<Tombstone> DecodeTombstone(std::string_view payload) {
  const size_t total = payload.size();
  std::string_view in = payload;
  auto fail = [&](std::string_view what) {
    return absl::DataLossError(
        fmt::format("tombstones record offset {}: malformed {}", total - in.size(), what));
  };
  if (in.empty() || static_cast<RecordType>(in[0]) != RecordType::kTombstones) {
    return fail("record type");
  }
  in.remove_prefix(1);
  Tombstone t;
  uint64_t n;
  if (!GetVarsint64(&in, &t.mint) || !GetVarsint64(&in, &t.maxt)) return fail("time range");
  if (t.mint > t.maxt) return fail("time range (mint after maxt)");
  if (!GetVarint64(&in, &n) || n > in.size()) return fail("matcher count");
  for (uint64_t i = 0; i < n; ++i) {
    if (in.empty()) return fail("matcher type");
    const auto type_byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    model::MatchType type;
    switch (type_byte) {
      case kEqual:
        type = model::MatchType::kEqual;
        break;
      case kNotEqual:
        type = model::MatchType::kNotEqual;
        break;
      case kRegexMatch:
        type = model::MatchType::kRegexMatch;
        break;
      case kRegexNoMatch:
        type = model::MatchType::kRegexNoMatch;
        break;
      default:
        return fail("matcher type");
    }
    std::string_view name, value;
    if (!GetLengthPrefixed(&in, &name) || !GetLengthPrefixed(&in, &value)) return fail("matcher");
    absl::StatusOr<model::Matcher> m =
        model::Matcher::Make(type, std::string(name), std::string(value));
    if (!m.ok()) return fail(fmt::format("matcher ({})", m.status().message()));
    t.matchers.push_back(*std::move(m));
  }
  if (!in.empty()) return fail("trailing bytes");
  return t;
}

}  // namespace espy::storage::record
