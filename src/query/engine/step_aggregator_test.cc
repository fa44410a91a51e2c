// StepAggregator: bucket alignment, every aggregation, resets, staleness, limits.
#include "query/engine/step_aggregator.h"

#include "gtest/gtest.h"
#include "query/engine/memory_queryable.h"

namespace espy::query::engine {
namespace {

class StepAggregatorTest : public testing::Test {
 protected:
  void SetUp() override {
    labels_ = model::Labels({{"__name__", "c"}, {"job", "a"}});
    // 0, 10, 20, 5 (reset), 15, 25 every 10s from t=0.
    double values[] = {0, 10, 20, 5, 15, 25};
    for (int i = 0; i < 6; ++i) store_.Add(labels_, i * 10000, values[i]);
  }
  std::vector<Point> Run(StepAgg agg, int64_t mint = 0, int64_t maxt = 59000,
                         int64_t step = 30000) {
    StepRequest r;
    r.matchers = {*model::Matcher::Make(model::MatchType::kEqual, "__name__", "c")};
    r.mint = mint;
    r.maxt = maxt;
    r.step_ms = step;
    r.agg = agg;
    auto m = AggregateSteps(store_, r);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok() || m->empty()) return {};
    EXPECT_EQ(m->size(), 1u);
    return (*m)[0].points;
  }
  model::Labels labels_;
  MemoryQueryable store_;
};

TEST_F(StepAggregatorTest, EachAggregationOverTwoBuckets) {
  auto avg = Run(StepAgg::kAvg);
  ASSERT_EQ(avg.size(), 2u);
  EXPECT_EQ(avg[0].t, 0);
  EXPECT_EQ(avg[0].v, 10);
  EXPECT_EQ(avg[1].t, 30000);
  EXPECT_EQ(avg[1].v, 15);
  EXPECT_EQ(Run(StepAgg::kMin)[1].v, 5);
  EXPECT_EQ(Run(StepAgg::kMax)[0].v, 20);
  EXPECT_EQ(Run(StepAgg::kSum)[1].v, 45);
  EXPECT_EQ(Run(StepAgg::kCount)[0].v, 3);
  EXPECT_EQ(Run(StepAgg::kLast)[1].v, 25);
}

TEST_F(StepAggregatorTest, RateCountsResetsAndStartsFromPreviousSample) {
  auto rate = Run(StepAgg::kRate);
  ASSERT_EQ(rate.size(), 2u);
  EXPECT_DOUBLE_EQ(rate[0].v, 20.0 / 30);
  // 20 -> 5 is a reset (+5), then +10, +10.
  EXPECT_DOUBLE_EQ(rate[1].v, 25.0 / 30);
}

TEST_F(StepAggregatorTest, BucketsAlignToStartAndSkipEmptyOnes) {
  auto p = Run(StepAgg::kCount, 5000, 200000, 20000);
  ASSERT_EQ(p.size(), 3u);  // [5s,25s) [25s,45s) [45s,65s)
  EXPECT_EQ(p[0].t, 5000);
  EXPECT_EQ(p[0].v, 2);
  EXPECT_EQ(p[2].t, 45000);
  EXPECT_EQ(p[2].v, 1);
}

TEST_F(StepAggregatorTest, StalenessMarkersAreNotSamples) {
  store_.Add(labels_, 59000, StaleNaN());
  EXPECT_EQ(Run(StepAgg::kCount)[1].v, 3);
}

TEST_F(StepAggregatorTest, ErrorsForBadStepAggAndTooManyPoints) {
  EXPECT_FALSE(ParseStepAgg("median").ok());
  EXPECT_EQ(*ParseStepAgg("rate"), StepAgg::kRate);
  StepRequest r;
  r.step_ms = 0;
  EXPECT_EQ(AggregateSteps(store_, r).status().code(), absl::StatusCode::kInvalidArgument);
  r.step_ms = 1000;
  r.maxt = 100000;
  r.max_points = 3;
  r.matchers = {*model::Matcher::Make(model::MatchType::kEqual, "__name__", "c")};
  EXPECT_EQ(AggregateSteps(store_, r).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace espy::query::engine
