// Throughput of the JSON ingest parser on bodies shaped like real pushes.
#include <string>

#include "benchmark/benchmark.h"
#include "fmt/format.h"
#include "ingest/json_parser.h"

namespace espy::ingest {
namespace {

constexpr int kItems = 10000;
constexpr int64_t kNow = 1700000000000;

// kItems objects spread over `hosts` series, as an array or NDJSON.
std::string MakeBody(int hosts, JsonFormat format) {
  std::string body = format == JsonFormat::kJson ? "[" : "";
  for (int i = 0; i < kItems; ++i) {
    if (i > 0) body += format == JsonFormat::kJson ? ",\n" : "\n";
    body += fmt::format(
        R"({{"name":"cpu_usage","value":12.5,"ts":1700000000.5,"host":"host-{}","region":"eu-west"}})",
        i % hosts);
  }
  if (format == JsonFormat::kJson) body += "]";
  return body;
}

void Run(benchmark::State& state, JsonFormat format) {
  const std::string body = MakeBody(static_cast<int>(state.range(0)), format);
  const Limits limits;
  for (auto _ : state) {
    absl::StatusOr<Batch> batch = ParseJsonMetrics(body, format, kNow, limits);
    if (!batch.ok() || batch->samples.size() != kItems) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(batch->samples.data());
  }
  state.SetItemsProcessed(state.iterations() * kItems);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}

// Argument: distinct series among the 10,000 samples.
void BM_ParseJsonArray(benchmark::State& state) { Run(state, JsonFormat::kJson); }
BENCHMARK(BM_ParseJsonArray)->Arg(1)->Arg(1000)->Arg(kItems)->Unit(benchmark::kMillisecond);

void BM_ParseNdjson(benchmark::State& state) { Run(state, JsonFormat::kNdjson); }
BENCHMARK(BM_ParseNdjson)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace espy::ingest

BENCHMARK_MAIN();
