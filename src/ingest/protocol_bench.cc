// Throughput of the line-protocol and remote-write parsers on 10,000-sample
// payloads; items/s is samples/s on one core. Run: build/src/ingest/ingest_bench.
#include <snappy.h>

#include <string>

#include "benchmark/benchmark.h"
#include "fmt/format.h"
#include "ingest/graphite_parser.h"
#include "ingest/influx_parser.h"
#include "ingest/remote_write_parser.h"
#include "remote_write.pb.h"

namespace espy::ingest {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int kSamples = 10'000;

// Telegraf-like: 5 fields per line. `hosts` distinct tag sets; with fewer
// hosts than lines the same series repeat at later timestamps.
std::string InfluxPayload(int hosts) {
  std::string body;
  for (int line = 0; line < kSamples / 5; ++line) {
    body += fmt::format(
        "cpu,host=server-{:05d},region=eu-west-{},cpu=cpu-total usage_user={}.25,usage_system=3.5,"
        "usage_idle=90.125,usage_iowait=0.5,usage_steal=0i {}\n",
        line % hosts, line % 7, line % 100, (kNow - line / hosts * 10'000) * 1'000'000);
  }
  return body;
}

std::string GraphitePayload(int series) {
  std::string body;
  for (int i = 0; i < kSamples; ++i) {
    body += fmt::format("servers.host-{:05d}.cpu.load;dc=eu-{} {}.5 {}\n", i % series, i % 7,
                        i % 100, kNow / 1000 - i / series * 10);
  }
  return body;
}

// Prometheus-like: 6 labels per series, `samples_per_series` samples each.
std::string RemoteWritePayload(int samples_per_series) {
  prometheus::WriteRequest request;
  for (int s = 0; s < kSamples / samples_per_series; ++s) {
    prometheus::TimeSeries* ts = request.add_timeseries();
    auto add_label = [&](std::string name, std::string value) {
      prometheus::Label* label = ts->add_labels();
      label->set_name(std::move(name));
      label->set_value(std::move(value));
    };
    add_label("__name__", "http_requests_total");
    add_label("code", fmt::format("{}", 200 + s % 5));
    add_label("handler", fmt::format("/api/v1/endpoint{}", s % 50));
    add_label("instance", fmt::format("10.0.{}.{}:9100", s / 250, s % 250));
    add_label("job", "api-server");
    add_label("method", "GET");
    for (int i = 0; i < samples_per_series; ++i) {
      prometheus::Sample* sample = ts->add_samples();
      sample->set_timestamp(kNow - (samples_per_series - i) * 15'000);
      sample->set_value(s * 10.0 + i);
    }
  }
  std::string raw = request.SerializeAsString();
  std::string body;
  snappy::Compress(raw.data(), raw.size(), &body);
  return body;
}

void BM_Influx(benchmark::State& state) {
  const std::string body = InfluxPayload(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<Batch> batch =
        ParseInfluxLines(body, InfluxPrecision::kNanoseconds, kNow, Limits{});
    if (!batch.ok() || batch->samples.size() != kSamples) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(batch);
  }
  state.SetItemsProcessed(state.iterations() * kSamples);
  state.SetBytesProcessed(state.iterations() * body.size());
}
// 2000 distinct tag sets (every series new) and 100 (each series 20 times).
BENCHMARK(BM_Influx)->Arg(2000)->Arg(100);

void BM_Graphite(benchmark::State& state) {
  const std::string body = GraphitePayload(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    GraphiteParseResult result = ParseGraphiteLines(body, 0, kNow, Limits{});
    if (result.error_count != 0 || result.batch.samples.size() != kSamples) {
      state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * kSamples);
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_Graphite)->Arg(10'000)->Arg(100);

void BM_RemoteWrite(benchmark::State& state) {
  const std::string body = RemoteWritePayload(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<Batch> batch = ParseRemoteWrite(body, 64 << 20, kNow, Limits{});
    if (!batch.ok() || batch->samples.size() != kSamples) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(batch);
  }
  state.SetItemsProcessed(state.iterations() * kSamples);
  state.SetBytesProcessed(state.iterations() * body.size());
}
// One sample per series (what Prometheus sends) and ten.
BENCHMARK(BM_RemoteWrite)->Arg(1)->Arg(10);

}  // namespace
}  // namespace espy::ingest

// main() comes from json_parser_bench.cc: all *_bench.cc files of this folder
// link into one ingest_bench binary.
