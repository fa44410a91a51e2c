// libFuzzer target for ParseRemoteWrite. The input is tried as a body as
// sent (snappy) and, snappy-compressed here, as a raw WriteRequest so the
// fuzzer reaches the protobuf decoder. When both Espy's hand-written decoder
// and the generated protobuf classes accept a request, they must agree on the
// samples. (Espy skips metadata, exemplars and histograms unparsed, so it may
// accept what the generated classes reject.) Either way, parsing with a
// SeriesCache must mean the same as without.
#include <snappy.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ingest/bad_input.h"
#include "ingest/remote_write_parser.h"
#include "ingest/series_cache_fuzz.h"
#include "remote_write.pb.h"

namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr size_t kMaxDecodedBytes = 1 << 20;

void Check(const absl::StatusOr<espy::ingest::Batch>& batch, const std::string* raw) {
  if (!batch.ok()) {
    if (!espy::ingest::GetBadInput(batch.status())) std::abort();
    return;
  }
  for (const espy::model::BatchSample& s : batch->samples) {
    if (s.series >= batch->series.size()) std::abort();
  }
  if (raw == nullptr) return;
  prometheus::WriteRequest request;
  if (!request.ParseFromString(*raw)) return;
  size_t samples = 0;
  for (const prometheus::TimeSeries& ts : request.timeseries()) samples += ts.samples_size();
  if (samples != batch->samples.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  espy::ingest::Limits limits;
  limits.max_future_millis = 0;
  Check(espy::ingest::ParseRemoteWrite(input, kMaxDecodedBytes, kNow, limits), nullptr);

  const std::string raw(input);
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  Check(espy::ingest::ParseRemoteWrite(body, kMaxDecodedBytes, kNow, limits), &raw);
  espy::ingest::CheckSameWithSeriesCache(
      espy::ingest::SeriesCache::Protocol::kRemoteWrite, [&](espy::ingest::SeriesLookup* lookup) {
        return espy::ingest::ParseRemoteWrite(body, kMaxDecodedBytes, kNow, limits, lookup);
      });
  return 0;
}
