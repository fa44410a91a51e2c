// Chunk encoding benchmarks: append and decode throughput (samples/s as
// items_per_second) and compressed size (bytes_per_sample counter) for the
// workloads in chunk_workloads.h.
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/chunk/chunk.h"
#include "storage/chunk/chunk_workloads.h"

namespace espy::storage::chunk {
namespace {

using testing::MakeWorkload;
using testing::Workload;

constexpr int kSeriesLength = 10'000;

void SetLabel(benchmark::State& state, Workload w) { state.SetLabel(testing::WorkloadName(w)); }

// Appends kSeriesLength samples in chunks of range(1) samples.
void BM_Append(benchmark::State& state) {
  const Workload w = static_cast<Workload>(state.range(0));
  const int chunk_size = static_cast<int>(state.range(1));
  const std::vector<Sample> samples = MakeWorkload(w, kSeriesLength);
  size_t bytes = 0;
  for (auto _ : state) {
    std::vector<std::string> chunks = testing::EncodeChunks(samples, chunk_size);
    bytes = 0;
    for (const std::string& c : chunks) bytes += c.size();
    benchmark::DoNotOptimize(chunks.data());
  }
  state.SetItemsProcessed(state.iterations() * samples.size());
  state.counters["bytes_per_sample"] = static_cast<double>(bytes) / samples.size();
  SetLabel(state, w);
}

std::vector<std::string> ChunksFor(benchmark::State& state, size_t* n) {
  const Workload w = static_cast<Workload>(state.range(0));
  const int chunk_size = static_cast<int>(state.range(1));
  const std::vector<Sample> samples = MakeWorkload(w, kSeriesLength);
  *n = samples.size();
  SetLabel(state, w);
  return testing::EncodeChunks(samples, chunk_size);
}

// Bulk-decodes every chunk of the series into reused vectors.
void BM_DecodeChunk(benchmark::State& state) {
  size_t n;
  const std::vector<std::string> chunks = ChunksFor(state, &n);
  std::vector<int64_t> ts;
  std::vector<double> vs;
  ts.reserve(n);
  vs.reserve(n);
  for (auto _ : state) {
    ts.clear();
    vs.clear();
    for (const std::string& c : chunks) {
      if (!DecodeChunk(c, &ts, &vs).ok()) state.SkipWithError("decode failed");
    }
    benchmark::DoNotOptimize(ts.data());
    benchmark::DoNotOptimize(vs.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// Iterates every chunk sample by sample, summing values.
void BM_Iterate(benchmark::State& state) {
  size_t n;
  const std::vector<std::string> chunks = ChunksFor(state, &n);
  for (auto _ : state) {
    double sum = 0;
    for (const std::string& c : chunks) {
      ChunkIterator it(c);
      while (it.Next()) sum += it.At().v;
    }
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void Workloads(benchmark::internal::Benchmark* b) {
  for (int w = 0; w <= static_cast<int>(Workload::kFloatGauge); ++w) {
    for (int chunk_size : {120, 1000, kSeriesLength}) b->Args({w, chunk_size});
  }
}

BENCHMARK(BM_Append)->Apply(Workloads);
BENCHMARK(BM_DecodeChunk)->Apply(Workloads);
BENCHMARK(BM_Iterate)->Apply(Workloads);

}  // namespace
}  // namespace espy::storage::chunk

BENCHMARK_MAIN();
