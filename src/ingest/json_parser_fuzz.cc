// libFuzzer target for ParseJsonMetrics: the first byte picks JSON or NDJSON,
// the rest is the body. Checks that errors carry a BadInput and that a parsed
// batch is self-consistent (every sample points at a named series).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ingest/bad_input.h"
#include "ingest/json_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using espy::ingest::JsonFormat;
  if (size == 0) return 0;
  const JsonFormat format = data[0] % 2 == 0 ? JsonFormat::kJson : JsonFormat::kNdjson;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<espy::ingest::Batch> batch =
      espy::ingest::ParseJsonMetrics(body, format, 1'700'000'000'000, espy::ingest::Limits{});
  if (!batch.ok()) {
    if (!espy::ingest::GetBadInput(batch.status())) std::abort();
    return 0;
  }
  for (const espy::model::BatchSample& s : batch->samples) {
    if (s.series >= batch->series.size()) std::abort();
    if (batch->series[s.series].MetricName().empty()) std::abort();
  }
  return 0;
}
