// Db's Querier and Appender (api/): listings hide series a deletion emptied,
// ranges clip reads, the sample iterator pages through chunks and blocks in
// batches, and Lookup gives the ids reads report.
#include <filesystem>
#include <memory_resource>

#include "gtest/gtest.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

constexpr int64_t kAllMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kAllMax = std::numeric_limits<int64_t>::max();

model::Matcher Eq(std::string name, std::string value) {
  return *model::Matcher::Make(model::MatchType::kEqual, std::move(name), std::move(value));
}

class DbQuerierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/db_querier_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    DbOptions o;
    o.dir = dir_;
    o.fsync = wal::FsyncPolicy::kNever;
    o.maintenance_interval_ms = 0;
    o.block_range = 100'000;
    auto db = Db::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // job=<job> with one sample every 10 ms over [from, to).
  void Write(const std::string& job, int64_t from, int64_t to) {
    model::SampleBatch b;
    uint32_t i = b.AddSeries(model::Labels({{"__name__", "up"}, {"job", job}}));
    for (int64_t t = from; t < to; t += 10) b.Add(i, t, static_cast<double>(t));
    Appender& appender = *db_;
    ASSERT_TRUE(appender.CommitAndWait(std::move(b)).ok());
  }
  std::unique_ptr<Querier> Open(int64_t mint, int64_t maxt) {
    const Queryable& store = *db_;
    auto q = store.Querier(mint, maxt);
    EXPECT_TRUE(q.ok()) << q.status();
    return q.ok() ? *std::move(q) : nullptr;
  }
  static std::vector<std::string> Jobs(const std::vector<SeriesEntry>& series) {
    std::vector<std::string> out;
    for (const SeriesEntry& s : series) out.emplace_back(s.labels->Get("job"));
    return out;
  }

  std::string dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(DbQuerierTest, ListingsLeaveOutSeriesADeletionEmptied) {
  Write("b", 0, 100);
  Write("a", 0, 100);
  Write("c", 0, 100);
  ASSERT_TRUE(db_->Delete({Eq("job", "c")}, kAllMin, kAllMax).ok());
  const std::vector<std::vector<model::Matcher>> up = {{Eq("__name__", "up")}};
  auto q = Open(kAllMin, kAllMax);
  auto series = q->Series(up);
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), Jobs(*series));  // label order
  auto jobs = q->LabelValues("job", {});
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), *jobs);
  auto names = q->LabelNames(up);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ((std::vector<std::string>{"__name__", "job"}), *names);
  // Select goes by labels: the emptied series is there, with nothing to read.
  auto set = q->Select(up[0], {.mint = kAllMin, .maxt = kAllMax});
  ASSERT_TRUE(set.ok());
  std::vector<std::pair<std::string, size_t>> read;
  while ((*set)->Next()) {
    std::vector<model::Sample> s;
    ASSERT_TRUE((*set)->ReadSamples(SIZE_MAX, &s).ok());
    read.emplace_back((*set)->labels().Get("job"), s.size());
  }
  EXPECT_EQ((std::vector<std::pair<std::string, size_t>>{{"a", 10}, {"b", 10}, {"c", 0}}), read);
}

TEST_F(DbQuerierTest, RangesClipListingsAndReads) {
  Write("early", 0, 100);
  Write("late", 1000, 1100);
  auto q = Open(500, 1049);
  auto series = q->Series(std::vector<std::vector<model::Matcher>>{{Eq("__name__", "up")}});
  ASSERT_TRUE(series.ok());
  ASSERT_EQ((std::vector<std::string>{"late"}), Jobs(*series));
  // Hints wider than the Querier are clipped to it.
  auto set = q->Select({Eq("job", "late")}, {.mint = kAllMin, .maxt = kAllMax});
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE((*set)->Next());
  EXPECT_EQ((*series)[0].id, (*set)->id());
  std::vector<model::Sample> s;
  ASSERT_EQ(5u, *(*set)->ReadSamples(SIZE_MAX, &s));
  EXPECT_EQ(1000, s.front().ts);
  EXPECT_EQ(1040, s.back().ts);
  auto values = q->LabelValues("job", {});
  ASSERT_TRUE(values.ok());
  EXPECT_EQ((std::vector<std::string>{"late"}), *values);
}

TEST_F(DbQuerierTest, SampleIteratorReadsBlocksAndHeadInBatches) {
  Write("a", 0, 5000);  // 500 samples, several chunks
  ASSERT_TRUE(db_->FlushHead().ok());
  Write("a", 5000, 6000);  // and 100 in the head
  ASSERT_GT(db_->stats().blocks, 0u);
  const SeriesId id = db_->Lookup(model::Labels({{"__name__", "up"}, {"job", "a"}}));
  ASSERT_NE(0u, id);
  EXPECT_EQ(0u, db_->Lookup(model::Labels({{"__name__", "up"}, {"job", "none"}})));
  auto q = Open(kAllMin, kAllMax);
  ASSERT_NE(nullptr, q->Labels(id));
  EXPECT_EQ("a", q->Labels(id)->Get("job"));
  EXPECT_EQ(nullptr, q->Labels(id + 1000));
  std::pmr::monotonic_buffer_resource arena;
  for (size_t want : {1, 7, 256, 1000}) {
    auto it = q->Samples(id, 15, 5995, &arena);
    int64_t next = 20;
    size_t batches = 0;
    while (true) {
      auto batch = it->Next(want);
      ASSERT_TRUE(batch.ok());
      if (batch->empty()) break;
      ASSERT_LE(batch->size(), want);
      ++batches;
      for (const model::Sample& s : *batch) {
        ASSERT_EQ(next, s.ts);
        next += 10;
      }
    }
    EXPECT_EQ(5995 + 5, next) << want;  // 20 .. 5990, all of them
    EXPECT_EQ((598 + want - 1) / want, batches) << want;
  }
  auto none = q->Samples(id + 1000, kAllMin, kAllMax, &arena);
  EXPECT_TRUE(none->Next(10)->empty());
}

TEST_F(DbQuerierTest, ResolutionWithoutTiersIsRawAndAskingForOneIsAnError) {
  Write("a", 0, 100);
  auto q = Open(kAllMin, kAllMax);
  EXPECT_EQ(0, q->Resolution({.mint = 0, .maxt = 100, .step_ms = 3'600'000}));
  auto set = q->Select({Eq("job", "a")}, {.mint = 0, .maxt = 100, .resolution = 60'000});
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, set.status().code());
}

}  // namespace
}  // namespace espy::storage
