#include "query/sample_pager.h"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "gtest/gtest.h"
#include "storage/db.h"

namespace espy::query {
namespace {

// Over the embedded store through its Querier, as the server reads.
class SamplePagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/sample_pager_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    storage::DbOptions o;
    o.dir = dir_;
    o.fsync = storage::wal::FsyncPolicy::kNever;
    o.maintenance_interval_ms = 0;
    auto db = storage::Db::Open(o);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  model::SeriesRef Series(const std::string& name, const std::string& host) {
    model::SampleBatch b;
    model::Labels labels({{"__name__", name}, {"host", host}});
    b.AddSeries(labels);
    EXPECT_TRUE(db_->CommitAndWait(std::move(b)).ok());
    return db_->Lookup(labels);
  }
  // Appends are committed in one batch before the next read.
  void Append(model::SeriesRef ref, int64_t ts, double v) {
    if (pending_.series.size() == 0 || pending_.refs.back() != ref) pending_.AddSeriesRef(ref);
    pending_.Add(static_cast<uint32_t>(pending_.series.size() - 1), ts, v);
  }
  void Flush() {
    if (pending_.samples.empty()) return;
    ASSERT_TRUE(db_->CommitAndWait(std::exchange(pending_, {})).ok());
  }
  Page Read(const PageRequest& request) {
    Flush();
    querier_ = *db_->Querier(INT64_MIN, INT64_MAX);
    absl::StatusOr<Page> p = ReadPage(*querier_, request);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : Page{};
  }
  // Reads every page of `request`, returning (ts, ref) pairs in order.
  std::vector<std::pair<int64_t, model::SeriesRef>> ReadAll(PageRequest request,
                                                            int* pages = nullptr) {
    std::vector<std::pair<int64_t, model::SeriesRef>> out;
    int n = 0;
    while (true) {
      Page p = Read(request);
      ++n;
      for (const PagePoint& pt : p.points) out.push_back({pt.sample.ts, pt.ref});
      if (!p.next) break;
      request.after = *DecodeCursor(EncodeCursor(*p.next));
    }
    if (pages) *pages = n;
    return out;
  }
  std::string dir_;
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<storage::Querier> querier_;
  model::SampleBatch pending_;
};

TEST_F(SamplePagerTest, OrdersByTimestampThenSeries) {
  auto a = Series("cpu", "a"), b = Series("cpu", "b");
  Append(b, 1000, 1);
  Append(a, 2000, 2);
  Append(a, 1000, 3);
  auto got = ReadAll({});
  std::vector<std::pair<int64_t, model::SeriesRef>> want = {{1000, a}, {1000, b}, {2000, a}};
  EXPECT_EQ(want, got);
}

TEST_F(SamplePagerTest, PagesCoverEverythingOnceForEveryLimit) {
  std::vector<model::SeriesRef> refs;
  for (int s = 0; s < 7; ++s) refs.push_back(Series("cpu", "h" + std::to_string(s)));
  for (int t = 0; t < 50; ++t) {
    for (int s = 0; s < 7; ++s) {
      if ((t + s) % 3 != 0) Append(refs[s], t * 10, t);
    }
  }
  PageRequest all;
  all.limit = 100000;
  auto want = ReadAll(all);
  ASSERT_EQ(db_->stats().samples_in_head, want.size());
  for (size_t limit : {1, 2, 3, 7, 10, 64, 233}) {
    PageRequest r;
    r.limit = limit;
    int pages = 0;
    EXPECT_EQ(want, ReadAll(r, &pages)) << "limit " << limit;
    EXPECT_EQ((want.size() + limit - 1) / limit, static_cast<size_t>(pages)) << "limit " << limit;
  }
}

TEST_F(SamplePagerTest, RangeIsInclusiveAndFiltersApply) {
  auto a = Series("cpu", "a"), b = Series("mem", "a");
  for (int t = 0; t < 10; ++t) {
    Append(a, t, t);
    Append(b, t, t);
  }
  PageRequest r;
  r.mint = 3;
  r.maxt = 3;
  r.matchers.push_back(*model::Matcher::Make(model::MatchType::kEqual, "__name__", "cpu"));
  auto got = ReadAll(r);
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ(3, got[0].first);
  EXPECT_EQ(a, got[0].second);
}

TEST_F(SamplePagerTest, NewOlderDataDoesNotShiftLaterPages) {
  auto a = Series("cpu", "a");
  for (int t = 1; t <= 10; ++t) Append(a, t * 100, t);
  PageRequest r;
  r.limit = 4;
  Page first = Read(r);
  ASSERT_TRUE(first.next);
  Append(a, 50, 0);  // before the cursor: not repeated, not skipping
  r.after = first.next;
  Page second = Read(r);
  ASSERT_EQ(4u, second.points.size());
  EXPECT_EQ(500, second.points[0].sample.ts);
}

TEST_F(SamplePagerTest, PagesThroughManyChunksMatchReadWithOverwritesAndDeletes) {
  // Series of several chunks each, so a page resumes snapshots mid-series.
  std::vector<model::SeriesRef> refs;
  for (int s = 0; s < 5; ++s) refs.push_back(Series("cpu", "h" + std::to_string(s)));
  for (int t = 0; t < 700; ++t) {
    for (int s = 0; s < 5; ++s) {
      if ((t * 7 + s) % 5 != 0) Append(refs[s], t * 10 + s, t);
    }
  }
  Flush();
  Append(refs[1], 15, -1);    // out of order
  Append(refs[1], 2001, -2);  // overwrite of a chunk sample
  Flush();
  ASSERT_TRUE(  // a deleted range
      db_->Delete({*model::Matcher::Make(model::MatchType::kEqual, "host", "h2")}, 1000, 3000)
          .ok());
  std::vector<std::tuple<int64_t, model::SeriesRef, double>> want;
  auto querier = *db_->Querier(100, 6000);
  auto set = *querier->Select({*model::Matcher::Make(model::MatchType::kEqual, "__name__", "cpu")},
                              {.mint = 100, .maxt = 6000});
  while (set->Next()) {
    std::vector<model::Sample> got;
    ASSERT_TRUE(set->ReadSamples(SIZE_MAX, &got).ok());
    for (const model::Sample& x : got) want.emplace_back(x.ts, set->id(), x.value);
  }
  // The reference read hides the deletion and keeps the overwrite.
  ASSERT_GT(want.size(), 2000u);
  for (const auto& [ts, ref, v] : want) {
    ASSERT_FALSE(ref == refs[2] && ts >= 1000 && ts <= 3000) << ts;
    if (ref == refs[1] && ts == 2001) {
      EXPECT_EQ(-2, v);
    }
  }
  std::sort(want.begin(), want.end());
  for (size_t limit : {1, 9, 300, 5000}) {
    PageRequest r;
    r.mint = 100;
    r.maxt = 6000;
    r.limit = limit;
    std::vector<std::tuple<int64_t, model::SeriesRef, double>> got;
    while (true) {
      Page p = Read(r);
      for (const PagePoint& pt : p.points) got.emplace_back(pt.sample.ts, pt.ref, pt.sample.value);
      if (!p.next) break;
      r.after = p.next;
    }
    EXPECT_EQ(want, got) << "limit " << limit;
  }
}

TEST_F(SamplePagerTest, CursorRoundTripsAndRejectsJunk) {
  for (Cursor c :
       {Cursor{0, 1}, Cursor{-1234567, 42}, Cursor{INT64_MAX, 7}, Cursor{INT64_MIN + 1, 9}}) {
    auto back = DecodeCursor(EncodeCursor(c));
    ASSERT_TRUE(back.ok()) << EncodeCursor(c);
    EXPECT_EQ(c, *back);
  }
  for (const char* junk : {"", "_", "12", "zz_1", "1_0", "1_", "_1", "1_1_1"}) {
    EXPECT_FALSE(DecodeCursor(junk).ok()) << junk;
  }
}

}  // namespace
}  // namespace espy::query
