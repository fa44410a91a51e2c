#include "query/engine/result_cache.h"

#include "gtest/gtest.h"
#include "query/engine/memory_queryable.h"
#include "query/promql/parser.h"
#include "storage/api/forwarding_querier.h"

namespace espy::query::engine {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kHour = 60 * kMin;

model::Labels L(std::string host) {
  return model::Labels(std::vector<model::Label>{{"__name__", "req"}, {"host", std::move(host)}});
}

void ExpectSameMatrix(const Matrix& want, const Matrix& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].metric, got[i].metric);
    ASSERT_EQ(want[i].points.size(), got[i].points.size()) << want[i].metric.ToString();
    for (size_t j = 0; j < want[i].points.size(); ++j) {
      EXPECT_EQ(want[i].points[j].t, got[i].points[j].t);
      EXPECT_DOUBLE_EQ(want[i].points[j].v, got[i].points[j].v);
    }
  }
}

class ResultCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two counters, a sample every 15 s over 6 hours; host b starts later.
    for (int64_t t = 0; t <= 6 * kHour; t += 15'000) {
      store_.Add(L("a"), t, static_cast<double>(t / 1000));
      if (t >= kHour) store_.Add(L("b"), t, static_cast<double>(t / 500));
    }
  }
  // The cache's answer, checked against a fresh evaluation.
  Matrix Run(ResultCache& cache, const std::string& q, int64_t start, int64_t end, int64_t now) {
    auto expr = promql::ParseExpr(q);
    EXPECT_TRUE(expr.ok()) << expr.status();
    auto got = cache.RangeQuery(engine_, store_, **expr, q, start, end, kMin, now);
    EXPECT_TRUE(got.ok()) << got.status();
    auto want = engine_.Exec(store_, **expr, start, end, kMin);
    EXPECT_TRUE(want.ok()) << want.status();
    ExpectSameMatrix(want->matrix, got->matrix);
    return got->matrix;
  }

  MemoryQueryable store_;
  Engine engine_;
};

TEST_F(ResultCacheTest, ASlidingWindowReusesKeptSteps) {
  ResultCache cache({});
  const std::string q = "sum by (host) (rate(req[5m]))";
  Run(cache, q, kHour, 3 * kHour, 6 * kHour);
  EXPECT_EQ(1u, cache.stats().misses);
  EXPECT_EQ(1u, cache.stats().entries);
  for (int i = 1; i <= 5; ++i) {
    Run(cache, q, kHour + i * kMin, 3 * kHour + i * kMin, 6 * kHour + i * kMin);
  }
  EXPECT_EQ(5u, cache.stats().hits);
  EXPECT_EQ(1u, cache.stats().entries);
  // Another step grid or another step is another entry.
  Run(cache, q, kHour + 30'000, 3 * kHour, 6 * kHour);
  EXPECT_EQ(2u, cache.stats().entries);
}

TEST_F(ResultCacheTest, RecentStepsAreNotKept) {
  ResultCache cache({.recent_ms = 5 * kMin});
  const std::string q = "req";
  // "Now" is the end of the data: its last 5 minutes may still change.
  Run(cache, q, 5 * kHour, 6 * kHour, 6 * kHour);
  store_.Add(L("a"), 6 * kHour - kMin, -1);  // a late sample in the recent window
  Matrix m = Run(cache, q, 5 * kHour, 6 * kHour, 6 * kHour);
  EXPECT_EQ(1u, cache.stats().hits);
}

TEST_F(ResultCacheTest, ALateSampleInvalidatesTheStepsItChanges) {
  ResultCache cache({});
  const std::string q = "req";
  Run(cache, q, kHour, 3 * kHour, 6 * kHour);
  store_.Add(L("a"), 2 * kHour, -1);
  // Without Invalidate the cache would answer from before the sample.
  auto expr = promql::ParseExpr(q);
  auto stale = cache.RangeQuery(engine_, store_, **expr, q, kHour, 3 * kHour, kMin, 6 * kHour);
  ASSERT_TRUE(stale.ok());
  auto fresh = engine_.Exec(store_, **expr, kHour, 3 * kHour, kMin);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->matrix[0].points[60].v, stale->matrix[0].points[60].v);
  // Samples newer than every kept step change nothing kept.
  cache.Invalidate(4 * kHour);
  EXPECT_EQ(1u, cache.stats().entries);
  cache.Invalidate(2 * kHour);
  EXPECT_EQ(0u, cache.stats().entries);
  Run(cache, q, kHour, 3 * kHour, 6 * kHour);
}

// A store on which a late write lands while a query reads it.
class WriteDuringSelect : public storage::ForwardingQuerier {
 public:
  WriteDuringSelect(const Queryable* inner, ResultCache* cache)
      : ForwardingQuerier(inner), cache_(cache) {}
  absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const override {
    auto set = ForwardingQuerier::SelectAny(sets, hints);
    cache_->Invalidate(2 * kHour);
    return set;
  }

 private:
  ResultCache* cache_;
};

TEST_F(ResultCacheTest, AQueryDuringALateWriteKeepsNothing) {
  ResultCache cache({});
  WriteDuringSelect racing(&store_, &cache);
  auto expr = promql::ParseExpr("req");
  ASSERT_TRUE(expr.ok());
  ASSERT_TRUE(
      cache.RangeQuery(engine_, racing, **expr, "req", kHour, 3 * kHour, kMin, 6 * kHour).ok());
  EXPECT_EQ(0u, cache.stats().entries);
  // Without the write, the same query is kept.
  Run(cache, "req", kHour, 3 * kHour, 6 * kHour);
  EXPECT_EQ(1u, cache.stats().entries);
}

TEST_F(ResultCacheTest, RecentWritesInvalidateNothing) {
  base::FakeClock clock(6 * kHour);
  ResultCache cache({.recent_ms = 5 * kMin, .clock = &clock});
  Run(cache, "req", kHour, 3 * kHour, 6 * kHour);
  cache.Invalidate(6 * kHour - kMin);  // younger than any step that is kept
  EXPECT_EQ(1u, cache.stats().entries);
  cache.Invalidate(3 * kHour);
  EXPECT_EQ(0u, cache.stats().entries);
}

TEST_F(ResultCacheTest, QueriesThatDependOnTheirRangeAreNotCached) {
  ResultCache cache({});
  for (const std::string q : {"req @ start()", "rate(req[5m] @ end())", "req @ 3600",
                              "req offset -5m", "max_over_time(req[10m:1m] @ start())"}) {
    Run(cache, q, kHour, 2 * kHour, 6 * kHour);
  }
  EXPECT_EQ(0u, cache.stats().misses);
  EXPECT_EQ(0u, cache.stats().entries);
  auto e = promql::ParseExpr("sum(rate(req[5m] offset 5m)) / count(req)");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(IsRangeCacheable(**e));
}

TEST_F(ResultCacheTest, LeastRecentlyUsedEntriesGoBeyondTheByteBudget) {
  ResultCache cache({.max_bytes = 20'000});
  for (int i = 0; i < 20; ++i) {
    Run(cache, "req * " + std::to_string(i), kHour, 2 * kHour, 6 * kHour);
  }
  EXPECT_LE(cache.stats().bytes, 20'000u);
  EXPECT_GT(cache.stats().entries, 0u);
  EXPECT_LT(cache.stats().entries, 20u);
  // The newest is still there.
  Run(cache, "req * 19", kHour + kMin, 2 * kHour, 6 * kHour);
  EXPECT_EQ(1u, cache.stats().hits);
}

}  // namespace
}  // namespace espy::query::engine
