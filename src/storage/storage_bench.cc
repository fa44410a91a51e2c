// Storage engine benchmarks: head append throughput, restart (WAL replay)
// time, and bytes per sample on disk for the peer-bench workload shape
// (10,000 series x 100 points at 10 s; counters with 3 decimals, gauges with
// 4) and for long series (1,000 series x 10,000 points, integer counters and
// 2-decimal gauges).
#include <filesystem>
#include <random>

#include "benchmark/benchmark.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

std::string BenchDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/espy_storage_bench_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// One batch per timestamp across `series` series; even series are
// counters, odd ones random-walk gauges.
std::vector<model::SampleBatch> Workload(int series, int points, int counter_decimals,
                                         int gauge_decimals) {
  std::mt19937_64 rng(42);
  std::vector<double> value(series, 0);
  std::vector<model::SampleBatch> batches(points);
  const double cscale = std::pow(10, counter_decimals), gscale = std::pow(10, gauge_decimals);
  for (int p = 0; p < points; ++p) {
    model::SampleBatch& b = batches[p];
    for (int s = 0; s < series; ++s) {
      b.AddSeries(model::Labels({{"__name__", "m" + std::to_string(s % 10)},
                                 {"host", "h" + std::to_string(s / 10 % 1000)},
                                 {"region", "r" + std::to_string(s % 4)},
                                 {"i", std::to_string(s)}}));
      if (s % 2 == 0) {
        value[s] += std::round((rng() % 1000) * cscale / 10) / cscale;
      } else {
        value[s] =
            std::round((value[s] + (static_cast<double>(rng() % 2001) - 1000) / 100) * gscale) /
            gscale;
      }
      b.Add(static_cast<uint32_t>(s), 1'700'000'000'000 + p * 10'000LL, value[s]);
    }
  }
  return batches;
}

void BM_HeadAppend(benchmark::State& state) {
  const int series = 10'000;
  std::vector<model::Sample> vals;
  for (auto _ : state) {
    state.PauseTiming();
    head::Head h;
    std::vector<model::SeriesRef> refs;
    for (int s = 0; s < series; ++s) {
      refs.push_back(h.Create(model::Labels({{"__name__", "m"}, {"i", std::to_string(s)}})));
    }
    state.ResumeTiming();
    for (int p = 0; p < 100; ++p) {
      for (int s = 0; s < series; ++s) h.Append(refs[s], p * 10'000LL, s + p * 0.5);
    }
  }
  state.SetItemsProcessed(state.iterations() * series * 100);
}
BENCHMARK(BM_HeadAppend)->Unit(benchmark::kMillisecond);

// Bytes per sample on disk after FlushHead and compaction (blocks only).
void BytesPerSample(benchmark::State& state, int series, int points, int cdec, int gdec) {
  auto batches = Workload(series, points, cdec, gdec);
  for (auto _ : state) {
    std::string dir = BenchDir("bps");
    DbOptions o;
    o.dir = dir;
    o.fsync = wal::FsyncPolicy::kNever;
    o.maintenance_interval_ms = 0;
    auto db = Db::Open(o);
    for (auto& b : batches) (void)(*db)->CommitAndWait(b);
    (void)(*db)->FlushHead();
    DbStats s = (*db)->stats();
    state.counters["bytes_per_sample_uncompacted"] =
        static_cast<double>(s.block_bytes) / static_cast<double>(s.block_samples);
    state.counters["blocks_uncompacted"] = static_cast<double>(s.blocks);
    // Compaction merges the finished 24h windows.
    if (absl::Status st = (*db)->Maintain(); !st.ok()) state.SkipWithError(st.ToString().c_str());
    s = (*db)->stats();
    uint64_t index_bytes = 0, merged_bytes = 0, merged_samples = 0;
    for (const auto& e : (*db)->head().Blocks()) {
      const block::BlockMeta& m = e->block->meta();
      index_bytes += m.index_bytes;
      if (m.level > 1) {  // made by compaction: the steady state of old data
        merged_bytes += m.chunks_bytes + m.index_bytes;
        merged_samples += m.num_samples;
      }
    }
    if (merged_samples > 0) {
      state.counters["bytes_per_sample_compacted_blocks"] =
          static_cast<double>(merged_bytes) / static_cast<double>(merged_samples);
    }
    const double samples = static_cast<double>(s.block_samples);
    state.counters["bytes_per_sample"] = static_cast<double>(s.block_bytes) / samples;
    state.counters["index_bytes_per_sample"] = static_cast<double>(index_bytes) / samples;
    state.counters["blocks"] = static_cast<double>(s.blocks);
    db->reset();
    std::filesystem::remove_all(dir);
  }
}
void BM_BytesPerSample_10kx100(benchmark::State& state) {
  BytesPerSample(state, 10'000, 100, 3, 4);
}
void BM_BytesPerSample_Long(benchmark::State& state) { BytesPerSample(state, 1'000, 10'000, 0, 2); }
BENCHMARK(BM_BytesPerSample_10kx100)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_BytesPerSample_Long)->Unit(benchmark::kMillisecond)->Iterations(1);

// Head memory per active series after 100 points each.
void BM_HeadMemoryPerSeries(benchmark::State& state) {
  auto batches = Workload(10'000, 100, 3, 4);
  for (auto _ : state) {
    std::string dir = BenchDir("mem");
    DbOptions o;
    o.dir = dir;
    o.fsync = wal::FsyncPolicy::kNever;
    o.maintenance_interval_ms = 0;
    auto db = Db::Open(o);
    for (auto& b : batches) (void)(*db)->CommitAndWait(b);
    DbStats s = (*db)->stats();
    state.counters["head_bytes_per_series"] = static_cast<double>(s.head_memory_bytes) / s.series;
    db->reset();
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_HeadMemoryPerSeries)->Unit(benchmark::kMillisecond)->Iterations(1);

// Restart time with 10M samples in the WAL (100,000 series x 100 points).
void BM_RestartReplay10M(benchmark::State& state) {
  std::string dir = BenchDir("restart");
  {
    DbOptions o;
    o.dir = dir;
    o.fsync = wal::FsyncPolicy::kNever;
    o.maintenance_interval_ms = 0;
    auto db = Db::Open(o);
    for (int chunk = 0; chunk < 10; ++chunk) {
      auto batches = Workload(10'000, 100, 3, 4);
      for (auto& b : batches) {
        for (auto& l : b.series) {
          std::vector<model::Label> items = l.items();
          items.push_back({"shard", std::to_string(chunk)});
          l = model::Labels(std::move(items));
        }
        (void)(*db)->CommitAndWait(b);
      }
    }
  }
  for (auto _ : state) {
    DbOptions o;
    o.dir = dir;
    o.maintenance_interval_ms = 0;
    auto db = Db::Open(o);
    state.counters["samples"] = static_cast<double>((*db)->stats().samples_in_head);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RestartReplay10M)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace espy::storage

BENCHMARK_MAIN();
