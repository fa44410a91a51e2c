#include "storage/record/record.h"

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

}  // namespace espy::storage::record
