#include "storage/db.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"

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
    DbOptions options;
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

  std::string dir_;
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

}  // namespace
}  // namespace espy::storage
