// Downsampling benchmark: 100 series (50 counters, 50 gauges) at 60 s over
// 30 days, stored twice: raw, and with tiers 5m:1d,1h:7d (so most of the
// month is in hourly buckets). The same month-long range queries at a 1 h
// step run over both; the counters report the bytes each store keeps.
#include <filesystem>
#include <random>

#include "absl/synchronization/mutex.h"
#include "base/check.h"
#include "benchmark/benchmark.h"
#include "query/engine/engine.h"
#include "storage/db.h"

namespace espy::query::engine {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kStart = 1'700'000'000'000 / kDay * kDay;
constexpr int64_t kEnd = kStart + 30 * kDay;

class Store {
 public:
  explicit Store(bool tiers) : clock_(kEnd + kHour) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/espy_tier_bench_" +
           (tiers ? "tiers" : "raw");
    std::filesystem::remove_all(dir_);
    storage::DbOptions o;
    o.dir = dir_;
    o.fsync = storage::wal::FsyncPolicy::kNever;
    o.clock = &clock_;
    o.maintenance_interval_ms = 0;
    if (tiers) o.tiers = {{5 * kMin, kDay}, {kHour, 7 * kDay}};
    db_ = std::move(*storage::Db::Open(o));
    std::mt19937_64 rng(7);
    std::normal_distribution<double> step(0, 1);
    for (int day = 0; day < 30; ++day) {
      model::SampleBatch batch;
      for (int s = 0; s < 100; ++s) {
        uint32_t id = batch.AddSeries(model::Labels(
            {{"__name__", s < 50 ? "req" : "temp"}, {"host", "h" + std::to_string(s)}}));
        for (int64_t t = kStart + day * kDay; t < kStart + (day + 1) * kDay; t += kMin) {
          values_[s] += s < 50 ? static_cast<double>(rng() % 100) : step(rng);
          batch.Add(id, t, s < 50 ? values_[s] : std::round(values_[s] * 100) / 100);
        }
      }
      ESPY_CHECK(db_->CommitAndWait(std::move(batch)).ok());
    }
    ESPY_CHECK(db_->FlushHead().ok());
    ESPY_CHECK(db_->Maintain().ok());
    queryable_ = *db_->Querier(INT64_MIN, INT64_MAX);
  }
  ~Store() {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  const Queryable& queryable() const { return *queryable_; }
  uint64_t bytes() const {
    storage::DbStats s = db_->stats();
    return s.block_bytes + s.tier_bytes;
  }

 private:
  base::FakeClock clock_;
  std::string dir_;
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<storage::Querier> queryable_;
  double values_[100] = {};
};

Store& Get(bool tiers) {
  static Store* raw = new Store(false);
  static Store* tiered = new Store(true);
  return tiers ? *tiered : *raw;
}

void Month(benchmark::State& state, const char* query) {
  const Store& store = Get(state.range(0) != 0);
  Engine engine;
  for (auto _ : state) {
    auto r = engine.RangeQuery(store.queryable(), query, kStart + kDay, kEnd, kHour);
    ESPY_CHECK(r.ok());
    benchmark::DoNotOptimize(r);
  }
  state.counters["store_bytes"] = static_cast<double>(store.bytes());
  state.SetLabel(state.range(0) != 0 ? "tiers 5m:1d,1h:7d" : "raw");
}

BENCHMARK_CAPTURE(Month, sum_rate, "sum(rate(req[2h]))")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Month, avg_over_time, "avg_over_time(temp[1h])")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Month, max_over_time, "max(max_over_time(temp[1h]))")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace espy::query::engine

BENCHMARK_MAIN();
