#include "stream/hub.h"

#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/engine/memory_queryable.h"

namespace espy::stream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

model::Matcher Eq(std::string name, std::string value) {
  return *model::Matcher::Make(model::MatchType::kEqual, std::move(name), std::move(value));
}
model::Matcher Re(std::string name, std::string value) {
  return *model::Matcher::Make(model::MatchType::kRegexMatch, std::move(name), std::move(value));
}

class HubTest : public ::testing::Test {
 protected:
  HubTest() { Reset({}); }

  void Reset(HubOptions options) {
    options.clock = &clock_;
    hub_ = std::make_unique<Hub>(store_, options);
  }

  // Commits one sample per (series, ts, value) to the store and publishes
  // them as one batch, as the Db's commit listener does.
  void Write(const std::vector<std::tuple<std::string, int64_t, double>>& points,
             bool publish = true, bool append = true) {
    model::SampleBatch batch;
    std::vector<model::SeriesRef> refs;
    for (const auto& [series, ts, value] : points) {
      model::Labels labels = Parse(series);
      model::SeriesRef ref = store_.Create(labels);
      if (append) store_.Add(labels, ts, value);
      batch.Add(batch.AddSeries(labels), ts, value);
      refs.push_back(ref);
    }
    if (publish) hub_->Publish(batch, refs);
  }

  // "cpu,host=a" -> cpu{host="a"}
  static model::Labels Parse(const std::string& s) {
    std::vector<model::Label> labels;
    size_t start = 0;
    bool first = true;
    while (start <= s.size()) {
      size_t end = s.find(',', start);
      if (end == std::string::npos) end = s.size();
      std::string part = s.substr(start, end - start);
      if (first) {
        labels.push_back({std::string(model::kMetricNameLabel), part});
        first = false;
      } else {
        size_t eq = part.find('=');
        labels.push_back({part.substr(0, eq), part.substr(eq + 1)});
      }
      start = end + 1;
    }
    return model::Labels(std::move(labels));
  }

  std::unique_ptr<Connection> Connect() {
    auto c = hub_->Connect([this] { ++wakes_; });
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  // "cpu{host=\"a\"}@ts=value" strings of everything queued.
  static std::vector<std::string> Take(Connection& c, uint64_t* dropped = nullptr) {
    Delivery d = c.Drain(1'000'000);
    if (dropped != nullptr) *dropped = d.dropped;
    std::vector<std::string> out;
    for (const Point& p : d.points) {
      std::string series = p.labels->ToString();
      if (series.ends_with("{}")) series.resize(series.size() - 2);
      out.push_back(fmt::format("{}@{}={}", series, p.ts, p.value));
    }
    return out;
  }

  query::engine::MemoryQueryable store_;
  base::FakeClock clock_{1'000'000};
  std::unique_ptr<Hub> hub_;
  int wakes_ = 0;
};

TEST_F(HubTest, DeliversOnlyMatchingSeries) {
  auto by_name = Connect();
  auto by_label = Connect();
  auto by_regex = Connect();
  ASSERT_TRUE(by_name->Subscribe("n", {Eq("__name__", "cpu")}).ok());
  ASSERT_TRUE(by_label->Subscribe("l", {Eq("__name__", "cpu"), Eq("host", "b")}).ok());
  ASSERT_TRUE(by_regex->Subscribe("r", {Re("host", "web.*")}).ok());

  Write({{"cpu,host=a", 1, 1}, {"cpu,host=b", 1, 2}, {"mem,host=web1", 1, 3}, {"disk", 1, 4}});

  EXPECT_THAT(Take(*by_name), ElementsAre("cpu{host=\"a\"}@1=1", "cpu{host=\"b\"}@1=2"));
  EXPECT_THAT(Take(*by_label), ElementsAre("cpu{host=\"b\"}@1=2"));
  EXPECT_THAT(Take(*by_regex), ElementsAre("mem{host=\"web1\"}@1=3"));
}

TEST_F(HubTest, PointMatchingTwoSubscriptionsOfOneClientComesOnce) {
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("a", {Eq("__name__", "cpu")}).ok());
  ASSERT_TRUE(c->Subscribe("b", {Eq("host", "a")}).ok());
  Write({{"cpu,host=a", 5, 1}});
  EXPECT_THAT(Take(*c), ElementsAre("cpu{host=\"a\"}@5=1"));
}

TEST_F(HubTest, KeepsPublishOrderPerSeries) {
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("a", {Eq("__name__", "cpu")}).ok());
  Write({{"cpu,host=a", 1, 1}, {"cpu,host=b", 1, 1}});
  Write({{"cpu,host=a", 2, 2}});
  Write({{"cpu,host=a", 3, 3}, {"cpu,host=b", 2, 2}});
  EXPECT_THAT(Take(*c),
              ElementsAre("cpu{host=\"a\"}@1=1", "cpu{host=\"b\"}@1=1", "cpu{host=\"a\"}@2=2",
                          "cpu{host=\"a\"}@3=3", "cpu{host=\"b\"}@2=2"));
}

TEST_F(HubTest, UnsubscribeStopsDelivery) {
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("a", {Eq("__name__", "cpu")}).ok());
  Write({{"cpu", 1, 1}});
  ASSERT_TRUE(c->Unsubscribe("a").ok());
  Write({{"cpu", 2, 2}});
  EXPECT_THAT(Take(*c), ElementsAre("cpu@1=1"));
  EXPECT_EQ(c->Unsubscribe("a").code(), absl::StatusCode::kNotFound);
}

TEST_F(HubTest, RefusesSubscriptionsThatMatchEverythingOrReuseAnId) {
  auto c = Connect();
  auto all = c->Subscribe("x", {Re("host", ".*")});
  EXPECT_EQ(all.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(all.status().message()), HasSubstr("does not match the empty"));
  ASSERT_TRUE(c->Subscribe("x", {Eq("__name__", "cpu")}).ok());
  auto again = c->Subscribe("x", {Eq("__name__", "mem")});
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already in use"));
}

TEST_F(HubTest, LimitsSubscriptionsPerConnection) {
  Reset({.max_subscriptions_per_connection = 2});
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("1", {Eq("__name__", "a")}).ok());
  ASSERT_TRUE(c->Subscribe("2", {Eq("__name__", "b")}).ok());
  auto third = c->Subscribe("3", {Eq("__name__", "c")});
  EXPECT_THAT(std::string(third.status().message()), HasSubstr("at most 2 subscriptions"));
}

TEST_F(HubTest, LimitsConnectionsAndFreesSlotsOnClose) {
  Reset({.max_connections = 2});
  auto a = Connect();
  auto b = Connect();
  auto c = hub_->Connect([] {});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  b.reset();
  EXPECT_TRUE(hub_->Connect([] {}).ok());
  HubStats s = hub_->stats();
  EXPECT_EQ(s.rejected_connections_total, 1u);
  EXPECT_EQ(s.connections_total, 3u);
  EXPECT_EQ(s.connections, 1u);  // the last one was dropped at once
}

TEST_F(HubTest, FullQueueDropsOldestAndReportsCountOnce) {
  Reset({.max_queue_points = 3});
  auto slow = Connect();
  auto fast = Connect();
  ASSERT_TRUE(slow->Subscribe("s", {Eq("__name__", "cpu")}).ok());
  ASSERT_TRUE(fast->Subscribe("f", {Eq("__name__", "cpu")}).ok());
  std::vector<std::string> fast_seen;
  for (int i = 1; i <= 5; ++i) {
    Write({{"cpu", i, i}});
    for (std::string& p : Take(*fast)) fast_seen.push_back(std::move(p));
  }
  uint64_t dropped = 0;
  EXPECT_THAT(Take(*slow, &dropped), ElementsAre("cpu@3=3", "cpu@4=4", "cpu@5=5"));
  EXPECT_EQ(dropped, 2u);
  EXPECT_THAT(Take(*slow, &dropped), IsEmpty());
  EXPECT_EQ(dropped, 0u);
  EXPECT_THAT(fast_seen, ElementsAre("cpu@1=1", "cpu@2=2", "cpu@3=3", "cpu@4=4", "cpu@5=5"));
  EXPECT_EQ(hub_->stats().dropped_points_total, 2u);
}

TEST_F(HubTest, ClientStuckPastTimeoutIsKicked) {
  Reset({.max_queue_points = 1, .stuck_timeout_ms = 1'000});
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("s", {Eq("__name__", "cpu")}).ok());
  Write({{"cpu", 1, 1}});
  Write({{"cpu", 2, 2}});  // full: drops, the stuck clock starts
  clock_.Advance(999);
  Write({{"cpu", 3, 3}});
  EXPECT_FALSE(c->Drain(0).kicked);  // draining (even nothing) shows progress
  Write({{"cpu", 4, 4}});            // restarts the stuck clock
  clock_.Advance(1'000);
  Write({{"cpu", 5, 5}});
  Delivery d = c->Drain(10);
  EXPECT_TRUE(d.kicked);
  EXPECT_THAT(d.points, IsEmpty());
  EXPECT_EQ(hub_->stats().slow_disconnects_total, 1u);
}

TEST_F(HubTest, WakesOncePerEmptyToNonEmptyTransition) {
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("s", {Eq("__name__", "cpu")}).ok());
  Write({{"cpu", 1, 1}});
  Write({{"cpu", 2, 2}});
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(c->Drain(1).points.size(), 1u);  // one left: no new wake needed
  Write({{"cpu", 3, 3}});
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(c->Drain(10).points.size(), 2u);
  Write({{"cpu", 4, 4}});
  EXPECT_EQ(wakes_, 2);
}

TEST_F(HubTest, ResumeSendsStoredPointsAfterSinceThenLive) {
  Write({{"cpu,host=a", 10, 1}, {"cpu,host=a", 20, 2}, {"cpu,host=a", 30, 3}}, false);
  auto c = Connect();
  auto r = c->Subscribe("s", {Eq("__name__", "cpu")}, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->backfilled, 2u);
  EXPECT_FALSE(r->truncated);
  Write({{"cpu,host=a", 40, 4}});
  EXPECT_THAT(Take(*c),
              ElementsAre("cpu{host=\"a\"}@20=2", "cpu{host=\"a\"}@30=3", "cpu{host=\"a\"}@40=4"));
}

// Points committed while the resume reads storage are both in the store and
// held back from the live feed; each must come exactly once.
TEST_F(HubTest, ResumeRaceHasNoGapAndNoDuplicate) {
  HubOptions options;
  options.before_resume_read = [this] {
    Write({{"cpu", 20, 2}});    // in the store and held back
    Write({{"cpu", 20, 2.5}});  // an overwrite: the read sees only 2.5
    Write({{"cpu", 30, 3}, {"mem", 30, 9}});
  };
  Reset(options);
  Write({{"cpu", 5, 0}, {"cpu", 10, 1}}, false);
  auto c = Connect();
  auto r = c->Subscribe("s", {Eq("__name__", "cpu")}, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->backfilled, 3u);
  Write({{"cpu", 40, 4}});
  EXPECT_THAT(Take(*c), ElementsAre("cpu@10=1", "cpu@20=2.5", "cpu@30=3", "cpu@40=4"));
}

TEST_F(HubTest, ResumeSendsOverwritesCommittedAfterTheRead) {
  // Publishes an overwrite without showing it to the store, as if the read
  // had run before it became visible: it differs from what the read returned,
  // so it is sent after the stored point.
  HubOptions options;
  options.before_resume_read = [this] { Write({{"cpu", 20, 2}}, true, false); };
  Reset(options);
  Write({{"cpu", 20, 1}}, false);
  auto c = Connect();
  ASSERT_TRUE(c->Subscribe("s", {Eq("__name__", "cpu")}, 0).ok());
  EXPECT_THAT(Take(*c), ElementsAre("cpu@20=1", "cpu@20=2"));
}

TEST_F(HubTest, ResumeTruncatesAtQueueSize) {
  Reset({.max_queue_points = 2});
  Write({{"cpu", 1, 1}, {"cpu", 2, 2}, {"cpu", 3, 3}}, false);
  auto c = Connect();
  auto r = c->Subscribe("s", {Eq("__name__", "cpu")}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->backfilled, 2u);
  EXPECT_THAT(Take(*c), ElementsAre("cpu@1=1", "cpu@2=2"));
}

TEST_F(HubTest, RendersPrometheusCounters) {
  auto c = Connect();
  std::string text = hub_->RenderMetrics();
  EXPECT_THAT(text, HasSubstr("# TYPE espy_stream_connections gauge\nespy_stream_connections 1\n"));
  EXPECT_THAT(text, HasSubstr("espy_stream_dropped_points_total 0\n"));
}

}  // namespace
}  // namespace espy::stream
