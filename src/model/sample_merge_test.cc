#include "model/sample_merge.h"

#include "gtest/gtest.h"

namespace espy::model {
namespace {

std::vector<int64_t> Ts(const std::vector<Sample>& s) {
  std::vector<int64_t> out;
  for (const Sample& x : s) out.push_back(x.ts);
  return out;
}

TEST(SampleMergeTest, NewerWinsOnEqualTimestamps) {
  std::vector<Sample> m = MergeNewerWins({{1, 1}, {3, 3}}, {{2, 20}, {3, 30}});
  EXPECT_EQ((std::vector<int64_t>{1, 2, 3}), Ts(m));
  EXPECT_EQ(30, m[2].value);
}

TEST(SampleMergeTest, IntoAppendsALaterRunAndMergesAnOverlappingOne) {
  std::vector<Sample> acc;
  MergeNewerWinsInto(&acc, {{1, 1}, {2, 2}});
  MergeNewerWinsInto(&acc, {{3, 3}, {4, 4}});  // after: appended
  EXPECT_EQ((std::vector<int64_t>{1, 2, 3, 4}), Ts(acc));
  MergeNewerWinsInto(&acc, {{0, 0}, {4, 40}});  // overlapping: merged, newer wins
  EXPECT_EQ((std::vector<int64_t>{0, 1, 2, 3, 4}), Ts(acc));
  EXPECT_EQ(40, acc.back().value);
  MergeNewerWinsInto(&acc, {});
  EXPECT_EQ(5u, acc.size());
}

}  // namespace
}  // namespace espy::model
