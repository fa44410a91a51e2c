// Benchmarks for WAL record payloads: the cost of EncodeBatch + DecodeBatch
// for one record, from the single-sample POST (a record per sample, so its
// fixed cost matters) to a 10,000-sample remote-write batch. Pure CPU, no
// I/O. On a shared machine compare instruction counts rather than times:
// run it under valgrind --tool=callgrind and divide the inclusive cost of
// EncodeBatch and DecodeBatch by the iterations it prints (bench/README.md
// has the command).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/record/record.h"

namespace espy::storage::record {
namespace {

// Samples shaped like the peer-bench workload: `n` samples of n/2 series
// (two timestamps 10 s apart each), counters with 3 decimals and gauges with
// 4, plus `new_series` series records with four labels.
void MakeBatch(int64_t n, int64_t new_series, std::vector<RefSeries>* series,
               std::vector<RefSample>* samples) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uni(0, 1e6);
  std::normal_distribution<double> walk(0, 1);
  for (int64_t i = 0; i < new_series; ++i) {
    series->push_back({static_cast<model::SeriesRef>(i + 1),
                       model::Labels({{"__name__", "http_requests_total"},
                                      {"host", "host-" + std::to_string(i % 1000)},
                                      {"job", "job-0"},
                                      {"region", "us-east"}})});
  }
  const int64_t nseries = std::max<int64_t>(1, n / 2);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = i % nseries;
    const bool counter = s % 10 < 5;
    const double v =
        counter ? std::round(uni(rng) * 1e3) / 1e3 : std::round((50 + walk(rng)) * 1e4) / 1e4;
    samples->push_back(
        {static_cast<model::SeriesRef>(s + 1), 1'700'000'000'000 + (i / nseries) * 10'000, v});
  }
}

void BM_EncodeDecode(benchmark::State& state) {
  std::vector<RefSeries> series, got_series;
  std::vector<RefSample> samples, got_samples;
  MakeBatch(state.range(0), state.range(1), &series, &samples);
  std::string buf;
  for (auto _ : state) {
    buf.clear();
    EncodeBatch(series, samples, &buf);
    if (!DecodeBatch(buf, &got_series, &got_samples).ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(got_samples.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["bytes_per_sample"] =
      static_cast<double>(buf.size()) / static_cast<double>(state.range(0));
}
// {samples, new series}: a single-sample POST of a known series and of a new
// one, a small batch, the peer-bench's 10,000-sample request.
BENCHMARK(BM_EncodeDecode)->Args({1, 0})->Args({1, 1})->Args({100, 0})->Args({10000, 0});

}  // namespace
}  // namespace espy::storage::record

BENCHMARK_MAIN();
