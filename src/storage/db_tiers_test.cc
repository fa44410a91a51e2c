// Downsampled tiers of storage::Db: conversion of old raw blocks, reads
// that merge stored buckets with raw samples, tier expiry, deletes, restart
// and the recovery of a downsampling a crash cut short.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;

model::Labels Cpu(const std::string& host) {
  return model::Labels({{"__name__", "cpu"}, {"host", host}});
}

// A sample every 10 s over [from, to): a counter ("a") or a wobbling gauge.
std::vector<model::Sample> Samples(const std::string& host, int64_t from, int64_t to) {
  std::vector<model::Sample> out;
  for (int64_t t = from; t < to; t += 10'000) {
    double v =
        host == "a" ? static_cast<double>(t / 10'000) : static_cast<double>((t / 10'000) % 97);
    out.push_back({t, v});
  }
  return out;
}

std::vector<tier::Bucket> Expected(const std::vector<model::Sample>& raw, int64_t res, int64_t mint,
                                   int64_t maxt) {
  std::vector<tier::Bucket> out;
  tier::Downsample(raw, res, &out);
  std::erase_if(out, [&](const tier::Bucket& b) { return b.ts < mint || b.ts > maxt; });
  return out;
}

void ExpectSamples(const std::vector<model::Sample>& want, const std::vector<model::Sample>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].ts, got[i].ts) << i;
    ASSERT_EQ(want[i].value, got[i].value) << i;
  }
}

void ExpectSame(const std::vector<tier::Bucket>& want, const std::vector<tier::Bucket>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].ts, got[i].ts) << i;
    EXPECT_EQ(want[i].min, got[i].min) << i;
    EXPECT_EQ(want[i].max, got[i].max) << i;
    EXPECT_EQ(want[i].sum, got[i].sum) << i;
    EXPECT_EQ(want[i].count, got[i].count) << i;
    EXPECT_EQ(want[i].last, got[i].last) << i;
  }
}

class TierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tier_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    options_.dir = dir_;
    options_.clock = &clock_;
    options_.maintenance_interval_ms = 0;
    options_.tiers = {{5 * kMin, 24 * kHour}, {kHour, 48 * kHour}};
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    db_.reset();
    auto db = Db::Open(options_);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  void Write(const std::string& host, const std::vector<model::Sample>& samples) {
    model::SampleBatch b;
    uint32_t s = b.AddSeries(Cpu(host));
    for (const model::Sample& x : samples) b.Add(s, x.ts, x.value);
    ASSERT_TRUE(db_->CommitAndWait(std::move(b)).ok());
  }
  // Writes 64 h of both series and lets maintenance downsample what is
  // older than a day at "now" = 72 h.
  // The first round cuts blocks; the second, after newer samples, removes
  // the WAL that holds the old ones, which makes them ready to downsample.
  void WriteAndDownsample() {
    Write("a", Samples("a", 0, 60 * kHour));
    Write("b", Samples("b", 0, 60 * kHour));
    ASSERT_TRUE(db_->Maintain().ok());
    EXPECT_EQ(0u, db_->stats().blocks_downsampled);
    Write("a", Samples("a", 60 * kHour, 64 * kHour));
    Write("b", Samples("b", 60 * kHour, 64 * kHour));
    ASSERT_TRUE(db_->Maintain().ok());
  }
  std::vector<model::Sample> Raw(const std::string& host, int64_t mint, int64_t maxt) {
    std::vector<model::Sample> out;
    db_->head().Read(Ref(host), mint, maxt, SIZE_MAX, &out);
    return out;
  }
  std::vector<tier::Bucket> Buckets(const std::string& host, int level, int64_t mint,
                                    int64_t maxt) {
    std::vector<tier::Bucket> out;
    absl::Status s = db_->ReadBuckets(Ref(host), level, mint, maxt, &out);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }
  model::SeriesRef Ref(const std::string& host) { return db_->head().Lookup(Cpu(host)); }
  // Writes 60 h of host "a", cuts and compacts it while nothing is old
  // enough to downsample, keeps a copy of the raw blocks in "saved/", then
  // moves time on and downsamples them.
  void DownsampleKeepingACopyOfTheRawBlocks() {
    clock_.Set(0);
    Write("a", Samples("a", 0, 60 * kHour));
    ASSERT_TRUE(db_->FlushHead().ok());
    ASSERT_TRUE(db_->Maintain().ok());
    fs::copy(dir_ + "/blocks", dir_ + "/saved", fs::copy_options::recursive);
    clock_.Set(72 * kHour);
    ASSERT_TRUE(db_->Maintain().ok());
    ASSERT_EQ(2u, db_->stats().blocks_downsampled);
  }
  // With the Db closed: the raw blocks downsampling deleted come back, as if
  // a crash had come before their deletion.
  void PutTheRawBlocksBack() {
    for (const auto& e : fs::directory_iterator(dir_ + "/saved")) {
      fs::path to = fs::path(dir_) / "blocks" / e.path().filename();
      if (!fs::exists(to)) fs::copy(e.path(), to, fs::copy_options::recursive);
    }
    fs::remove_all(dir_ + "/saved");
  }
  int CountDirs(const std::string& sub) {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ + "/" + sub, ec)) n += e.is_directory();
    return n;
  }

  std::string dir_;
  base::FakeClock clock_{72 * kHour};
  DbOptions options_;
  std::unique_ptr<Db> db_;
};

TEST_F(TierTest, OldRawBlocksBecomeTiersAndRawDataGoes) {
  WriteAndDownsample();
  // Raw data older than a day (72 h - 24 h) was downsampled and deleted.
  EXPECT_TRUE(Raw("a", 0, 48 * kHour - 1).empty());
  ExpectSamples(Samples("a", 48 * kHour, 60 * kHour), Raw("a", 0, 60 * kHour - 1));
  DbStats st = db_->stats();
  EXPECT_EQ(2u, st.blocks_downsampled);
  // The 5-minute tier keeps only the day the hourly one has not taken over.
  EXPECT_EQ(1, CountDirs("tiers/300000ms"));
  EXPECT_EQ(2, CountDirs("tiers/3600000ms"));
  EXPECT_EQ(1u, st.tier_blocks_expired);
  EXPECT_EQ(3u, st.tier_blocks);

  const std::vector<model::Sample> all = Samples("b", 0, 64 * kHour);
  ExpectSame(Expected(all, 5 * kMin, 30 * kHour, 60 * kHour),
             Buckets("b", 1, 30 * kHour, 60 * kHour));
  ExpectSame(Expected(all, kHour, 0, 60 * kHour), Buckets("b", 2, 0, 60 * kHour));
  // Each 5-minute bucket of 10 s samples counts 30; its last is the raw sample.
  std::vector<tier::Bucket> b = Buckets("a", 1, 30 * kHour, 31 * kHour);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(30, b[1].count);
  EXPECT_EQ(30 * kHour + 10 * kMin - 10'000, b[1].ts);
  EXPECT_EQ(static_cast<double>(b[1].ts / 10'000), b[1].last);
}

TEST_F(TierTest, TierForPicksRawUntilDataWasDownsampled) {
  WriteAndDownsample();
  const int64_t big = INT64_MAX;
  EXPECT_EQ(0, db_->TierFor(50 * kHour, kHour, big));  // still raw
  EXPECT_EQ(1, db_->TierFor(30 * kHour, kMin, big));   // needs a tier; 5m is the finest
  EXPECT_EQ(2, db_->TierFor(30 * kHour, kHour, big));  // the step allows hourly buckets
  EXPECT_EQ(1, db_->TierFor(30 * kHour, kHour, 10 * kMin));
  EXPECT_EQ(2, db_->TierFor(10 * kHour, kMin, big));  // 5-minute buckets are gone there
}

TEST_F(TierTest, NoTiersNoDownsampling) {
  options_.tiers.clear();
  Reopen();
  WriteAndDownsample();
  ExpectSamples(Samples("a", 0, 64 * kHour), Raw("a", 0, 64 * kHour));
  EXPECT_EQ(0, db_->TierFor(0, kHour, INT64_MAX));
  EXPECT_EQ(0u, db_->stats().tier_blocks);
}

TEST_F(TierTest, ReopenKeepsTiersAndWhereRawDataStarts) {
  WriteAndDownsample();
  std::vector<tier::Bucket> before = Buckets("a", 2, 0, 60 * kHour);
  Reopen();
  ExpectSame(before, Buckets("a", 2, 0, 60 * kHour));
  EXPECT_EQ(0, db_->TierFor(50 * kHour, kHour, INT64_MAX));
  EXPECT_EQ(1, db_->TierFor(30 * kHour, kMin, INT64_MAX));
}

TEST_F(TierTest, BackfillIntoDownsampledTimeIsMergedAtOnceAndAfterMaintenance) {
  WriteAndDownsample();
  std::vector<model::Sample> all = Samples("b", 0, 64 * kHour);
  all.push_back({30 * kHour + 1000, 1000});
  std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.ts < y.ts; });
  Write("b", {{30 * kHour + 1000, 1000}});
  std::vector<tier::Bucket> want = Expected(all, 5 * kMin, 29 * kHour, 31 * kHour);
  ExpectSame(want, Buckets("b", 1, 29 * kHour, 31 * kHour));
  // Downsampled once its WAL is gone.
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(2u, db_->stats().blocks_downsampled);
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(3u, db_->stats().blocks_downsampled);
  // Merged from two stored blocks now; the sum adds up in another order.
  std::vector<tier::Bucket> got = Buckets("b", 1, 29 * kHour, 31 * kHour);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].count, got[i].count);
    EXPECT_EQ(want[i].max, got[i].max);
    EXPECT_DOUBLE_EQ(want[i].sum, got[i].sum);
  }
}

TEST_F(TierTest, StaleOnlyBucketsRoundTrip) {
  Write("s", {{kHour, 5}, {2 * kHour + 10 * kMin, model::StaleNaN()}});
  WriteAndDownsample();
  std::vector<tier::Bucket> b = Buckets("s", 2, 0, 3 * kHour);
  ASSERT_EQ(2u, b.size());
  EXPECT_EQ(1, b[0].count);
  EXPECT_EQ(5, b[0].sum);
  EXPECT_EQ(0, b[1].count);
  EXPECT_TRUE(model::IsStaleNaN(b[1].last));
  EXPECT_TRUE(model::IsStaleNaN(b[1].Get(tier::Rollup::kSum)));
}

TEST_F(TierTest, DeleteRemovesBuckets) {
  WriteAndDownsample();
  std::vector<model::Matcher> m;
  m.push_back(*model::Matcher::Make(model::MatchType::kEqual, "host", "a"));
  ASSERT_TRUE(db_->Delete(m, 0, 40 * kHour).ok());
  EXPECT_TRUE(Buckets("a", 2, 0, 40 * kHour).empty());
  EXPECT_FALSE(Buckets("a", 2, 0, 60 * kHour).empty());
  EXPECT_FALSE(Buckets("b", 2, 0, 40 * kHour).empty());
  Reopen();
  EXPECT_TRUE(Buckets("a", 2, 0, 40 * kHour).empty());
}

TEST_F(TierTest, ACrashAfterEveryTierWasWrittenIsFinishedAtOpen) {
  ASSERT_NO_FATAL_FAILURE(DownsampleKeepingACopyOfTheRawBlocks());
  std::vector<tier::Bucket> want = Buckets("a", 2, 0, 60 * kHour);
  db_.reset();
  PutTheRawBlocksBack();
  Reopen();
  ExpectSame(want, Buckets("a", 2, 0, 60 * kHour));
  EXPECT_TRUE(Raw("a", 0, 48 * kHour - 1).empty());
}

TEST_F(TierTest, ACrashBetweenTiersIsUndoneAtOpen) {
  ASSERT_NO_FATAL_FAILURE(DownsampleKeepingACopyOfTheRawBlocks());
  db_.reset();
  PutTheRawBlocksBack();
  // The hourly tier never got its blocks.
  fs::remove_all(dir_ + "/tiers/3600000ms");
  Reopen();
  EXPECT_EQ(0, CountDirs("tiers/300000ms"));
  ExpectSamples(Samples("a", 0, 60 * kHour), Raw("a", 0, 60 * kHour));
  EXPECT_EQ(0, db_->TierFor(0, kMin, INT64_MAX));
  // And the next maintenance does it again, whole.
  ASSERT_TRUE(db_->Maintain().ok());
  ExpectSame(Expected(Samples("a", 0, 60 * kHour), kHour, 0, 60 * kHour),
             Buckets("a", 2, 0, 60 * kHour));
}

TEST_F(TierTest, CorruptTierBlockIsQuarantined) {
  WriteAndDownsample();
  db_.reset();
  std::string victim;
  for (const auto& e : fs::directory_iterator(dir_ + "/tiers/3600000ms")) victim = e.path();
  {
    std::fstream f(victim + "/chunks", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  Reopen();
  EXPECT_EQ(1, CountDirs("tiers/3600000ms"));
  EXPECT_EQ(1u, db_->stats().blocks_quarantined);
}

TEST_F(TierTest, TiersNoLongerConfiguredAreReportedAtOpen) {
  WriteAndDownsample();
  std::ostringstream log;
  options_.logger = std::make_shared<spdlog::logger>(
      "tier_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  options_.tiers = {{kHour, 48 * kHour}};  // the 5-minute tier is dropped
  Reopen();
  db_.reset();  // no more log lines while reading it
  const std::string text = log.str();
  EXPECT_NE(std::string::npos,
            text.find("downsampled data of a tier not configured is not read\" dir=" + dir_ +
                      "/tiers/300000ms"))
      << text;
  EXPECT_EQ(std::string::npos, text.find("/tiers/3600000ms hint")) << text;
}

TEST_F(TierTest, BadTierOptionsAreRefused) {
  db_.reset();
  struct Case {
    std::vector<tier::TierSpec> tiers;
    int64_t retention;
    std::string want;
  } cases[] = {
      {{{0, kHour}}, 0, "want a resolution and age > 0"},
      {{{kHour, kHour}, {kMin, 2 * kHour}}, 0, "coarser resolution"},
      {{{kMin, 2 * kHour}, {kHour, kHour}}, 0, "greater age"},
      {{{kMin, 48 * kHour}}, 24 * kHour, "not below the retention"},
  };
  for (const Case& c : cases) {
    DbOptions o = options_;
    o.tiers = c.tiers;
    o.retention_ms = c.retention;
    auto db = Db::Open(o);
    ASSERT_FALSE(db.ok());
    EXPECT_NE(std::string::npos, std::string(db.status().message()).find(c.want)) << db.status();
  }
}

}  // namespace
}  // namespace espy::storage
