// SamplePager benchmarks: the page behind GET /v1/metrics?name=...&limit=600
// over the peer-bench shape (1,000 series of the name, 100 points each at
// 10 s, among 10,000 series): every series is positioned, 600 points come
// out, read through storage::Db's Querier. Args: the number of series of
// the name, the page size.
#include <filesystem>

#include "absl/synchronization/mutex.h"
#include "base/check.h"
#include "benchmark/benchmark.h"
#include "query/sample_pager.h"
#include "storage/db.h"

namespace espy::query {
namespace {

void BM_FirstPage(benchmark::State& state) {
  const int per_name = static_cast<int>(state.range(0));
  const size_t limit = static_cast<size_t>(state.range(1));
  // As the server runs (src/server/main.cc): Debian's Abseil checks every
  // lock for deadlock cycles otherwise.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string dir = std::filesystem::temp_directory_path() / "espy_sample_pager_bench";
  std::filesystem::remove_all(dir);
  storage::DbOptions o;
  o.dir = dir;
  o.fsync = storage::wal::FsyncPolicy::kNever;
  o.maintenance_interval_ms = 0;
  std::unique_ptr<storage::Db> db = *storage::Db::Open(o);
  model::SampleBatch batch;
  for (int s = 0; s < per_name * 10; ++s) {
    uint32_t i = batch.AddSeries(model::Labels({{"__name__", "m" + std::to_string(s % 10)},
                                                {"host", "host-" + std::to_string(s / 10)},
                                                {"region", "r" + std::to_string(s % 4)}}));
    for (int p = 0; p < 100; ++p) batch.Add(i, 1'700'000'000'000 + p * 10'000LL, s + p * 0.5);
  }
  ESPY_CHECK(db->CommitAndWait(std::move(batch)).ok());
  std::unique_ptr<storage::Querier> querier = *db->Querier(INT64_MIN, INT64_MAX);
  PageRequest request;
  request.matchers.push_back(*model::Matcher::Make(model::MatchType::kEqual, "__name__", "m0"));
  request.limit = limit;
  size_t points = 0;
  for (auto _ : state) {
    Page page = *ReadPage(*querier, request);
    points += page.points.size();
    benchmark::DoNotOptimize(page);
  }
  state.counters["points/s"] =
      benchmark::Counter(static_cast<double>(points), benchmark::Counter::kIsRate);
  querier.reset();
  db.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FirstPage)
    ->Args({1000, 600})
    ->Args({100, 600})
    ->Args({1000, 10000})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace espy::query

BENCHMARK_MAIN();
