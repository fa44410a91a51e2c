#include "storage/head/head.h"

#include <thread>

#include "gtest/gtest.h"

namespace espy::storage::head {
namespace {

model::Labels L(std::string name, std::string host) {
  return model::Labels({{"__name__", std::move(name)}, {"host", std::move(host)}});
}

std::vector<model::Sample> ReadAll(const Head& h, model::SeriesRef ref) {
  std::vector<model::Sample> out;
  h.Read(ref, INT64_MIN, INT64_MAX, SIZE_MAX, &out);
  return out;
}

TEST(HeadTest, CreateAndLookup) {
  Head h;
  EXPECT_EQ(0u, h.Lookup(L("cpu", "a")));
  model::SeriesRef a = h.Create(L("cpu", "a"));
  model::SeriesRef b = h.Create(L("cpu", "b"));
  EXPECT_EQ(1u, a);
  EXPECT_EQ(2u, b);
  EXPECT_EQ(a, h.Lookup(L("cpu", "a")));
  EXPECT_EQ(L("cpu", "b"), h.SeriesLabels(b));
  EXPECT_EQ(2u, h.num_series());
}

TEST(HeadTest, OutOfOrderSamplesLandSorted) {
  Head h;
  model::SeriesRef r = h.Create(L("cpu", "a"));
  h.Append(r, 3000, 3);
  h.Append(r, 1000, 1);
  h.Append(r, 2000, 2);
  h.Append(r, -5, -1);
  auto got = ReadAll(h, r);
  ASSERT_EQ(4u, got.size());
  EXPECT_EQ(-5, got[0].ts);
  EXPECT_EQ(1000, got[1].ts);
  EXPECT_EQ(3000, got[3].ts);
  EXPECT_EQ(4u, h.num_samples());
}

TEST(HeadTest, SameTimestampLaterWriteWins) {
  Head h;
  model::SeriesRef r = h.Create(L("cpu", "a"));
  h.Append(r, 1000, 1);
  h.Append(r, 2000, 2);
  h.Append(r, 1000, 10);  // older position
  h.Append(r, 2000, 20);  // newest position
  auto got = ReadAll(h, r);
  ASSERT_EQ(2u, got.size());
  EXPECT_EQ(10, got[0].value);
  EXPECT_EQ(20, got[1].value);
  EXPECT_EQ(2u, h.num_samples());
}

TEST(HeadTest, ReadHonoursRangeAndMax) {
  Head h;
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 10; ++i) h.Append(r, i * 10, i);
  std::vector<model::Sample> out;
  EXPECT_EQ(3u, h.Read(r, 20, 60, 3, &out));
  EXPECT_EQ(20, out.front().ts);
  EXPECT_EQ(40, out.back().ts);
  out.clear();
  EXPECT_EQ(5u, h.Read(r, 20, 60, 100, &out));  // inclusive of both ends
}

TEST(HeadTest, RecoverKeepsRefsAndRejectsConflicts) {
  Head h;
  ASSERT_TRUE(h.Recover(5, L("cpu", "a")).ok());
  ASSERT_TRUE(h.Recover(5, L("cpu", "a")).ok());
  EXPECT_EQ(absl::StatusCode::kDataLoss, h.Recover(5, L("cpu", "b")).code());
  EXPECT_EQ(absl::StatusCode::kDataLoss, h.Recover(7, L("cpu", "a")).code());
  EXPECT_EQ(5u, h.Lookup(L("cpu", "a")));
  EXPECT_FALSE(h.Exists(3));
  EXPECT_EQ(6u, h.Create(L("cpu", "c")));  // new refs continue after recovered ones
}

TEST(HeadTest, SelectByMatchers) {
  Head h;
  h.Create(L("cpu", "a"));
  h.Create(L("cpu", "b"));
  h.Create(L("mem", "a"));
  auto m = *model::Matcher::Make(model::MatchType::kEqual, "host", "a");
  EXPECT_EQ(index::Postings({1, 3}), h.Select({m}));
  EXPECT_EQ(std::vector<std::string>({"a", "b"}), h.LabelValues("host"));
}

TEST(HeadTest, ConcurrentReadersSeeConsistentSeries) {
  Head h;
  model::SeriesRef r = h.Create(L("cpu", "a"));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) {
      auto got = ReadAll(h, r);
      for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].ts, got[i].ts);
    }
  });
  for (int i = 0; i < 20000; ++i) h.Append(r, (i * 7919) % 20000, i);
  done = true;
  reader.join();
  EXPECT_EQ(20000u, ReadAll(h, r).size());
}

}  // namespace
}  // namespace espy::storage::head
