// Benchmarks for the WAL: append throughput (AddRecord + Flush), Sync latency
// and Replay throughput. Files go to a temp dir ($TMPDIR or /tmp), so the
// numbers are those of that file system. All report wall-clock time: the
// work is I/O, and CPU time would hide it.
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "benchmark/benchmark.h"
#include "storage/wal/wal.h"
#include "storage/wal/wal_format.h"

namespace espy::storage::wal {
namespace {

// A temp dir removed when the benchmark is done.
class TempDir {
 public:
  TempDir() {
    const char* env = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(env != nullptr && *env != '\0' ? env : "/tmp") + "/wal_bench_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<WalWriter> OpenOrDie(const std::string& dir) {
  WalOptions options;
  options.dir = dir;
  auto w = WalWriter::Open(options);
  if (!w.ok()) std::abort();
  return *std::move(w);
}

// One AddRecord per iteration, with a Flush (one write(2)) every `batch`
// records: batch 1 is the worst case, a write per record.
void BM_AddRecordFlush(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int64_t batch = state.range(1);
  TempDir dir;
  auto w = OpenOrDie(dir.path() + "/wal");
  const std::string payload(size, 'x');
  int64_t n = 0;
  for (auto _ : state) {
    if (!w->AddRecord(payload).ok()) std::abort();
    if (++n % batch == 0 && !w->Flush().ok()) std::abort();
  }
  if (!w->Flush().ok()) std::abort();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(size + kHeaderBytes));
}
BENCHMARK(BM_AddRecordFlush)
    ->ArgNames({"bytes", "batch"})
    ->Args({100, 1})
    ->Args({100, 1000})
    ->Args({10240, 1})
    ->Args({10240, 100})
    ->UseRealTime();

// One 100-byte record and a Sync (write + fdatasync) per iteration: the
// latency a client sees under --fsync=always.
void BM_Sync(benchmark::State& state) {
  TempDir dir;
  auto w = OpenOrDie(dir.path() + "/wal");
  const std::string payload(100, 'x');
  for (auto _ : state) {
    if (!w->AddRecord(payload).ok() || !w->Sync().ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sync)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Replays `records` records of `bytes` bytes each (files warm in the page
// cache), with a callback that only touches the payload.
void BM_Replay(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int64_t records = state.range(1);
  TempDir dir;
  const std::string wal_dir = dir.path() + "/wal";
  {
    auto w = OpenOrDie(wal_dir);
    std::string payload(size, 'x');
    for (int64_t i = 0; i < records; ++i) {
      payload[0] = static_cast<char>(i);
      if (!w->AddRecord(payload).ok()) std::abort();
    }
    if (!w->Flush().ok()) std::abort();
  }
  const base::Logger logger = base::NullLogger();
  uint64_t sum = 0;
  for (auto _ : state) {
    auto stats = Replay(fs::Env::Default(), wal_dir, logger, [&](std::string_view p) {
      sum += static_cast<unsigned char>(p[0]);
      return absl::OkStatus();
    });
    if (!stats.ok() || stats->records != static_cast<uint64_t>(records)) std::abort();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * records);
  state.SetBytesProcessed(state.iterations() * records * static_cast<int64_t>(size + kHeaderBytes));
}
BENCHMARK(BM_Replay)
    ->ArgNames({"bytes", "records"})
    ->Args({20, 10'000'000})
    ->Args({100, 1'000'000})
    ->Args({10240, 10'000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace espy::storage::wal

BENCHMARK_MAIN();
