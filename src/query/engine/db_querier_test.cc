// PromQL over storage::Db's Querier with downsampled tiers: queries that reach back
// into downsampled time read bucket aggregates and still give the averages,
// counts, extremes and rates of the raw samples; recent ranges read raw.
#include <cmath>
#include <filesystem>

#include "gtest/gtest.h"
#include "query/engine/engine.h"
#include "storage/db.h"

namespace espy::query::engine {
namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kEnd = 64 * kHour;  // samples over [0, kEnd)

// A counter rising by 1 every 10 s, and a gauge wobbling through 0..96.
double Counter(int64_t t) { return static_cast<double>(t / 10'000); }
double Gauge(int64_t t) { return static_cast<double>((t / 10'000) % 97); }

class DbQuerierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/db_querier_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    storage::DbOptions o;
    o.dir = dir_;
    o.clock = &clock_;
    o.maintenance_interval_ms = 0;
    o.tiers = {{5 * kMin, 24 * kHour}, {kHour, 48 * kHour}};
    auto db = storage::Db::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    // Two rounds: blocks are cut, then downsampled once the WAL behind them
    // is removed. "Now" is 72 h: everything before 48 h is downsampled.
    Write(0, 60 * kHour);
    ASSERT_TRUE(db_->Maintain().ok());
    Write(60 * kHour, kEnd);
    ASSERT_TRUE(db_->Maintain().ok());
    ASSERT_EQ(2u, db_->stats().blocks_downsampled);
    auto q = db_->Querier(INT64_MIN, INT64_MAX);
    ASSERT_TRUE(q.ok()) << q.status();
    queryable_ = *std::move(q);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Write(int64_t from, int64_t to) {
    model::SampleBatch b;
    uint32_t c = b.AddSeries(model::Labels(std::vector<model::Label>{{"__name__", "requests"}}));
    uint32_t g = b.AddSeries(model::Labels(std::vector<model::Label>{{"__name__", "temp"}}));
    for (int64_t t = from; t < to; t += 10'000) {
      b.Add(c, t, Counter(t));
      b.Add(g, t, Gauge(t));
    }
    ASSERT_TRUE(db_->CommitAndWait(std::move(b)).ok());
  }
  // One series' points of a range query.
  std::vector<Point> Range(const std::string& q, int64_t start, int64_t end, int64_t step) {
    auto r = engine_.RangeQuery(*queryable_, q, start, end, step);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    if (!r.ok() || r->matrix.size() != 1) {
      ADD_FAILURE() << q << ": want one series";
      return {};
    }
    return r->matrix[0].points;
  }
  // The raw gauge samples in [from, to).
  std::vector<double> GaugeIn(int64_t from, int64_t to) {
    std::vector<double> v;
    for (int64_t t = from; t < to; t += 10'000) v.push_back(Gauge(t));
    return v;
  }

  std::string dir_;
  base::FakeClock clock_{72 * kHour};
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<storage::Querier> queryable_;
  Engine engine_;
};

TEST_F(DbQuerierTest, PicksATierOnlyWhereDataWasDownsampled) {
  SelectHints h;
  h.mint = 50 * kHour;
  h.maxt = 60 * kHour;
  h.step_ms = kHour;
  EXPECT_EQ(0, queryable_->Resolution(h));  // raw still there
  h.mint = 30 * kHour;
  EXPECT_EQ(kHour, queryable_->Resolution(h));
  h.step_ms = kMin;
  EXPECT_EQ(5 * kMin, queryable_->Resolution(h));
  h.step_ms = kHour;
  h.range_ms = 10 * kMin;
  h.func = "rate";
  EXPECT_EQ(5 * kMin, queryable_->Resolution(h));  // two buckets must fit the range
}

// Hourly buckets at an hourly step: each window (t - 1h, t] holds the bucket
// [t - 1h, t), stamped with its last sample at t - 10 s.
TEST_F(DbQuerierTest, OverTimeFunctionsAggregateTheRawSamples) {
  const int64_t start = 26 * kHour, end = 46 * kHour;
  auto check = [&](const std::string& q, auto want_fn) {
    std::vector<Point> got = Range(q, start, end, kHour);
    ASSERT_EQ(static_cast<size_t>((end - start) / kHour + 1), got.size()) << q;
    for (const Point& p : got) {
      std::vector<double> raw = GaugeIn(p.t - kHour, p.t);
      EXPECT_DOUBLE_EQ(want_fn(raw), p.v) << q << " at " << p.t / kHour << "h";
    }
  };
  auto sum = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
  };
  check("max_over_time(temp[1h])",
        [](const auto& v) { return *std::max_element(v.begin(), v.end()); });
  check("min_over_time(temp[1h])",
        [](const auto& v) { return *std::min_element(v.begin(), v.end()); });
  check("sum_over_time(temp[1h])", sum);
  check("count_over_time(temp[1h])", [](const auto& v) { return static_cast<double>(v.size()); });
  check("avg_over_time(temp[1h])", [&](const auto& v) { return sum(v) / v.size(); });
  check("last_over_time(temp[1h])", [](const auto& v) { return v.back(); });
  // Several buckets per window: the average is weighted by their counts.
  std::vector<Point> got = Range("avg_over_time(temp[3h])", start, end, kHour);
  ASSERT_FALSE(got.empty());
  for (const Point& p : got) {
    std::vector<double> raw = GaugeIn(p.t - 3 * kHour, p.t);
    EXPECT_NEAR(sum(raw) / raw.size(), p.v, 1e-9);
  }
}

TEST_F(DbQuerierTest, RateOverDownsampledCounterMatchesRaw) {
  // 1 per 10 s: 0.1/s, whatever the buckets.
  for (const std::string q : {"rate(requests[2h])", "rate(requests[30m])"}) {
    std::vector<Point> got = Range(q, 26 * kHour, 46 * kHour, kHour);
    ASSERT_EQ(21u, got.size()) << q;
    for (const Point& p : got) EXPECT_NEAR(0.1, p.v, 1e-9) << q << " at " << p.t;
  }
  std::vector<Point> inc = Range("increase(requests[2h])", 26 * kHour, 46 * kHour, kHour);
  for (const Point& p : inc) EXPECT_NEAR(720, p.v, 1e-6);
}

TEST_F(DbQuerierTest, InstantSelectorFindsTheLastBucket) {
  // The buckets are an hour apart: the lookback widens by that much, so
  // every step has the latest sample before it.
  std::vector<Point> got = Range("temp", 26 * kHour + 30 * kMin, 46 * kHour, kHour);
  ASSERT_EQ(20u, got.size());
  for (const Point& p : got) {
    const int64_t last = p.t - 30 * kMin - 10'000;  // end of the hour before
    EXPECT_EQ(Gauge(last), p.v) << p.t;
  }
}

TEST_F(DbQuerierTest, ARangeReachingIntoDownsampledTimeMergesRawBuckets) {
  // 40 h .. 60 h: hourly buckets from the tier before 48 h, from raw
  // samples after; each count is the full hour's 360 samples.
  std::vector<Point> got = Range("count_over_time(temp[1h])", 40 * kHour, 60 * kHour, kHour);
  ASSERT_EQ(21u, got.size());
  for (const Point& p : got) EXPECT_EQ(360, p.v) << p.t / kHour << "h";
}

TEST_F(DbQuerierTest, RecentRangeReadsRawSamples) {
  std::vector<Point> got = Range("temp", 50 * kHour, 51 * kHour, kMin);
  ASSERT_EQ(61u, got.size());
  for (const Point& p : got) EXPECT_EQ(Gauge(p.t), p.v);
}

// The head's series through the Querier: label order (not id order), and a
// staleness marker ends a series.
TEST(DbQuerierEngineTest, QueriesTheHeadIncludingStalenessMarkers) {
  const std::string dir = ::testing::TempDir() + "/db_querier_engine_test";
  std::filesystem::remove_all(dir);
  storage::DbOptions o;
  o.dir = dir;
  o.maintenance_interval_ms = 0;
  auto db = storage::Db::Open(o);
  ASSERT_TRUE(db.ok()) << db.status();
  model::SampleBatch batch;
  uint32_t b = batch.AddSeries(model::Labels({{"__name__", "up"}, {"job", "b"}}));
  uint32_t a = batch.AddSeries(model::Labels({{"__name__", "up"}, {"job", "a"}}));
  batch.Add(a, 1000, 1);
  batch.Add(b, 1000, 2);
  batch.Add(b, 2000, model::StaleNaN());
  ASSERT_TRUE((*db)->CommitAndWait(std::move(batch)).ok());
  auto q = (*db)->Querier(INT64_MIN, INT64_MAX);
  ASSERT_TRUE(q.ok()) << q.status();
  const storage::Querier& qq = **q;
  Engine engine;
  auto r = engine.InstantQuery(qq, "up", 1500);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->vector.size(), 2u);
  EXPECT_EQ(r->vector[0].metric.Get("job"), "a");  // label order, not id order
  auto after = engine.InstantQuery(qq, "up", 2500);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->vector.size(), 1u);
  EXPECT_EQ(after->vector[0].metric.Get("job"), "a");
  auto sum = engine.RangeQuery(qq, "sum(up)", 1000, 3000, 1000);
  ASSERT_TRUE(sum.ok()) << sum.status();
  ASSERT_EQ(sum->matrix.size(), 1u);
  ASSERT_EQ(sum->matrix[0].points.size(), 3u);
  EXPECT_EQ(sum->matrix[0].points[0].v, 3);
  EXPECT_EQ(sum->matrix[0].points[1].v, 1);
  q->reset();
  db->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace espy::query::engine
