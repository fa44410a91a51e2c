// PromQL engine benchmarks on the query issue's workload: 10 metrics x 1,000
// hosts (4 regions), 100 points at 10 s (counters m0-m4, gauges m5-m9), plus
// a histogram h_bucket (100 hosts x 8 buckets), all in one storage::Db.
// Latency of the benchmark queries, evaluated in process (no HTTP).
#include <filesystem>
#include <random>

#include "absl/synchronization/mutex.h"
#include "base/check.h"
#include "benchmark/benchmark.h"
#include "query/engine/engine.h"
#include "storage/db.h"

namespace espy::query::engine {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int kPoints = 100;
constexpr int64_t kInterval = 10'000;
constexpr int64_t kEnd = kStart + (kPoints - 1) * kInterval;

class Fixture {
 public:
  static Fixture& Get() {
    static Fixture* f = new Fixture();
    return *f;
  }
  const Queryable& queryable() const { return *queryable_; }

 private:
  Fixture() {
    // As the server runs (src/server/main.cc): Debian's Abseil checks every
    // lock for deadlock cycles otherwise.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/espy_engine_bench";
    std::filesystem::remove_all(dir_);
    storage::DbOptions o;
    o.dir = dir_;
    o.fsync = storage::wal::FsyncPolicy::kNever;
    db_ = std::move(*storage::Db::Open(o));
    std::mt19937_64 rng(42);
    std::normal_distribution<double> step(0, 1);
    for (int m = 0; m < 10; ++m) {
      model::SampleBatch batch;
      for (int h = 0; h < 1000; ++h) {
        uint32_t s = batch.AddSeries(model::Labels({{"__name__", "m" + std::to_string(m)},
                                                    {"host", "host-" + std::to_string(h)},
                                                    {"region", "r" + std::to_string(h % 4)}}));
        double v = m < 5 ? 0 : 50;
        for (int i = 0; i < kPoints; ++i) {
          v += m < 5 ? static_cast<double>(rng() % 100) : step(rng);
          batch.Add(s, kStart + i * kInterval, m < 5 ? v : std::round(v * 1000) / 1000);
        }
      }
      ESPY_CHECK(db_->CommitAndWait(std::move(batch)).ok());
    }
    model::SampleBatch hist;
    const char* les[] = {"0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"};
    for (int h = 0; h < 100; ++h) {
      for (int b = 0; b < 8; ++b) {
        uint32_t s = hist.AddSeries(model::Labels(
            {{"__name__", "h_bucket"}, {"host", "host-" + std::to_string(h)}, {"le", les[b]}}));
        for (int i = 0; i < kPoints; ++i) hist.Add(s, kStart + i * kInterval, (b + 1) * i * 10.0);
      }
    }
    ESPY_CHECK(db_->CommitAndWait(std::move(hist)).ok());
    queryable_ = *db_->Querier(INT64_MIN, INT64_MAX);
  }

  std::string dir_;
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<storage::Querier> queryable_;
};

void Instant(benchmark::State& state, const char* query) {
  const Queryable& q = Fixture::Get().queryable();
  Engine engine;
  for (auto _ : state) {
    auto r = engine.InstantQuery(q, query, kEnd);
    ESPY_CHECK(r.ok());
    benchmark::DoNotOptimize(r);
  }
}

void Range(benchmark::State& state, const char* query) {
  const Queryable& q = Fixture::Get().queryable();
  Engine engine;
  for (auto _ : state) {
    auto r = engine.RangeQuery(q, query, kStart + 300'000, kEnd, 60'000);
    ESPY_CHECK(r.ok());
    benchmark::DoNotOptimize(r);
  }
}

BENCHMARK_CAPTURE(Instant, one_series, "m5{host=\"host-7\"}")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Range, rate_one_host, "rate(m0{host=\"host-7\"}[5m])")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Range, sum_by_region_rate_1000, "sum by (region) (rate(m0[5m]))")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Range, histogram_quantile,
                  "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Instant, max_over_time_1000, "max_over_time(m5[15m])")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Instant, count_over_time_1000, "count(count_over_time(m5[20m]))")
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace espy::query::engine

BENCHMARK_MAIN();
