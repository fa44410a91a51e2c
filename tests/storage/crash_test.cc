// Crash tests: a child process writes acknowledged samples, then is killed
// with SIGKILL at a named point of block writing, WAL truncation, block
// deletion, compaction, writing tombstones or rewriting blocks without
// deleted data, or downsampling (storage/crash_point.h). The parent reopens the data
// dir and checks that every acknowledged sample is there exactly once with
// its last written value, and that no half-written block is read.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>

#include "gtest/gtest.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;

model::SampleBatch Batch(int host, int64_t ts, double v) {
  model::SampleBatch b;
  uint32_t s =
      b.AddSeries(model::Labels({{"__name__", "cpu"}, {"host", "h" + std::to_string(host)}}));
  b.Add(s, ts, v);
  return b;
}

// What the child writes: 4 series, one sample a minute for 6 hours, plus
// overwrites of old timestamps; the expected final map per series.
std::map<int, std::map<int64_t, double>> Workload(
    const std::function<void(model::SampleBatch)>& put) {
  std::map<int, std::map<int64_t, double>> want;
  for (int64_t m = 0; m < 360; ++m) {
    for (int h = 0; h < 4; ++h) {
      double v = static_cast<double>(m * 10 + h);
      put(Batch(h, m * kMinute, v));
      want[h][m * kMinute] = v;
    }
    if (m % 50 == 49) {  // a late overwrite of a sample from long ago
      put(Batch(1, (m - 40) * kMinute, -static_cast<double>(m)));
      want[1][(m - 40) * kMinute] = -static_cast<double>(m);
    }
  }
  return want;
}

std::vector<model::Matcher> Host(int host) {
  return {*model::Matcher::Make(model::MatchType::kEqual, "host", "h" + std::to_string(host))};
}

// The deletion the tombstone points run: host 2 from 1h to 5h, which spans
// two blocks and the head once the first cut is done.
constexpr int kDeletedHost = 2;
constexpr int64_t kDeleteFrom = 60 * kMinute, kDeleteTo = 5 * kHour;

class CrashTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/crash_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  DbOptions Options(int64_t now) {
    DbOptions o;
    o.dir = dir_;
    o.maintenance_interval_ms = 0;
    clock_.Set(now);
    o.clock = &clock_;
    o.retention_ms = 24 * kHour;
    // Acknowledged means handed to the OS: enough for SIGKILL, and fast.
    o.fsync = wal::FsyncPolicy::kNever;
    return o;
  }

  // Forks a child that opens `options`, writes the workload (each batch
  // acknowledged), then runs `then`, which must end at an armed crash
  // point's SIGKILL; checks that it did. Exit codes: 2 open, 3 write, 4/6
  // `then`'s own steps, 5 the crash point was not reached.
  void WriteInAChildUntilKilled(const DbOptions& options, const std::function<void(Db&)>& then) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto db = Db::Open(options);
      if (!db.ok()) ::_exit(2);
      Workload([&](model::SampleBatch b) {
        if (!(*db)->CommitAndWait(std::move(b)).ok()) ::_exit(3);
      });
      then(**db);
      ::_exit(5);
    }
    int status = 0;
    ASSERT_EQ(pid, ::waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exit code " << WEXITSTATUS(status);
    ASSERT_EQ(SIGKILL, WTERMSIG(status));
  }

  std::string dir_;
  base::FakeClock clock_;
};

TEST_P(CrashTest, NoAcknowledgedSampleLostOrDuplicated) {
  const std::string point = GetParam();
  WriteInAChildUntilKilled(Options(6 * kHour), [&](Db& db) {
    // Retention needs an expired block: first persist, then move time on.
    if (point == "block_delete_after_rename") {
      if (!db.Maintain().ok()) ::_exit(4);
      clock_.Set(40 * kHour);
    }
    if (point == "wal_truncate_before_remove") {
      if (!db.Maintain().ok()) ::_exit(4);  // first cut: nothing to truncate yet
      db.CommitAndWait(Batch(0, 7 * kHour, 1)).IgnoreError();
    }
    if (point == "compact_after_rename") {
      // Two overlapping blocks for [0, 2h): the second holds a late overwrite.
      if (!db.Maintain().ok()) ::_exit(4);
      if (!db.CommitAndWait(Batch(1, 10 * kMinute, -1000)).ok()) ::_exit(3);
      if (!db.FlushHead().ok()) ::_exit(4);
    }
    if (point == "clean_tombstones_after_rename" || point == "tombstones_write_before_rename") {
      if (!db.Maintain().ok()) ::_exit(4);
    }
    if (point == "clean_tombstones_after_rename") {
      if (!db.Delete(Host(kDeletedHost), kDeleteFrom, kDeleteTo).ok()) ::_exit(6);
    }
    ::setenv("ESPY_CRASH_AT", point.c_str(), 1);
    if (point == "clean_tombstones_after_rename") (void)db.CleanTombstones();
    if (point == "tombstones_write_before_rename") {
      // Killed before the delete is acknowledged: nothing of it may show.
      (void)db.Delete(Host(kDeletedHost), kDeleteFrom, kDeleteTo);
    }
    (void)db.Maintain();
    (void)db.FlushHead();
  });
  if (HasFatalFailure()) return;

  std::map<int, std::map<int64_t, double>> want = Workload([](model::SampleBatch) {});
  if (point == "wal_truncate_before_remove") want[0][7 * kHour] = 1;
  if (point == "compact_after_rename") want[1][10 * kMinute] = -1000;
  if (point == "clean_tombstones_after_rename") {
    // Acknowledged before the crash: gone, and everything else still there.
    auto& m = want[kDeletedHost];
    m.erase(m.lower_bound(kDeleteFrom), m.upper_bound(kDeleteTo));
  }
  const bool expired = point == "block_delete_after_rename";
  for (int round = 0; round < 2; ++round) {
    auto db = Db::Open(Options(expired ? 40 * kHour : 6 * kHour));
    ASSERT_TRUE(db.ok()) << db.status();
    for (const auto& [host, samples] : want) {
      model::Labels labels({{"__name__", "cpu"}, {"host", "h" + std::to_string(host)}});
      model::SeriesRef ref = (*db)->head().Lookup(labels);
      std::vector<model::Sample> got;
      if (ref != 0) (*db)->head().Read(ref, INT64_MIN, INT64_MAX, SIZE_MAX, &got);
      std::map<int64_t, double> got_map;
      for (const model::Sample& s : got) {
        EXPECT_FALSE(got_map.contains(s.ts)) << "duplicate " << s.ts;
        got_map[s.ts] = s.value;
      }
      if (expired) {
        // Whatever retention left must be exact; nothing older than the
        // cutoff may come back from a half-deleted block.
        for (const auto& [ts, v] : got_map) {
          ASSERT_TRUE(samples.contains(ts));
          EXPECT_EQ(samples.at(ts), v) << "ts " << ts;
        }
      } else {
        EXPECT_EQ(samples, got_map) << "host " << host << " round " << round;
      }
    }
    EXPECT_EQ(0u, (*db)->stats().blocks_quarantined);
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/blocks")) {
      EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
      EXPECT_FALSE(e.path().string().ends_with(".del")) << e.path();
      EXPECT_FALSE(std::filesystem::exists(e.path() / "tombstones.tmp")) << e.path();
    }
    // Round two: persist everything after recovery, reopen from blocks.
    ASSERT_TRUE((*db)->FlushHead().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Points, CrashTest,
                         ::testing::Values("block_write_before_rename", "block_write_after_rename",
                                           "wal_truncate_before_remove",
                                           "block_delete_after_rename", "compact_after_rename",
                                           "clean_tombstones_after_rename",
                                           "tombstones_write_before_rename"));

// Downsampling killed half-way: the tier blocks of some tiers written, or
// all of them with the raw block not yet deleted. Every tier must read as
// the raw samples' buckets, each sample counted once, before and after the
// next maintenance finishes the job.
class DownsampleCrashTest : public CrashTest {
 protected:
  DbOptions TierOptions(int64_t now) {
    DbOptions o = Options(now);
    o.tiers = {{5 * kMinute, 2 * kHour}, {kHour, 9 * kHour}};
    return o;
  }
};

TEST_P(DownsampleCrashTest, EverySampleCountedOnce) {
  const std::string point = GetParam();
  constexpr int64_t kNow = 12 * kHour;
  // Written, persisted and compacted while nothing is old enough to
  // downsample; then time moves on and downsampling is killed.
  WriteInAChildUntilKilled(TierOptions(0), [&](Db& db) {
    if (!db.FlushHead().ok() || !db.Maintain().ok()) ::_exit(4);
    clock_.Set(kNow);
    ::setenv("ESPY_CRASH_AT", point.c_str(), 1);
    (void)db.Maintain();
  });
  if (HasFatalFailure()) return;

  std::map<int, std::map<int64_t, double>> want = Workload([](model::SampleBatch) {});
  for (int round = 0; round < 2; ++round) {
    auto db = Db::Open(TierOptions(kNow));
    ASSERT_TRUE(db.ok()) << db.status();
    if (round == 1) {
      ASSERT_TRUE((*db)->Maintain().ok());
    }
    for (const auto& [host, samples] : want) {
      std::vector<model::Sample> raw;
      for (const auto& [ts, v] : samples) raw.push_back({ts, v});
      model::SeriesRef ref = (*db)->head().Lookup(
          model::Labels({{"__name__", "cpu"}, {"host", "h" + std::to_string(host)}}));
      ASSERT_NE(0u, ref);
      // The 5-minute tier still keeps data from 3 h on; the hourly one all.
      for (auto [level, mint] : {std::pair{1, 3 * kHour}, std::pair{2, INT64_MIN}}) {
        const int64_t res = level == 1 ? 5 * kMinute : kHour;
        std::vector<tier::Bucket> want_b, got;
        tier::Downsample(raw, res, &want_b);
        std::erase_if(want_b, [&](const tier::Bucket& b) { return b.ts < mint; });
        ASSERT_TRUE((*db)->ReadBuckets(ref, level, mint, INT64_MAX, &got).ok());
        ASSERT_EQ(want_b.size(), got.size()) << "host " << host << " level " << level;
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(want_b[i].ts, got[i].ts);
          EXPECT_EQ(want_b[i].count, got[i].count) << "host " << host << " round " << round;
          EXPECT_EQ(want_b[i].sum, got[i].sum);
          EXPECT_EQ(want_b[i].last, got[i].last);
        }
      }
    }
    EXPECT_EQ(0u, (*db)->stats().blocks_quarantined);
    if (round == 1) {
      EXPECT_EQ(0u, (*db)->stats().blocks);  // every raw block downsampled
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Points, DownsampleCrashTest,
                         ::testing::Values("downsample_after_first_tier",
                                           "downsample_before_raw_delete"));

}  // namespace
}  // namespace espy::storage
