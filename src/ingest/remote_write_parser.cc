// Remote write parser: snappy block decode (length checked first), then one
// pass over the protobuf wire format converting and validating each series.
#include "ingest/remote_write_parser.h"

#include <snappy.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "fmt/format.h"
#include "ingest/bad_input.h"

namespace espy::ingest {

namespace {

constexpr size_t kMaxShownName = 64;

// A label name as an error's field: printable ASCII kept, other bytes as
// \xNN, at most kMaxShownName bytes of input, so error bodies stay readable.
std::string ShownName(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i == kMaxShownName) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

// Prometheus' label name rule: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Protobuf wire format, decoded by hand: the generated classes copy every
// label string into its own allocation before Espy copies it again into
// model::Labels; views into the decoded body skip the first copy. The schema
// is remote_write.proto (tests build requests with its generated classes).
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// Reads one message's fields. Single-threaded; views the buffer it was given.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base_offset)
      : begin_(data.data()),
        p_(data.data()),
        end_(data.data() + data.size()),
        base_offset_(base_offset) {}

  bool done() const { return p_ == end_; }
  // Offset of the next byte within the whole decoded body.
  size_t offset() const { return base_offset_ + static_cast<size_t>(p_ - begin_); }

  bool ReadVarint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      const uint8_t byte = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return false;  // truncated, or more than 10 bytes
  }
  bool ReadTag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!ReadVarint(&tag) || tag >> 32 != 0) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }
  bool ReadBytes(std::string_view* out) {
    uint64_t size = 0;
    if (!ReadVarint(&size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(p_, size);
    p_ += size;
    return true;
  }
  bool ReadFixed64(uint64_t* out) {
    if (end_ - p_ < 8) return false;
    std::memcpy(out, p_, 8);  // little-endian on the wire, as on x86 and ARM
    p_ += 8;
    return true;
  }
  // Skips a field Espy does not read. Groups (wire types 3 and 4, long
  // deprecated and absent from remote_write.proto) count as corrupt.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(&ignored);
      case kFixed64:
        return ReadFixed64(&ignored);
      case kLengthDelimited:
        return ReadBytes(&ignored_bytes);
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:
        return false;
    }
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
  size_t base_offset_;
};

absl::Status Corrupt(size_t offset, std::string_view what) {
  return MakeBadInput(-1, "",
                      fmt::format("body is not a valid prometheus.WriteRequest protobuf: {} at "
                                  "byte {} of the decoded body",
                                  what, offset));
}

// One TimeSeries as views into the decoded body. Reused across series.
struct RawSeries {
  std::vector<std::pair<std::string_view, std::string_view>> labels;
  std::vector<model::Sample> samples;
  bool has_histograms = false;

  void Clear() {
    labels.clear();
    samples.clear();
    has_histograms = false;
  }
};

absl::Status DecodeLabel(std::string_view data, size_t offset, RawSeries* out) {
  WireReader r(data, offset);
  std::string_view name, value;
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    const size_t at = r.offset();
    if (!r.ReadTag(&field, &wire_type)) return Corrupt(at, "bad field tag in a Label");
    bool ok = true;
    if (field == 1 && wire_type == kLengthDelimited) {
      ok = r.ReadBytes(&name);
    } else if (field == 2 && wire_type == kLengthDelimited) {
      ok = r.ReadBytes(&value);
    } else {
      ok = r.Skip(wire_type);
    }
    if (!ok) return Corrupt(at, "truncated field in a Label");
  }
  out->labels.emplace_back(name, value);
  return absl::OkStatus();
}

absl::Status DecodeSample(std::string_view data, size_t offset, RawSeries* out) {
  WireReader r(data, offset);
  model::Sample sample;
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    const size_t at = r.offset();
    if (!r.ReadTag(&field, &wire_type)) return Corrupt(at, "bad field tag in a Sample");
    bool ok = true;
    if (field == 1 && wire_type == kFixed64) {
      uint64_t bits = 0;
      ok = r.ReadFixed64(&bits);
      sample.value = std::bit_cast<double>(bits);  // bit-exact: keeps stale markers
    } else if (field == 2 && wire_type == kVarint) {
      uint64_t v = 0;
      ok = r.ReadVarint(&v);
      sample.ts = static_cast<int64_t>(v);
    } else {
      ok = r.Skip(wire_type);
    }
    if (!ok) return Corrupt(at, "truncated field in a Sample");
  }
  out->samples.push_back(sample);
  return absl::OkStatus();
}

// Appends the Label fields' wire bytes to *key, when given: the series'
// spelling for a SeriesCache.
absl::Status DecodeTimeSeries(std::string_view data, size_t offset, RawSeries* out,
                              std::string* key) {
  out->Clear();
  WireReader r(data, offset);
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    const size_t at = r.offset();
    if (!r.ReadTag(&field, &wire_type)) return Corrupt(at, "bad field tag in a TimeSeries");
    if (wire_type != kLengthDelimited || field < 1 || field > 4) {
      if (!r.Skip(wire_type)) return Corrupt(at, "truncated field in a TimeSeries");
      continue;
    }
    std::string_view bytes;
    if (!r.ReadBytes(&bytes)) return Corrupt(at, "truncated field in a TimeSeries");
    const size_t bytes_offset = r.offset() - bytes.size();
    switch (field) {
      case 1:
        ESPY_RETURN_IF_ERROR(DecodeLabel(bytes, bytes_offset, out));
        if (key != nullptr) key->append(data.substr(at - offset, r.offset() - at));
        break;
      case 2:
        ESPY_RETURN_IF_ERROR(DecodeSample(bytes, bytes_offset, out));
        break;
      case 4:
        out->has_histograms = true;
        break;
      default:  // 3: exemplars, ignored
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<model::Labels> ConvertLabels(const RawSeries& raw, int64_t item,
                                            const Limits& limits) {
  // Checked before copying, so a huge label list costs nothing.
  if (raw.labels.size() > limits.max_labels_per_series) {
    return MakeBadInput(item, "",
                        fmt::format("{} labels, at most {} allowed per series (name included)",
                                    raw.labels.size(), limits.max_labels_per_series));
  }
  std::vector<model::Label> labels;
  labels.reserve(raw.labels.size());
  bool has_name = false;
  for (const auto& [name, value] : raw.labels) {
    if (!IsValidLabelName(name)) {
      if (name.empty()) return MakeBadInput(item, "", "empty label name");
      return MakeBadInput(item, ShownName(name), "invalid label name: want [a-zA-Z_][a-zA-Z0-9_]*");
    }
    if (name == model::kMetricNameLabel) {
      if (value.empty()) return MakeBadInput(item, model::kMetricNameLabel, "empty metric name");
      has_name = true;
    } else if (value.empty()) {
      continue;  // Prometheus: an empty value is the same as no label
    }
    labels.push_back({std::string(name), std::string(value)});
  }
  if (!has_name) {
    return MakeBadInput(item, model::kMetricNameLabel,
                        "missing the metric name: every series needs a __name__ label");
  }
  std::sort(labels.begin(), labels.end(),
            [](const model::Label& a, const model::Label& b) { return a.name < b.name; });
  for (size_t i = 1; i < labels.size(); ++i) {
    if (labels[i].name == labels[i - 1].name) {
      return MakeBadInput(item, labels[i].name, "label appears twice in the series");
    }
  }
  model::Labels result(std::move(labels));
  ESPY_RETURN_IF_ERROR(ValidateLabels(result, limits, item));
  return result;
}

}  // namespace

absl::StatusOr<Batch> ParseRemoteWrite(std::string_view body, size_t max_decoded_bytes,
                                       int64_t now_millis, const Limits& limits,
                                       SeriesLookup* lookup) {
  if (lookup != nullptr && !lookup->enabled()) lookup = nullptr;
  size_t decoded_size = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &decoded_size)) {
    return MakeBadInput(-1, "",
                        "body is not snappy block-compressed (remote write needs snappy block "
                        "format, not framed)");
  }
  if (decoded_size > max_decoded_bytes || decoded_size > static_cast<size_t>(INT_MAX)) {
    return MakeBadInput(-1, "",
                        fmt::format("decoded body would be {} bytes, more than the {}-byte limit",
                                    decoded_size, std::min<size_t>(max_decoded_bytes, INT_MAX)));
  }
  std::string decoded;
  if (!snappy::Uncompress(body.data(), body.size(), &decoded)) {
    return MakeBadInput(-1, "", "corrupt snappy data in the body");
  }

  Batch batch;
  RawSeries raw;
  WireReader reader(decoded, 0);
  int64_t item = 0;
  while (!reader.done()) {
    uint32_t field = 0, wire_type = 0;
    const size_t at = reader.offset();
    if (!reader.ReadTag(&field, &wire_type)) return Corrupt(at, "bad field tag");
    if (field != 1 || wire_type != kLengthDelimited) {  // 3: metadata, ignored
      if (!reader.Skip(wire_type)) return Corrupt(at, "truncated field");
      continue;
    }
    std::string_view bytes;
    if (!reader.ReadBytes(&bytes)) return Corrupt(at, "truncated TimeSeries");
    ESPY_RETURN_IF_ERROR(DecodeTimeSeries(bytes, reader.offset() - bytes.size(), &raw,
                                          lookup != nullptr ? &lookup->StartKey() : nullptr));
    if (raw.has_histograms) {
      return MakeBadInput(item, "histograms",
                          "native histograms are not supported; send classic histograms "
                          "(_bucket/_sum/_count series)");
    }
    // A cached spelling was valid before, and means the same labels now.
    const model::SeriesRef ref = lookup != nullptr ? lookup->Find() : 0;
    model::Labels labels;
    if (ref == 0) {
      ESPY_ASSIGN_OR_RETURN(labels, ConvertLabels(raw, item, limits));
    }
    if (!raw.samples.empty()) {
      for (const model::Sample& sample : raw.samples) {
        ESPY_RETURN_IF_ERROR(ValidateTimestamp(sample.ts, now_millis, limits, item));
      }
      const uint32_t index =
          ref != 0 ? batch.AddSeriesRef(ref) : batch.AddSeries(std::move(labels));
      if (ref == 0 && lookup != nullptr) lookup->Missed(index);
      for (const model::Sample& sample : raw.samples) batch.Add(index, sample.ts, sample.value);
    }
    ++item;
  }
  return batch;
}

}  // namespace espy::ingest
