#include "storage/db.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "encoding/coding.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "storage/record/record.h"
#include "storage/wal/wal.h"

namespace espy::storage {
namespace {

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/db_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(wal::FsyncPolicy fsync = wal::FsyncPolicy::kBatch) {
    db_.reset();
    DbOptions options = options_;
    options.dir = dir_;
    options.fsync = fsync;
    auto db = Db::Open(options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  static model::SampleBatch Batch(const std::string& host, std::vector<model::Sample> samples) {
    model::SampleBatch b;
    uint32_t s = b.AddSeries(model::Labels({{"__name__", "cpu"}, {"host", host}}));
    for (const model::Sample& x : samples) b.Add(s, x.ts, x.value);
    return b;
  }
  std::vector<model::Sample> Read(const std::string& host) {
    std::vector<model::Sample> out;
    model::SeriesRef ref = db_->head().Lookup(model::Labels({{"__name__", "cpu"}, {"host", host}}));
    if (ref != 0) db_->head().Read(ref, INT64_MIN, INT64_MAX, SIZE_MAX, &out);
    return out;
  }

  std::map<int64_t, double> ReadMap(const std::string& host) {
    std::map<int64_t, double> m;
    for (const model::Sample& s : Read(host)) {
      EXPECT_FALSE(m.contains(s.ts)) << "duplicate ts " << s.ts;
      m[s.ts] = s.value;
    }
    return m;
  }
  int CountDirs(const std::string& sub) {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/" + sub, ec)) {
      (void)e;
      ++n;
    }
    return n;
  }

  static constexpr int64_t kHour = 3600 * 1000;
  std::string dir_;
  DbOptions options_ = [] {
    DbOptions o;
    o.maintenance_interval_ms = 0;
    return o;
  }();
  std::unique_ptr<Db> db_;
};

TEST_F(DbTest, CommittedDataIsReadableAndSurvivesReopen) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 5}})).ok());
  EXPECT_EQ(2u, Read("a").size());
  Reopen();
  auto a = Read("a");
  ASSERT_EQ(2u, a.size());
  EXPECT_EQ(2, a[1].value);
  EXPECT_EQ(1u, Read("b").size());
  EXPECT_EQ(2u, db_->stats().series);
}

TEST_F(DbTest, WalCountersCountSinceStartAcrossRotations) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}})).ok());
  const DbStats before = db_->stats();
  EXPECT_GT(before.wal_bytes, 0u);
  EXPECT_GT(before.wal_syncs, 0u);
  // A block cut rotates the WAL to a new segment and writer.
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{3000, 3}})).ok());
  const DbStats after = db_->stats();
  EXPECT_GT(after.wal_bytes, before.wal_bytes);
  EXPECT_GT(after.wal_syncs, before.wal_syncs);
}

TEST_F(DbTest, LaterWriteWinsAcrossBatchesAndReplay) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 7}})).ok());
  EXPECT_EQ(7, Read("a")[0].value);
  Reopen();
  ASSERT_EQ(1u, Read("a").size());
  EXPECT_EQ(7, Read("a")[0].value);
}

TEST_F(DbTest, ConcurrentWritersShareSyncs) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ASSERT_TRUE(db_->CommitAndWait(Batch("h" + std::to_string(t), {{i, 1.0 * i}})).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  DbStats s = db_->stats();
  EXPECT_EQ(uint64_t{kThreads * kPerThread}, s.batches_committed);
  EXPECT_EQ(s.commit_rounds, s.wal_syncs);
  Reopen();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(size_t{kPerThread}, Read("h" + std::to_string(t)).size());
}

TEST_F(DbTest, NewSeriesInTwoQueuedBatchesIsCreatedOnce) {
  // Both batches are queued, with the series unknown, while the commit
  // thread is held inside the callback of an earlier batch. At the limit of
  // two series, the second batch must still find the series the first made.
  options_.max_series = 2;
  Reopen();
  absl::Mutex mu;
  bool release = false, held = false;
  db_->Commit(Batch("first", {{1000, 1}}), [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    absl::MutexLock lock(&mu);
    held = true;
    mu.Await(absl::Condition(&release));
  });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&held));
  }
  int done = 0;
  for (int i = 0; i < 2; ++i) {
    db_->Commit(Batch("new", {{1000 + i, 1.0 * i}}), [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      absl::MutexLock lock(&mu);
      ++done;
    });
  }
  {
    absl::MutexLock lock(&mu);
    release = true;
    auto both = [&] { return done == 2; };
    mu.Await(absl::Condition(&both));
  }
  EXPECT_EQ(2u, db_->stats().series);
  EXPECT_EQ(2u, Read("new").size());
  Reopen();
  EXPECT_EQ(2u, db_->stats().series);
  EXPECT_EQ(2u, Read("new").size());
}

TEST_F(DbTest, TornWalTailIsDroppedOnReopen) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  db_.reset();
  // A crash mid-write leaves a partial record after the last good one.
  std::string last;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/wal")) {
    if (e.path().filename().string() > last) last = e.path().filename().string();
  }
  {
    std::ofstream f(dir_ + "/wal/" + last, std::ios::app | std::ios::binary);
    f << std::string("\x40\x00\x00\x00garbage", 11);
  }
  Reopen();
  EXPECT_EQ(1u, Read("a").size());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 2}})).ok());
  Reopen();
  EXPECT_EQ(2u, Read("a").size());
}

TEST_F(DbTest, FsyncPoliciesAllCommit) {
  for (auto policy : {wal::FsyncPolicy::kAlways, wal::FsyncPolicy::kNever}) {
    Reopen(policy);
    ASSERT_TRUE(db_->CommitAndWait(Batch("p", {{static_cast<int64_t>(policy), 1}})).ok());
  }
  Reopen();
  EXPECT_EQ(2u, Read("p").size());
}

TEST_F(DbTest, CommitAfterCloseIsUnavailable) {
  db_->Close();
  EXPECT_EQ(absl::StatusCode::kUnavailable, db_->CommitAndWait(Batch("a", {{1, 1}})).code());
}

TEST_F(DbTest, MaintainPersistsOldDataToBlocksAndTruncatesTheWal) {
  // One sample a minute. At 4h the range [0, 2h) becomes a block; the WAL
  // segment holding it also holds newer data, so it goes at the next cut.
  auto write_minutes = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{i * 60'000, double(i)}})).ok());
    }
  };
  write_minutes(0, 240);
  ASSERT_TRUE(db_->Maintain().ok());
  DbStats s = db_->stats();
  EXPECT_EQ(1u, s.blocks);
  EXPECT_EQ(120u, s.block_samples);
  EXPECT_EQ(1u, s.block_chunks);  // 120 samples: one full chunk
  EXPECT_EQ(0u, s.wal_truncations);
  EXPECT_EQ(240u, ReadMap("a").size());
  write_minutes(240, 360);
  ASSERT_TRUE(db_->Maintain().ok());
  s = db_->stats();
  EXPECT_EQ(2u, s.blocks);
  EXPECT_EQ(2u, s.block_chunks);
  EXPECT_EQ(1u, s.wal_truncations);
  Reopen();
  auto m = ReadMap("a");
  ASSERT_EQ(360u, m.size());
  EXPECT_EQ(239, m[239 * 60'000]);
  EXPECT_EQ(2u, db_->stats().blocks);
  // Only what was written since the first cut was replayed.
  EXPECT_EQ(120u, db_->stats().samples_in_head);
}

TEST_F(DbTest, LaterWriteWinsAcrossBlocksHeadAndRestarts) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 20}})).ok());  // over the block
  EXPECT_EQ(20, ReadMap("a")[2000]);
  Reopen();
  EXPECT_EQ(20, ReadMap("a")[2000]);
  ASSERT_TRUE(db_->FlushHead().ok());  // a second, newer block for the same range
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{3000, 30}})).ok());
  Reopen();
  auto m = ReadMap("a");
  ASSERT_EQ(3u, m.size());
  EXPECT_EQ(1, m[1000]);
  EXPECT_EQ(20, m[2000]);
  EXPECT_EQ(30, m[3000]);
  EXPECT_EQ(2u, db_->stats().blocks);
}

TEST_F(DbTest, SeriesKnownOnlyFromBlocksAreReloggedInTheWal) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());  // WAL now empty of both series
  Reopen();                            // refs come from the blocks now
  ASSERT_TRUE(db_->CommitAndWait(Batch("c", {{5000, 5}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{5000, 6}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{5000, 7}})).ok());
  Reopen();
  EXPECT_EQ((std::map<int64_t, double>{{1000, 1}, {5000, 7}}), ReadMap("a"));
  EXPECT_EQ((std::map<int64_t, double>{{1000, 1}, {5000, 6}}), ReadMap("b"));
  EXPECT_EQ((std::map<int64_t, double>{{5000, 5}}), ReadMap("c"));
}

TEST_F(DbTest, SeriesGivenByRefAreCommittedAndReloggedWithTheirLabels) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 2}})).ok());
  const model::SeriesRef a =
      db_->head().Lookup(model::Labels({{"__name__", "cpu"}, {"host", "a"}}));
  const model::SeriesRef b =
      db_->head().Lookup(model::Labels({{"__name__", "cpu"}, {"host", "b"}}));
  ASSERT_NE(0u, a);
  ASSERT_NE(0u, b);
  auto by_ref = [&](int64_t ts) {
    model::SampleBatch batch;
    batch.Add(batch.AddSeriesRef(a), ts, 10);
    batch.Add(batch.AddSeries(model::Labels({{"__name__", "cpu"}, {"host", "c"}})), ts, 30);
    batch.Add(batch.AddSeriesRef(b), ts, 20);
    batch.Add(batch.AddSeriesRef(a), ts + 1, 11);  // the same series twice
    return batch;
  };
  ASSERT_TRUE(db_->CommitAndWait(by_ref(2000)).ok());
  // Truncating the WAL starts a generation in which every series used is
  // logged again: those given by ref must be logged with the head's labels.
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(by_ref(3000)).ok());
  Reopen();
  EXPECT_EQ((std::map<int64_t, double>{{1000, 1}, {2000, 10}, {2001, 11}, {3000, 10}, {3001, 11}}),
            ReadMap("a"));
  EXPECT_EQ((std::map<int64_t, double>{{1000, 2}, {2000, 20}, {3000, 20}}), ReadMap("b"));
  EXPECT_EQ((std::map<int64_t, double>{{2000, 30}, {3000, 30}}), ReadMap("c"));
  EXPECT_EQ(3u, db_->stats().series);
}

TEST_F(DbTest, CorruptBlockIsQuarantinedAndTheRestIsServed) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 2}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  db_.reset();
  std::string victim = dir_ + "/blocks/b-0000000000000001/chunks";
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('\x7f');
  }
  Reopen();
  EXPECT_EQ(1u, db_->stats().blocks_quarantined);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/quarantine/b-0000000000000001"));
  EXPECT_TRUE(Read("a").empty());
  EXPECT_EQ(1u, Read("b").size());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{9000, 9}})).ok());
  EXPECT_EQ(1u, Read("a").size());
}

TEST_F(DbTest, RetentionDropsWholeExpiredBlocks) {
  base::FakeClock clock(10 * kHour);
  options_.clock = &clock;
  options_.retention_ms = 5 * kHour;
  Reopen();
  ASSERT_TRUE(db_->CommitAndWait(Batch("old", {{kHour, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("new", {{7 * kHour, 1}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  EXPECT_EQ(2u, db_->stats().blocks);
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(1u, db_->stats().blocks);
  EXPECT_EQ(1u, db_->stats().blocks_expired);
  EXPECT_TRUE(Read("old").empty());
  EXPECT_EQ(1u, Read("new").size());
  EXPECT_EQ(1, CountDirs("blocks"));
  clock.Advance(3 * kHour);
  Reopen();  // retention also runs at open
  EXPECT_TRUE(Read("new").empty());
  EXPECT_EQ(0, CountDirs("blocks"));
}

TEST_F(DbTest, WalReplayLeavesOutSamplesPastTheRetention) {
  base::FakeClock clock(10 * kHour);
  options_.clock = &clock;
  options_.retention_ms = 5 * kHour;
  Reopen();
  // Both inside the retention when written, and still only in the WAL.
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{6 * kHour, 1}, {9 * kHour, 2}})).ok());
  clock.Advance(2 * kHour);  // 6h is now past the retention, 9h is not
  Reopen();
  std::vector<model::Sample> got = Read("a");
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ(9 * kHour, got[0].ts);
  EXPECT_EQ(2, got[0].value);
}

TEST_F(DbTest, WithoutRetentionReplayAndMaintenanceKeepOldSamples) {
  base::FakeClock clock(1000 * 24 * kHour);
  options_.clock = &clock;
  Reopen();
  ASSERT_TRUE(db_->CommitAndWait(Batch("old", {{kHour, 1}})).ok());
  Reopen();
  EXPECT_EQ(1u, Read("old").size());
  ASSERT_TRUE(db_->Maintain().ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(0u, db_->stats().blocks_expired);
  Reopen();
  EXPECT_EQ(1u, Read("old").size());
}

TEST_F(DbTest, OverlappingBlocksAreCompactedWithLaterWritesWinning) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 5}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 20}, {4000, 40}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_EQ(2u, db_->stats().blocks);
  ASSERT_TRUE(db_->Maintain().ok());
  DbStats s = db_->stats();
  EXPECT_EQ(1u, s.blocks);
  EXPECT_EQ(1u, s.compactions);
  EXPECT_EQ(2u, s.blocks_compacted);
  EXPECT_EQ(5u, s.block_samples);
  const std::map<int64_t, double> want_a = {{1000, 1}, {2000, 20}, {3000, 3}, {4000, 40}};
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ((std::map<int64_t, double>{{1000, 5}}), ReadMap("b"));
  EXPECT_EQ(1, CountDirs("blocks"));
  Reopen();
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ(1u, db_->stats().blocks);
  EXPECT_EQ(2, db_->head().Blocks()[0]->block->meta().level);
}

TEST_F(DbTest, SmallBlocksOfAFinishedWindowAreMergedIntoFullChunks) {
  options_.max_block_range = 8 * kHour;
  Reopen();
  // One sample every 10 minutes for 10h: the cut at 8h makes four 2h blocks
  // that fill the window [0, 8h), which is then merged.
  for (int i = 0; i < 60; ++i) {
    model::SampleBatch b = Batch("a", {{i * 600'000, double(i)}});
    ASSERT_TRUE(db_->CommitAndWait(std::move(b)).ok());
  }
  ASSERT_TRUE(db_->Maintain().ok());
  DbStats s = db_->stats();
  EXPECT_EQ(4u, s.blocks_written);
  EXPECT_EQ(1u, s.blocks);
  EXPECT_EQ(4u, s.blocks_compacted);
  EXPECT_EQ(48u, s.block_samples);
  auto blocks = db_->head().Blocks();
  ASSERT_EQ(1u, blocks.size());
  EXPECT_EQ(0, blocks[0]->block->meta().mint);
  EXPECT_EQ(47 * 600'000, blocks[0]->block->meta().maxt);
  EXPECT_EQ(1u, blocks[0]->block->Chunks(0).size());  // 48 samples in one chunk
  EXPECT_EQ(60u, ReadMap("a").size());
  // The window is done: more rounds leave the merged block alone.
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(1u, db_->stats().compactions);
  Reopen();
  auto m = ReadMap("a");
  ASSERT_EQ(60u, m.size());
  EXPECT_EQ(47, m[47 * 600'000]);
  EXPECT_EQ(1u, db_->stats().blocks);
}

TEST_F(DbTest, MaxSeriesLimitRejectsTheWholeBatch) {
  options_.max_series = 2;
  Reopen();
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 1}})).ok());
  absl::Status s = db_->CommitAndWait(Batch("c", {{1000, 1}}));
  EXPECT_EQ(absl::StatusCode::kResourceExhausted, s.code());
  EXPECT_NE(std::string::npos, std::string(s.message()).find("max_series=2")) << s;
  EXPECT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 1}})).ok());  // existing series still fine
  EXPECT_EQ(2u, db_->stats().series);
  EXPECT_EQ(1u, db_->stats().series_limit_rejections);
  Reopen();
  EXPECT_TRUE(Read("c").empty());
}

TEST_F(DbTest, NewSeriesPerMinuteLimitResetsEachMinute) {
  base::FakeClock clock(0);
  options_.clock = &clock;
  options_.max_new_series_per_minute = 1;
  Reopen();
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  absl::Status s = db_->CommitAndWait(Batch("b", {{1000, 1}}));
  EXPECT_EQ(absl::StatusCode::kResourceExhausted, s.code());
  EXPECT_NE(std::string::npos, std::string(s.message()).find("max_new_series_per_minute=1"));
  clock.Advance(60'000);
  EXPECT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 1}})).ok());
}

TEST_F(DbTest, BackfillLandsInBlocksOfItsOwnRange) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{100 * kHour, 1}})).ok());
  // Last "year": one sample every ten hours, arriving after newer data.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{i * 10 * kHour, double(i)}})).ok());
  }
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(5u, db_->stats().blocks_written);  // one per 2h range touched
  // Then compaction merges each finished 24h window: [0, 24h), [24h, 48h).
  EXPECT_EQ(2u, db_->stats().blocks);
  EXPECT_EQ(6u, ReadMap("a").size());
  Reopen();
  EXPECT_EQ(6u, ReadMap("a").size());
}

// ---- Deleting ----

std::vector<model::Matcher> Sel(const std::string& host) {
  return {*model::Matcher::Make(model::MatchType::kEqual, "__name__", "cpu"),
          *model::Matcher::Make(model::MatchType::kEqual, "host", host)};
}

std::vector<std::string> BlockFiles(const std::string& blocks_dir, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& b : std::filesystem::directory_iterator(blocks_dir)) {
    if (std::filesystem::exists(b.path() / name)) out.push_back(b.path().filename().string());
  }
  return out;
}

TEST_F(DbTest, DeleteHidesHeadSamplesAndSurvivesWalReplay) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 5}, {2000, 6}})).ok());
  ASSERT_TRUE(db_->Delete(Sel("a"), 1500, 2500).ok());
  const std::map<int64_t, double> want_a = {{1000, 1}, {3000, 3}};
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ(2u, ReadMap("b").size());
  EXPECT_EQ(1u, db_->stats().deletes);
  Reopen();  // replays the batch, then the tombstones record
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ(2u, ReadMap("b").size());
  EXPECT_TRUE(db_->head().HadDeletion(
      db_->head().Lookup(model::Labels({{"__name__", "cpu"}, {"host", "a"}}))));
}

TEST_F(DbTest, SamplesWrittenAfterADeleteStayVisibleAcrossRestarts) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}})).ok());
  ASSERT_TRUE(db_->Delete(Sel("a"), INT64_MIN, INT64_MAX).ok());
  EXPECT_TRUE(Read("a").empty());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 22}, {500, 5}})).ok());
  const std::map<int64_t, double> want = {{500, 5}, {2000, 22}};
  EXPECT_EQ(want, ReadMap("a"));
  Reopen();
  EXPECT_EQ(want, ReadMap("a"));
  ASSERT_TRUE(db_->FlushHead().ok());
  Reopen();
  EXPECT_EQ(want, ReadMap("a"));
}

TEST_F(DbTest, DeleteGivesBlocksDurableTombstones) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 5}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{4000, 4}})).ok());  // in the head
  ASSERT_TRUE(db_->Delete(Sel("a"), 2000, 4000).ok());
  const std::map<int64_t, double> want_a = {{1000, 1}};
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ(1u, db_->stats().blocks_with_tombstones);
  EXPECT_EQ(std::vector<std::string>{"b-0000000000000001"},
            BlockFiles(dir_ + "/blocks", "tombstones"));
  Reopen();
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_EQ(1u, ReadMap("b").size());
  EXPECT_EQ(1u, db_->stats().blocks_with_tombstones);
  // A later write into the deleted range of the block wins again.
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 20}})).ok());
  EXPECT_EQ((std::map<int64_t, double>{{1000, 1}, {2000, 20}}), ReadMap("a"));
  ASSERT_TRUE(db_->FlushHead().ok());
  Reopen();
  EXPECT_EQ((std::map<int64_t, double>{{1000, 1}, {2000, 20}}), ReadMap("a"));
}

TEST_F(DbTest, DeleteWithARegexSelectorAndNoMatchTouchesNothingElse) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("web-1", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("web-2", {{1000, 2}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("db-1", {{1000, 3}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->Delete({*model::Matcher::Make(model::MatchType::kRegexMatch, "host", "web-.*")},
                          INT64_MIN, INT64_MAX)
                  .ok());
  ASSERT_TRUE(db_->Delete(Sel("nope"), INT64_MIN, INT64_MAX).ok());
  EXPECT_TRUE(Read("web-1").empty());
  EXPECT_TRUE(Read("web-2").empty());
  EXPECT_EQ(1u, Read("db-1").size());
  EXPECT_EQ(2u, db_->head().num_series_with_deletions());
}

TEST_F(DbTest, DeleteRejectsBadArguments) {
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, db_->Delete({}, 0, 1).code());
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, db_->Delete(Sel("a"), 5, 4).code());
  db_->Close();
  EXPECT_EQ(absl::StatusCode::kUnavailable, db_->Delete(Sel("a"), 0, 1).code());
}

TEST_F(DbTest, CleanTombstonesRewritesBlocksWithoutTheDeletedSamples) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 5}})).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("c", {{9 * kHour, 7}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());  // two blocks: [0, 2h) and [8h, 10h)
  ASSERT_EQ(2u, db_->stats().blocks);
  ASSERT_TRUE(db_->Delete(Sel("a"), 2000, 2000).ok());
  ASSERT_TRUE(db_->Delete(Sel("b"), INT64_MIN, INT64_MAX).ok());
  const uint64_t samples_before = db_->stats().block_samples;
  ASSERT_TRUE(db_->CleanTombstones().ok());
  DbStats s = db_->stats();
  EXPECT_EQ(2u, s.blocks);
  EXPECT_EQ(0u, s.blocks_with_tombstones);
  EXPECT_EQ(samples_before - 2, s.block_samples);
  EXPECT_TRUE(BlockFiles(dir_ + "/blocks", "tombstones").empty());
  EXPECT_EQ(2, CountDirs("blocks"));
  const std::map<int64_t, double> want_a = {{1000, 1}, {3000, 3}};
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_TRUE(Read("b").empty());
  EXPECT_EQ(1u, Read("c").size());
  Reopen();
  EXPECT_EQ(want_a, ReadMap("a"));
  EXPECT_TRUE(Read("b").empty());
  EXPECT_EQ(1u, Read("c").size());
  // Nothing left to clean: a no-op.
  ASSERT_TRUE(db_->CleanTombstones().ok());
  EXPECT_EQ(2u, db_->stats().blocks);
}

TEST_F(DbTest, CleanTombstonesRemovesABlockWithNothingLeft) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->Delete(Sel("a"), INT64_MIN, INT64_MAX).ok());
  ASSERT_TRUE(db_->CleanTombstones().ok());
  EXPECT_EQ(0u, db_->stats().blocks);
  EXPECT_EQ(0, CountDirs("blocks"));
  Reopen();
  EXPECT_TRUE(Read("a").empty());
}

TEST_F(DbTest, CleanTombstonesMergesOverlappingBlocksKeepingLaterWrites) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 20}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());  // overlaps the first, newer
  ASSERT_TRUE(db_->Delete(Sel("a"), 3000, 3000).ok());
  ASSERT_TRUE(db_->CleanTombstones().ok());
  EXPECT_EQ(1u, db_->stats().blocks);
  const std::map<int64_t, double> want = {{1000, 1}, {2000, 20}};
  EXPECT_EQ(want, ReadMap("a"));
  Reopen();
  EXPECT_EQ(want, ReadMap("a"));
}

TEST_F(DbTest, CompactionDropsDeletedSamplesAndTheirTombstones) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2500, 25}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());  // overlaps the first: compacted
  ASSERT_TRUE(db_->Delete(Sel("a"), 1000, 2000).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{10 * kHour, 9}})).ok());
  ASSERT_TRUE(db_->Maintain().ok());
  DbStats s = db_->stats();
  EXPECT_EQ(1u, s.compactions);
  EXPECT_EQ(0u, s.blocks_with_tombstones);
  EXPECT_EQ(2u, s.block_samples);
  EXPECT_TRUE(BlockFiles(dir_ + "/blocks", "tombstones").empty());
  const std::map<int64_t, double> want = {{2500, 25}, {3000, 3}, {10 * kHour, 9}};
  EXPECT_EQ(want, ReadMap("a"));
  Reopen();
  EXPECT_EQ(want, ReadMap("a"));
}

TEST_F(DbTest, CompactionOfBlocksWithEverythingDeletedRemovesThem) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {3000, 3}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{2000, 2}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());  // overlapping blocks
  ASSERT_TRUE(db_->Delete(Sel("a"), INT64_MIN, INT64_MAX).ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{10 * kHour, 9}})).ok());
  ASSERT_TRUE(db_->Maintain().ok());
  EXPECT_EQ(0u, db_->stats().blocks);
  EXPECT_TRUE(Read("a").empty());
  EXPECT_EQ(1u, Read("b").size());
}

TEST_F(DbTest, CorruptTombstonesFileQuarantinesItsBlock) {
  ASSERT_TRUE(db_->CommitAndWait(Batch("a", {{1000, 1}, {2000, 2}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->CommitAndWait(Batch("b", {{1000, 2}})).ok());
  ASSERT_TRUE(db_->FlushHead().ok());
  ASSERT_TRUE(db_->Delete(Sel("a"), 1000, 1000).ok());
  db_.reset();
  std::string victim = dir_ + "/blocks/b-0000000000000001/tombstones";
  ASSERT_TRUE(std::filesystem::exists(victim));
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(9);
    f.put('\x7f');
  }
  Reopen();
  EXPECT_EQ(1u, db_->stats().blocks_quarantined);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/quarantine/b-0000000000000001/tombstones"));
  EXPECT_EQ(1u, Read("b").size());
}

// A WAL written partly by an older binary (type 1 batch records) and partly
// by this one replays as one log; a batch record whose CRC holds but whose
// zstd body is damaged is skipped, reported with its segment and offset.
TEST_F(DbTest, OldAndNewWalRecordsReplayTogetherAndBadOnesAreLocated) {
  db_.reset();
  std::filesystem::remove_all(dir_);
  uint64_t bad_offset = 0;
  {
    wal::WalOptions wo;
    wo.dir = dir_ + "/wal";
    auto w = wal::WalWriter::Open(wo);
    ASSERT_TRUE(w.ok()) << w.status();
    // Type 1, as older binaries wrote it: series 1 {__name__="cpu",host="a"},
    // samples (1, 1000, 1.5) and (1, 2000, 2.5).
    std::string v1 = "\x01\x01\x01\x02";
    encoding::PutLengthPrefixed(&v1, "__name__");
    encoding::PutLengthPrefixed(&v1, "cpu");
    encoding::PutLengthPrefixed(&v1, "host");
    encoding::PutLengthPrefixed(&v1, "a");
    v1 += "\x02";
    encoding::PutVarsint64(&v1, 1000);
    v1 += '\x01';
    encoding::PutVarsint64(&v1, 0);
    encoding::PutDouble(&v1, 1.5);
    v1 += '\x01';
    encoding::PutVarsint64(&v1, 1000);
    encoding::PutDouble(&v1, 2.5);
    ASSERT_TRUE((*w)->AddRecord(v1).ok());
    // This binary's format, compressed (many samples) and not.
    std::vector<record::RefSample> many;
    for (int64_t t = 3000; t < 3000 + 1000 * 1000; t += 1000) {
      many.push_back({1, t, static_cast<double>(t) / 100});
    }
    std::string big;
    record::EncodeBatch({}, many, &big);
    ASSERT_EQ(1, big[1] & 1) << "expected a compressed record";
    ASSERT_TRUE((*w)->AddRecord(big).ok());
    bad_offset = 9 + v1.size() + 9 + big.size();
    std::string damaged = big;
    damaged[damaged.size() / 2] = static_cast<char>(damaged[damaged.size() / 2] ^ 0x55);
    damaged[8] = static_cast<char>(damaged[8] ^ 0x55);
    ASSERT_TRUE((*w)->AddRecord(damaged).ok());  // a valid CRC over a bad body
    std::string small;
    record::EncodeBatch({}, {{1, 5'000'000, -0.25}}, &small);
    ASSERT_TRUE((*w)->AddRecord(small).ok());
    ASSERT_TRUE((*w)->Sync().ok());
  }
  std::ostringstream log;
  options_.logger = std::make_shared<spdlog::logger>(
      "db_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  Reopen();
  const std::map<int64_t, double> got = ReadMap("a");
  EXPECT_EQ(2u + 1000u + 1u, got.size());
  EXPECT_EQ(1.5, got.at(1000));
  EXPECT_EQ(2.5, got.at(2000));
  EXPECT_EQ(30.0, got.at(3000));
  EXPECT_EQ(10020.0, got.at(1002000));
  EXPECT_EQ(-0.25, got.at(5'000'000));
  options_.logger->flush();
  EXPECT_NE(std::string::npos,
            log.str().find(fmt::format("segment=00000001 offset={} ", bad_offset)))
      << log.str();
  EXPECT_NE(std::string::npos, log.str().find("bad_records=1")) << log.str();
}

}  // namespace
}  // namespace espy::storage
