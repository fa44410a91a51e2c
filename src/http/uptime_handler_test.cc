#include "http/uptime_handler.h"

#include <cmath>
#include <filesystem>
#include <future>
#include <limits>
#include <string>
#include <vector>

#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/db.h"

namespace espy::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr int64_t kNow = 1'700'000'123'456;  // not on a 5-minute boundary
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kBucket = 5 * kMinute;

probe::TargetStatus Checked(std::string name, bool up) {
  probe::TargetStatus t;
  t.name = std::move(name);
  t.kind = "http";
  t.target = fmt::format("http://10.1.2.3:8080/{}/health", t.name);
  t.interval_ms = 30'000;
  t.last_check_ms = kNow - 5'000;
  t.up = up;
  t.duration_seconds = 0.25;
  t.http_status = up ? 200 : 500;
  t.error = up ? "" : "HTTP 500 from internal-api.corp";
  return t;
}

class UptimeHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("espy-uptime-handler-{}-{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::DbOptions db_options;
    db_options.dir = dir_.string();
    db_options.fsync = storage::wal::FsyncPolicy::kNever;
    db_options.maintenance_interval_ms = 0;
    db_options.block_range = block_range_ms_;
    auto db = storage::Db::Open(db_options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }
  void TearDown() override {
    db_->Close();
    std::filesystem::remove_all(dir_);
  }

  // Registers the handlers; call after setting cache_ms_ if needed.
  void Register() {
    UptimeOptions options;
    options.db = db_.get();
    options.snapshot = [this] { return targets_; };
    options.now_ms = [this] { return now_; };
    options.history_cache_ms = cache_ms_;
    RegisterUptime(router_, options);
    registered_ = true;
  }

  // Stores `metric`{probe=..., instance=...} samples.
  void Store(std::string_view metric, const std::string& probe,
             const std::vector<std::pair<int64_t, double>>& samples,
             const std::string& instance = "http://10.1.2.3/") {
    model::SampleBatch batch;
    uint32_t s = batch.AddSeries(model::Labels(
        {{"__name__", std::string(metric)}, {"probe", probe}, {"instance", instance}}));
    for (auto [ts, v] : samples) batch.Add(s, ts, v);
    ASSERT_TRUE(db_->CommitAndWait(std::move(batch)).ok());
  }

  Response Send(bhttp::verb method, std::string target) {
    if (!registered_) Register();
    Request req{method, target, 11};
    std::promise<Response> promise;
    std::string route;
    router_.Dispatch(
        req, [&promise](Response res) { promise.set_value(std::move(res)); }, &route);
    return promise.get_future().get();
  }

  json::array Get(std::string target) {
    Response res = Send(bhttp::verb::get, target);
    EXPECT_EQ(Status::ok, res.result()) << res.body();
    EXPECT_EQ("no-store", res[bhttp::field::cache_control]);
    json::value v = json::parse(res.body());
    EXPECT_TRUE(v.is_array()) << res.body();
    return v.is_array() ? v.as_array() : json::array{};
  }

  // The one target of GET `target`.
  json::object One(std::string target = "/v1/probes") {
    json::array a = Get(std::move(target));
    EXPECT_EQ(1u, a.size());
    return a.empty() ? json::object{} : a[0].as_object();
  }

  static double Num(const json::value& v) { return v.to_number<double>(); }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Db> db_;
  std::vector<probe::TargetStatus> targets_;
  int64_t block_range_ms_ = 2 * kHour;
  int64_t now_ = kNow;
  int64_t cache_ms_ = 0;
  bool registered_ = false;
  Router router_;
};

TEST_F(UptimeHandlerTest, NoTargetsAnswersEmptyArrays) {
  EXPECT_EQ("[]", Send(bhttp::verb::get, "/v1/probes").body());
  EXPECT_EQ("[]", Send(bhttp::verb::get, "/status/probes").body());
}

TEST_F(UptimeHandlerTest, OnlyGetIsAllowed) {
  Response res = Send(bhttp::verb::post, "/v1/probes");
  EXPECT_EQ(Status::method_not_allowed, res.result());
  EXPECT_EQ("GET", res[bhttp::field::allow]);
}

TEST_F(UptimeHandlerTest, TargetsAreSortedByNameWithTheirLastCheck) {
  probe::TargetStatus tls = Checked("web", true);
  tls.target = "https://example.com/";
  tls.cert_expiry_seconds = static_cast<double>(kNow) / 1000 + 10.5 * 86400;
  probe::TargetStatus db = Checked("db", false);
  db.kind = "tcp";
  db.target = "127.0.0.1:5432";
  db.http_status = 0;
  db.error = "connect: connection refused";
  targets_ = {tls, db, Checked("api", true)};

  json::array a = Get("/v1/probes");
  ASSERT_EQ(3u, a.size());
  EXPECT_EQ("api", a[0].at("name").as_string());
  EXPECT_EQ("db", a[1].at("name").as_string());
  EXPECT_EQ("web", a[2].at("name").as_string());

  const json::object& w = a[2].as_object();
  EXPECT_EQ("http", w.at("kind").as_string());
  EXPECT_EQ("https://example.com/", w.at("target").as_string());
  EXPECT_EQ(30, Num(w.at("interval_seconds")));
  EXPECT_EQ(true, w.at("up").as_bool());
  EXPECT_EQ("2023-11-14T22:15:18.456Z", w.at("last_check").as_string());
  EXPECT_EQ(0.25, Num(w.at("duration_seconds")));
  EXPECT_EQ(200, Num(w.at("http_status")));
  EXPECT_EQ(10.5, Num(w.at("cert_days_left")));
  EXPECT_TRUE(w.at("error").is_null());

  const json::object& d = a[1].as_object();
  EXPECT_EQ("tcp", d.at("kind").as_string());
  EXPECT_EQ("127.0.0.1:5432", d.at("target").as_string());
  EXPECT_EQ(false, d.at("up").as_bool());
  EXPECT_TRUE(d.at("http_status").is_null());
  EXPECT_TRUE(d.at("cert_days_left").is_null());
  EXPECT_EQ("connect: connection refused", d.at("error").as_string());
}

TEST_F(UptimeHandlerTest, ExpiredCertificateHasNegativeDaysLeft) {
  probe::TargetStatus t = Checked("old", true);
  t.cert_expiry_seconds = static_cast<double>(kNow) / 1000 - 2 * 86400;
  targets_ = {t};
  EXPECT_EQ(-2, Num(One().at("cert_days_left")));
}

TEST_F(UptimeHandlerTest, BeforeTheFirstCheckEverythingIsNull) {
  probe::TargetStatus t;
  t.name = "new";
  t.kind = "http";
  t.target = "http://example.com/";
  t.interval_ms = 60'000;
  targets_ = {t};
  json::object o = One();
  EXPECT_EQ(60, Num(o.at("interval_seconds")));
  for (const char* key :
       {"up", "last_check", "duration_seconds", "http_status", "cert_days_left", "error"}) {
    EXPECT_TRUE(o.at(key).is_null()) << key << " = " << json::serialize(o.at(key));
  }
  const json::object& av = o.at("availability").as_object();
  EXPECT_TRUE(av.at("24h").is_null());
  EXPECT_TRUE(av.at("7d").is_null());
  EXPECT_TRUE(av.at("30d").is_null());
  EXPECT_TRUE(o.at("latency").as_array().empty());
}

TEST_F(UptimeHandlerTest, AvailabilityIsTheMeanOfStoredSuccessPerWindow) {
  targets_ = {Checked("web", true)};
  Store("probe_success", "web",
        {
            {kNow - 31 * kDay, 0},  // older than 30 days: not counted
            {kNow - 30 * kDay, 0},  // on the 30 d window's open edge: not counted
            {kNow - 20 * kDay, 1},
            {kNow - 10 * kDay, 1},
            {kNow - 8 * kDay, 1},
            {kNow - 7 * kDay + 1, 1},  // just inside 7 d
            {kNow - 3 * kDay, 0},
            {kNow - kDay, 0},  // on the 24 h window's open edge: 7 d only
            {kNow - 2 * kHour, 1},
            {kNow - kHour, 1},
            {kNow, 0},          // now is inside
            {kNow + kHour, 0},  // the future is not
        });
  // A second series of the same probe (its URL changed) counts too; another
  // probe and another metric with probe="web" do not.
  Store("probe_success", "web", {{kNow - 30 * kMinute, 1}}, "http://10.9.9.9/");
  Store("probe_success", "other", {{kNow - kMinute, 0}});
  Store("probe_http_status_code", "web", {{kNow - kMinute, 500}});

  const json::object av = One().at("availability").as_object();
  EXPECT_THAT(Num(av.at("24h")), DoubleNear(3.0 / 4, 1e-12));   // 1 1 0 | 1
  EXPECT_THAT(Num(av.at("7d")), DoubleNear(4.0 / 7, 1e-12));    // + 1 0 0
  EXPECT_THAT(Num(av.at("30d")), DoubleNear(7.0 / 10, 1e-12));  // + 1 1 1
}

TEST_F(UptimeHandlerTest, StalenessMarkersAndNaNAreNotSamples) {
  targets_ = {Checked("web", true)};
  Store("probe_success", "web",
        {{kNow - 3 * kMinute, 1},
         {kNow - 2 * kMinute, std::numeric_limits<double>::quiet_NaN()},
         {kNow - kMinute, 0}});
  EXPECT_EQ(0.5, Num(One().at("availability").at("24h")));
}

TEST_F(UptimeHandlerTest, LatencyIsAveragedIntoFiveMinuteBucketsOfTheLastDay) {
  targets_ = {Checked("web", true)};
  const int64_t last = kNow - kNow % kBucket;  // the bucket holding now
  const int64_t first = last - 287 * kBucket;
  Store("probe_duration_seconds", "web",
        {
            {first - 1, 9},  // before the first bucket: left out
            {first, 0.5},
            {first + kBucket - 1, 1.5},
            {last - 3 * kBucket + 10, 0.2},
            {last, 0.1},
            {kNow, 0.3},
        });
  Store("probe_duration_seconds", "web", {{last - 3 * kBucket + 20, 0.4}}, "http://other/");
  Store("probe_duration_seconds", "other", {{last, 7}});
  json::array lat = One().at("latency").as_array();
  ASSERT_EQ(3u, lat.size()) << json::serialize(lat);
  EXPECT_EQ(first / 1000, Num(lat[0].at(0)));
  EXPECT_EQ(1.0, Num(lat[0].at(1)));
  EXPECT_EQ((last - 3 * kBucket) / 1000, Num(lat[1].at(0)));
  EXPECT_THAT(Num(lat[1].at(1)), DoubleNear(0.3, 1e-12));
  EXPECT_EQ(last / 1000, Num(lat[2].at(0)));
  EXPECT_THAT(Num(lat[2].at(1)), DoubleNear(0.2, 1e-12));
}

TEST_F(UptimeHandlerTest, LatencyLeavesOutFailedChecksWhoseBucketsAreDown) {
  targets_ = {Checked("web", false)};
  const int64_t last = kNow - kNow % kBucket;
  const int64_t b1 = last - 10 * kBucket;  // up, then refused: latency of the up check only
  const int64_t b2 = last - 5 * kBucket;   // refused only: no latency, down
  Store("probe_success", "web",
        {{b1 + 1000, 1}, {b1 + 31'000, 0}, {b2 + 1000, 0}, {last + 1000, 1}});
  Store("probe_duration_seconds", "web",
        {{b1 + 1000, 0.2}, {b1 + 31'000, 0.0004}, {b2 + 1000, 0.0003}, {last + 1000, 0.3}});
  json::object o = One();
  json::array lat = o.at("latency").as_array();
  ASSERT_EQ(2u, lat.size()) << json::serialize(lat);
  EXPECT_EQ(b1 / 1000, Num(lat[0].at(0)));
  EXPECT_EQ(0.2, Num(lat[0].at(1)));
  EXPECT_EQ(last / 1000, Num(lat[1].at(0)));
  EXPECT_EQ(0.3, Num(lat[1].at(1)));
  json::array down = o.at("down").as_array();
  ASSERT_EQ(2u, down.size()) << json::serialize(down);
  EXPECT_EQ(b1 / 1000, Num(down[0]));
  EXPECT_EQ(b2 / 1000, Num(down[1]));
}

// Long blocks: 31 days in a few blocks rather than 372 two-hour ones.
class UptimeHandlerBlocksTest : public UptimeHandlerTest {
 protected:
  UptimeHandlerBlocksTest() { block_range_ms_ = 8 * kDay; }
};

TEST_F(UptimeHandlerBlocksTest, LatencyHasAtMost288BucketsAndThirtyDaysReadAcrossBlocks) {
  targets_ = {Checked("web", true)};
  // 31 days, one check a minute: 44,640 samples per metric, some of them
  // persisted to blocks.
  std::vector<std::pair<int64_t, double>> success, duration;
  for (int64_t t = kNow - 31 * kDay + kMinute; t <= kNow; t += kMinute) {
    // Down for the first 10 minutes of every hour.
    success.emplace_back(t, (t / kMinute) % 60 < 10 ? 0 : 1);
    duration.emplace_back(t, 0.125);
  }
  Store("probe_success", "web", success);
  Store("probe_duration_seconds", "web", duration);
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_GE(db_->stats().blocks, 3u);
  Store("probe_success", "web", {{kNow + kMinute, 1}});  // in the head, in the future

  json::object o = One();
  json::array lat = o.at("latency").as_array();
  json::array down = o.at("down").as_array();
  // Minutes 0-9 of each hour fill two buckets with failed checks only: no
  // latency there, and down; the other ten buckets of the hour are up.
  EXPECT_EQ(240u, lat.size());
  EXPECT_EQ(48u, down.size());
  for (const json::value& p : lat) EXPECT_EQ(0.125, Num(p.at(1)));
  for (const json::value& d : down)
    EXPECT_LT(static_cast<int64_t>(Num(d)) * 1000 % kHour, 10 * kMinute);
  const json::object& av = o.at("availability").as_object();
  EXPECT_THAT(Num(av.at("24h")), DoubleNear(50.0 / 60, 1e-9));
  EXPECT_THAT(Num(av.at("7d")), DoubleNear(50.0 / 60, 1e-9));
  EXPECT_THAT(Num(av.at("30d")), DoubleNear(50.0 / 60, 1e-9));
}

TEST_F(UptimeHandlerTest, PublicViewHidesTargetsErrorsAndInternals) {
  probe::TargetStatus down = Checked("api", false);
  down.cert_expiry_seconds = static_cast<double>(kNow) / 1000 + 86400;
  targets_ = {down, Checked("web", true)};
  Store("probe_success", "api", {{kNow - kMinute, 0}});
  Store("probe_duration_seconds", "api", {{kNow - kMinute, 2}});

  Response res = Send(bhttp::verb::get, "/status/probes");
  ASSERT_EQ(Status::ok, res.result());
  EXPECT_THAT(res.body(), Not(HasSubstr("10.1.2.3")));
  EXPECT_THAT(res.body(), Not(HasSubstr("internal-api")));
  EXPECT_THAT(res.body(), Not(HasSubstr("500")));

  json::array a = Get("/status/probes");
  ASSERT_EQ(2u, a.size());
  std::vector<std::string> keys;
  for (const auto& kv : a[0].as_object()) keys.emplace_back(kv.key());
  EXPECT_THAT(keys,
              UnorderedElementsAre("name", "up", "last_check", "availability", "latency", "down"));
  EXPECT_EQ("api", a[0].at("name").as_string());
  EXPECT_EQ(false, a[0].at("up").as_bool());
  EXPECT_EQ(0, Num(a[0].at("availability").at("24h")));
  EXPECT_EQ(0u, a[0].at("latency").as_array().size());  // the check failed
  EXPECT_EQ(1u, a[0].at("down").as_array().size());
  EXPECT_EQ(true, a[1].at("up").as_bool());
}

TEST_F(UptimeHandlerTest, HistoryIsCachedForAWhile) {
  cache_ms_ = 5'000;
  targets_ = {Checked("web", true)};
  Store("probe_success", "web", {{kNow - 2 * kMinute, 1}});
  EXPECT_EQ(1, Num(One().at("availability").at("24h")));
  Store("probe_success", "web", {{kNow - kMinute, 0}});
  now_ = kNow + 4'999;
  EXPECT_EQ(1, Num(One().at("availability").at("24h")));
  // The live part (last check) is never cached.
  targets_[0].up = false;
  EXPECT_EQ(false, One().at("up").as_bool());
  now_ = kNow + 5'000;
  EXPECT_EQ(0.5, Num(One().at("availability").at("24h")));
  // A clock that stepped back does not serve history from the future.
  Store("probe_success", "web", {{kNow - 30 * kMinute, 1}});
  now_ = kNow;
  EXPECT_THAT(Num(One().at("availability").at("24h")), DoubleNear(2.0 / 3, 1e-12));
}

}  // namespace
}  // namespace espy::http
