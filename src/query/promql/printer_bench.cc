// AppendNumber, which writes every value of query results and exports, on
// values shaped like the peer benchmark's: counters with 3 decimals below
// 1e9, gauges with 2-4 decimals, and a fifth of byte counts above 1e9.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "query/promql/printer.h"

namespace espy::query::promql {
namespace {

std::vector<double> Values() {
  std::mt19937_64 rng(1);
  std::vector<double> v;
  v.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) {
    switch (i % 5) {
      case 0:
        v.push_back(static_cast<double>(rng() % 1'000'000'000'000ULL) / 1000);  // counter
        break;
      case 1:
        v.push_back(static_cast<double>(rng() % 100'000'000) / 10'000);  // gauge
        break;
      case 2:
        v.push_back(4e9 + static_cast<double>(rng() % 10'000'000'000ULL) / 10'000);  // bytes
        break;
      case 3:
        v.push_back(static_cast<double>(rng() % 1'000'000) / 1000);
        break;
      default:
        v.push_back(static_cast<double>(rng() % 10'000) / 100);  // percent
        break;
    }
  }
  return v;
}

void BM_AppendNumber(benchmark::State& state) {
  const std::vector<double> values = Values();
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (double v : values) {
      AppendNumber(v, &out);
      out.push_back(',');
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * values.size()));
}
BENCHMARK(BM_AppendNumber);

}  // namespace
}  // namespace espy::query::promql

BENCHMARK_MAIN();
