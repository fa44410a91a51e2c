// Engine unit tests: query-level behaviour the .test scripts cannot express
// (result shapes, limits, timeouts, error codes, select hints). Semantics of operators and
// functions live in testdata/*.test.
#include "query/engine/engine.h"

#include "gtest/gtest.h"
#include "query/engine/functions.h"
#include "query/engine/memory_queryable.h"
#include "storage/api/forwarding_querier.h"

namespace espy::query::engine {
namespace {

model::Labels L(std::vector<model::Label> l) { return model::Labels(std::move(l)); }

// Records the hints of every Select, then delegates.
class RecordingQueryable : public storage::ForwardingQuerier {
 public:
  explicit RecordingQueryable(const Queryable* inner) : ForwardingQuerier(inner) {}
  absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const override {
    hints_.push_back(hints);
    return ForwardingQuerier::SelectAny(sets, hints);
  }
  mutable std::vector<SelectHints> hints_;
};

class EngineTest : public testing::Test {
 protected:
  // name{job=<job>} with value i*10 every step_ms from 0.
  void LoadCounter(const std::string& name, const std::string& job, int n, int64_t step_ms) {
    for (int i = 0; i < n; ++i) {
      store_.Add(L({{"__name__", name}, {"job", job}}), i * step_ms, i * 10.0);
    }
  }
  MemoryQueryable store_;
  Engine engine_;
};

TEST_F(EngineTest, InstantVectorSelectorReturnsLatestSampleAtQueryTime) {
  LoadCounter("x", "a", 10, 10000);
  auto r = engine_.InstantQuery(store_, "x", 45000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->type, promql::ValueType::kVector);
  ASSERT_EQ(r->vector.size(), 1u);
  EXPECT_EQ(r->vector[0].v, 40);
  EXPECT_EQ(r->vector[0].t, 45000);
  EXPECT_EQ(r->vector[0].metric.ToString(), "x{job=\"a\"}");
}

TEST_F(EngineTest, RangeQueryReturnsMatrixSortedByLabelsWithOnePointPerStep) {
  LoadCounter("x", "b", 10, 10000);
  LoadCounter("x", "a", 10, 10000);
  auto r = engine_.RangeQuery(store_, "x * 2", 0, 90000, 30000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->type, promql::ValueType::kMatrix);
  ASSERT_EQ(r->matrix.size(), 2u);
  EXPECT_EQ(r->matrix[0].metric.ToString(), "{job=\"a\"}");
  EXPECT_EQ(r->matrix[1].metric.ToString(), "{job=\"b\"}");
  ASSERT_EQ(r->matrix[0].points.size(), 4u);
  EXPECT_EQ(r->matrix[0].points[3].t, 90000);
  EXPECT_EQ(r->matrix[0].points[3].v, 180);
}

TEST_F(EngineTest, RangeQueryOfScalarIsOneSeriesWithoutLabels) {
  auto r = engine_.RangeQuery(store_, "time()", 0, 120000, 60000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->matrix.size(), 1u);
  EXPECT_TRUE(r->matrix[0].metric.empty());
  ASSERT_EQ(r->matrix[0].points.size(), 3u);
  EXPECT_EQ(r->matrix[0].points[2].v, 120);
}

TEST_F(EngineTest, InstantScalarAndStringResults) {
  auto s = engine_.InstantQuery(store_, "1 + 1", 5000);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, promql::ValueType::kScalar);
  EXPECT_EQ(s->scalar, 2);
  EXPECT_EQ(s->time, 5000);
  auto str = engine_.InstantQuery(store_, "\"hello\"", 5000);
  ASSERT_TRUE(str.ok()) << str.status();
  EXPECT_EQ(str->type, promql::ValueType::kString);
  EXPECT_EQ(str->str, "hello");
}

TEST_F(EngineTest, InstantRangeVectorReturnsRawSamplesInWindow) {
  LoadCounter("x", "a", 10, 10000);
  auto r = engine_.InstantQuery(store_, "x[30s]", 50000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->type, promql::ValueType::kMatrix);
  ASSERT_EQ(r->matrix.size(), 1u);
  ASSERT_EQ(r->matrix[0].points.size(), 4u);  // 20s, 30s, 40s, 50s
  EXPECT_EQ(r->matrix[0].points[0].t, 20000);
  EXPECT_EQ(r->matrix[0].metric.MetricName(), "x");
}

TEST_F(EngineTest, RangeQueryRejectsRangeVectorExpression) {
  auto r = engine_.RangeQuery(store_, "x[5m]", 0, 60000, 10000);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "invalid expression type \"range vector\" for range query, must be Scalar or "
            "instant Vector");
}

TEST_F(EngineTest, RangeQueryRejectsMoreThanMaxPointsPerSeries) {
  auto r = engine_.RangeQuery(store_, "1", 0, 11001 * 1000, 1000);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("exceeded maximum resolution of 11000 points"),
            absl::string_view::npos);
  EXPECT_TRUE(engine_.RangeQuery(store_, "1", 0, 11000 * 1000, 1000).ok());
}

TEST_F(EngineTest, RangeQueryRejectsNonPositiveStep) {
  EXPECT_EQ(engine_.RangeQuery(store_, "1", 0, 1000, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, ParseErrorIsInvalidArgumentWithPosition) {
  auto r = engine_.InstantQuery(store_, "sum(", 0);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("parse error"), absl::string_view::npos);
}

TEST_F(EngineTest, DuplicateOutputLabelsetIsExecutionError) {
  LoadCounter("x", "a", 2, 10000);
  LoadCounter("y", "a", 2, 10000);
  auto r = engine_.InstantQuery(store_, "ceil({job=\"a\"})", 10000);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsExecutionError(r.status()));
  EXPECT_EQ(r.status().message(), "vector cannot contain metrics with the same labelset");
}

TEST_F(EngineTest, NamesDroppedInsideAnAggregationDoNotCollide) {
  // x and y differ only by name: count_over_time drops it, and the sum adds
  // both (delayed name removal) rather than failing on two equal label sets.
  LoadCounter("x", "a", 10, 10000);
  LoadCounter("y", "a", 4, 10000);
  auto r = engine_.InstantQuery(store_, "sum(count_over_time({job=\"a\"}[5m]))", 90000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->vector.size(), 1u);
  EXPECT_EQ(r->vector[0].v, 14);
  EXPECT_TRUE(r->vector[0].metric.empty());

  r = engine_.InstantQuery(store_, "sum by (job) (ceil({job=\"a\"}))", 30000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->vector.size(), 1u);
  EXPECT_EQ(r->vector[0].v, 60);  // x = 30 and y = 30
  EXPECT_EQ(r->vector[0].metric.ToString(), "{job=\"a\"}");

  // Matched one-to-one by their labels without the names, as before.
  r = engine_.InstantQuery(store_, "ceil(x) - ceil(y)", 30000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->vector.size(), 1u);
  EXPECT_EQ(r->vector[0].v, 0);
  EXPECT_EQ(r->vector[0].metric.ToString(), "{job=\"a\"}");
}

TEST_F(EngineTest, DroppedNamesNeverReachTheResult) {
  LoadCounter("x", "a", 10, 10000);
  for (const char* q : {"rate(x[1m])", "x + 1", "-x", "timestamp(x)", "sort(abs(x))",
                        "topk(1, ceil(x))", "sum without (job) (rate(x[1m]))",
                        "label_replace(ceil(x), \"n\", \"$1\", \"__name__\", \"(.*)\")",
                        "max_over_time(rate(x[1m])[1m:10s])"}) {
    auto r = engine_.RangeQuery(store_, q, 60000, 90000, 10000);
    ASSERT_TRUE(r.ok()) << q << ": " << r.status();
    ASSERT_FALSE(r->matrix.empty()) << q;
    for (const Series& s : r->matrix) {
      EXPECT_EQ(s.metric.MetricName(), "") << q;
      EXPECT_EQ(s.metric.Get(internal::kDroppedNameLabel), "") << q;
      // label_replace reads the name as absent, as in Prometheus 2.
      EXPECT_EQ(s.metric.Get("n"), "") << q;
    }
  }
  // A name set again by label_replace stays.
  auto r = engine_.InstantQuery(store_, "label_replace(ceil(x), \"__name__\", \"z\", \"\", \"\")",
                                30000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->vector.size(), 1u);
  EXPECT_EQ(r->vector[0].metric.ToString(), "z{job=\"a\"}");
}

TEST_F(EngineTest, SeriesTheNameAloneToldApartMergeWhenTheyNeverOverlap) {
  // x until 40 s, y from 50 s: one series once the names go, as Prometheus's
  // per-step evaluation makes it; overlapping, they fail (above).
  for (int i = 0; i <= 4; ++i) store_.Add(L({{"__name__", "x"}, {"job", "a"}}), i * 10000, i);
  for (int i = 5; i <= 9; ++i) store_.Add(L({{"__name__", "y"}, {"job", "a"}}), i * 10000, i);
  EngineOptions o;
  o.lookback_delta_ms = 5000;
  Engine engine(o);
  auto r = engine.RangeQuery(store_, "ceil({job=\"a\"})", 0, 90000, 10000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->matrix.size(), 1u);
  EXPECT_EQ(r->matrix[0].metric.ToString(), "{job=\"a\"}");
  ASSERT_EQ(r->matrix[0].points.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(r->matrix[0].points[i].t, i * 10000);
    EXPECT_EQ(r->matrix[0].points[i].v, i);
  }
  auto both = engine_.RangeQuery(store_, "ceil({job=\"a\"})", 0, 90000, 10000);
  ASSERT_FALSE(both.ok());  // default 5 m lookback: both exist from 50 s on
  EXPECT_EQ(both.status().message(), "vector cannot contain metrics with the same labelset");
}

TEST_F(EngineTest, MatchingErrorsShowNoDroppedName) {
  LoadCounter("x", "a", 2, 10000);
  store_.Add(L({{"__name__", "x"}, {"job", "a"}, {"code", "1"}}), 0, 1);
  store_.Add(L({{"__name__", "x"}, {"job", "a"}, {"code", "2"}}), 0, 1);
  auto r = engine_.InstantQuery(store_, "ceil(x) + on(job) ceil(x{code!=\"\"})", 10000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("many-to-many"), std::string::npos) << r.status();
  EXPECT_EQ(r.status().message().find('\x01'), std::string::npos) << r.status();
}

TEST_F(EngineTest, TooManySamplesFailsTheQuery) {
  LoadCounter("x", "a", 100, 1000);
  EngineOptions o;
  o.max_samples = 50;
  Engine small(o);
  auto r = small.InstantQuery(store_, "sum_over_time(x[100s])", 100000);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsExecutionError(r.status()));
  EXPECT_TRUE(small.InstantQuery(store_, "sum_over_time(x[20s])", 100000).ok());
}

TEST_F(EngineTest, ExpiredDeadlineIsDeadlineExceeded) {
  LoadCounter("x", "a", 100, 1000);
  EngineOptions o;
  o.timeout = std::chrono::milliseconds(-1);
  Engine engine(o);
  auto r = engine.RangeQuery(store_, "rate(x[10s])", 0, 100000, 1000);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(), "query timed out in expression evaluation");
}

TEST_F(EngineTest, LookbackDeltaIsConfigurable) {
  LoadCounter("x", "a", 1, 1000);
  EngineOptions o;
  o.lookback_delta_ms = 60000;
  Engine engine(o);
  EXPECT_EQ(engine.InstantQuery(store_, "x", 60000)->vector.size(), 1u);
  EXPECT_EQ(engine.InstantQuery(store_, "x", 60001)->vector.size(), 0u);
}

TEST_F(EngineTest, SelectHintsCarryTimeRangeStepRangeAndFunction) {
  LoadCounter("x", "a", 10, 10000);
  RecordingQueryable q(&store_);
  ASSERT_TRUE(engine_.RangeQuery(q, "rate(x[1m] offset 1m)", 600000, 900000, 60000).ok());
  ASSERT_EQ(q.hints_.size(), 1u);
  EXPECT_EQ(q.hints_[0].mint, 600000 - 60000 - 60000);
  EXPECT_EQ(q.hints_[0].maxt, 900000 - 60000);
  EXPECT_EQ(q.hints_[0].step_ms, 60000);
  EXPECT_EQ(q.hints_[0].range_ms, 60000);
  EXPECT_EQ(q.hints_[0].func, "rate");
  q.hints_.clear();
  ASSERT_TRUE(engine_.InstantQuery(q, "x", 600000).ok());
  EXPECT_EQ(q.hints_[0].mint, 600000 - 300000);
  EXPECT_EQ(q.hints_[0].step_ms, 0);
}

}  // namespace
}  // namespace espy::query::engine
