// libFuzzer target for ParseInfluxLines: the first byte picks the precision,
// the rest is the body. Checks that a parsed batch is self-consistent, and
// means the same with a SeriesCache.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ingest/bad_input.h"
#include "ingest/influx_parser.h"
#include "ingest/series_cache_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using espy::ingest::InfluxPrecision;
  if (size == 0) return 0;
  constexpr InfluxPrecision kPrecisions[] = {
      InfluxPrecision::kNanoseconds, InfluxPrecision::kMicroseconds, InfluxPrecision::kMilliseconds,
      InfluxPrecision::kSeconds,     InfluxPrecision::kMinutes,      InfluxPrecision::kHours};
  const InfluxPrecision precision = kPrecisions[data[0] % 6];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<espy::ingest::Batch> batch =
      espy::ingest::ParseInfluxLines(body, precision, 1'700'000'000'000, espy::ingest::Limits{});
  if (!batch.ok()) {
    // Every error must carry a BadInput payload.
    if (!espy::ingest::GetBadInput(batch.status())) std::abort();
    return 0;
  }
  for (const espy::model::BatchSample& s : batch->samples) {
    if (s.series >= batch->series.size()) std::abort();
    if (batch->series[s.series].MetricName().empty()) std::abort();
  }
  espy::ingest::CheckSameWithSeriesCache(
      espy::ingest::SeriesCache::Protocol::kInflux, [&](espy::ingest::SeriesLookup* lookup) {
        return espy::ingest::ParseInfluxLines(body, precision, 1'700'000'000'000,
                                              espy::ingest::Limits{}, lookup);
      });
  return 0;
}
