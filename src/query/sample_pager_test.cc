#include "query/sample_pager.h"

#include <algorithm>
#include <tuple>

#include "gtest/gtest.h"

namespace espy::query {
namespace {

class SamplePagerTest : public ::testing::Test {
 protected:
  model::SeriesRef Series(const std::string& name, const std::string& host) {
    return head_.Create(model::Labels({{"__name__", name}, {"host", host}}));
  }
  // Reads every page of `request`, returning (ts, ref) pairs in order.
  std::vector<std::pair<int64_t, model::SeriesRef>> ReadAll(PageRequest request,
                                                            int* pages = nullptr) {
    std::vector<std::pair<int64_t, model::SeriesRef>> out;
    int n = 0;
    while (true) {
      Page p = ReadPage(head_, request);
      ++n;
      for (const PagePoint& pt : p.points) out.push_back({pt.sample.ts, pt.ref});
      if (!p.next) break;
      request.after = *DecodeCursor(EncodeCursor(*p.next));
    }
    if (pages) *pages = n;
    return out;
  }
  storage::head::Head head_;
};

TEST_F(SamplePagerTest, OrdersByTimestampThenSeries) {
  auto a = Series("cpu", "a"), b = Series("cpu", "b");
  head_.Append(b, 1000, 1);
  head_.Append(a, 2000, 2);
  head_.Append(a, 1000, 3);
  auto got = ReadAll({});
  std::vector<std::pair<int64_t, model::SeriesRef>> want = {{1000, a}, {1000, b}, {2000, a}};
  EXPECT_EQ(want, got);
}

TEST_F(SamplePagerTest, PagesCoverEverythingOnceForEveryLimit) {
  std::vector<model::SeriesRef> refs;
  for (int s = 0; s < 7; ++s) refs.push_back(Series("cpu", "h" + std::to_string(s)));
  for (int t = 0; t < 50; ++t) {
    for (int s = 0; s < 7; ++s) {
      if ((t + s) % 3 != 0) head_.Append(refs[s], t * 10, t);
    }
  }
  PageRequest all;
  all.limit = 100000;
  auto want = ReadAll(all);
  ASSERT_EQ(head_.num_samples(), want.size());
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
    head_.Append(a, t, t);
    head_.Append(b, t, t);
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
  for (int t = 1; t <= 10; ++t) head_.Append(a, t * 100, t);
  PageRequest r;
  r.limit = 4;
  Page first = ReadPage(head_, r);
  ASSERT_TRUE(first.next);
  head_.Append(a, 50, 0);  // before the cursor: not repeated, not skipping
  r.after = first.next;
  Page second = ReadPage(head_, r);
  ASSERT_EQ(4u, second.points.size());
  EXPECT_EQ(500, second.points[0].sample.ts);
}

TEST_F(SamplePagerTest, PagesThroughManyChunksMatchReadWithOverwritesAndDeletes) {
  // Series of several chunks each, so a page resumes snapshots mid-series.
  std::vector<model::SeriesRef> refs;
  for (int s = 0; s < 5; ++s) refs.push_back(Series("cpu", "h" + std::to_string(s)));
  for (int t = 0; t < 700; ++t) {
    for (int s = 0; s < 5; ++s) {
      if ((t * 7 + s) % 5 != 0) head_.Append(refs[s], t * 10 + s, t);
    }
  }
  head_.Append(refs[1], 15, -1);      // out of order
  head_.Append(refs[1], 2001, -2);    // overwrite of a chunk sample
  head_.Delete(refs[2], 1000, 3000);  // a deleted range
  std::vector<std::tuple<int64_t, model::SeriesRef, double>> want;
  for (model::SeriesRef ref : refs) {
    std::vector<model::Sample> got;
    head_.Read(ref, 100, 6000, SIZE_MAX, &got);
    for (const model::Sample& x : got) want.emplace_back(x.ts, ref, x.value);
  }
  std::sort(want.begin(), want.end());
  for (size_t limit : {1, 9, 300, 5000}) {
    PageRequest r;
    r.mint = 100;
    r.maxt = 6000;
    r.limit = limit;
    std::vector<std::tuple<int64_t, model::SeriesRef, double>> got;
    while (true) {
      Page p = ReadPage(head_, r);
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
