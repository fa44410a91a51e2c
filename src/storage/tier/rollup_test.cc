#include "storage/tier/rollup.h"

#include <cmath>

#include "gtest/gtest.h"

namespace espy::storage::tier {
namespace {

TEST(RollupTest, NamesRoundTrip) {
  for (int i = 0; i < kNumRollups; ++i) {
    Rollup r;
    ASSERT_TRUE(ParseRollup(RollupName(static_cast<Rollup>(i)), &r));
    EXPECT_EQ(static_cast<Rollup>(i), r);
  }
  Rollup r;
  EXPECT_FALSE(ParseRollup("avg", &r));
}

TEST(RollupTest, BucketStartAlignsNegativeTimes) {
  EXPECT_EQ(0, BucketStart(0, 300));
  EXPECT_EQ(0, BucketStart(299, 300));
  EXPECT_EQ(300, BucketStart(300, 300));
  EXPECT_EQ(-300, BucketStart(-1, 300));
}

TEST(RollupTest, DownsampleKeepsMinMaxSumCountLast) {
  std::vector<model::Sample> s = {{0, 5}, {100, 1}, {200, 9}, {300, 2}, {450, 4}, {700, 3}};
  std::vector<Bucket> b;
  Downsample(s, 300, &b);
  ASSERT_EQ(3u, b.size());
  EXPECT_EQ(200, b[0].ts);
  EXPECT_EQ(1, b[0].min);
  EXPECT_EQ(9, b[0].max);
  EXPECT_EQ(15, b[0].sum);
  EXPECT_EQ(3, b[0].count);
  EXPECT_EQ(9, b[0].last);
  EXPECT_EQ(450, b[1].ts);
  EXPECT_EQ(6, b[1].sum);
  EXPECT_EQ(2, b[1].count);
  EXPECT_EQ(4, b[1].last);
  EXPECT_EQ(700, b[2].ts);
  EXPECT_EQ(1, b[2].count);
}

TEST(RollupTest, StalenessMarkersAreLastButNotCounted) {
  std::vector<model::Sample> s = {{0, 5}, {100, model::StaleNaN()}, {400, model::StaleNaN()}};
  std::vector<Bucket> b;
  Downsample(s, 300, &b);
  ASSERT_EQ(2u, b.size());
  EXPECT_EQ(1, b[0].count);
  EXPECT_EQ(5, b[0].sum);
  EXPECT_TRUE(model::IsStaleNaN(b[0].last));
  EXPECT_EQ(0, b[1].count);
  EXPECT_TRUE(std::isnan(b[1].min));
  EXPECT_TRUE(model::IsStaleNaN(b[1].last));
  // Read as rollups, such a bucket is stale throughout: no *_over_time
  // output, as over the raw samples.
  for (int r = 0; r < kNumRollups; ++r) EXPECT_TRUE(model::IsStaleNaN(b[1].Get(Rollup(r))));
}

TEST(RollupTest, NaNValuesPoisonMinAndMaxAsInPromQL) {
  std::vector<model::Sample> s = {{0, 5}, {100, std::nan("")}, {200, 1}};
  std::vector<Bucket> b;
  Downsample(s, 300, &b);
  ASSERT_EQ(1u, b.size());
  EXPECT_TRUE(std::isnan(b[0].min));
  EXPECT_TRUE(std::isnan(b[0].max));
  EXPECT_EQ(3, b[0].count);
}

TEST(RollupTest, MergeCombinesBucketsOfOneInterval) {
  std::vector<Bucket> older, newer;
  Downsample(std::vector<model::Sample>{{0, 5}, {100, 7}, {400, 1}}, 300, &older);
  Downsample(std::vector<model::Sample>{{50, 2}, {700, 8}}, 300, &newer);
  std::vector<Bucket> m = MergeBuckets(older, newer, 300);
  ASSERT_EQ(3u, m.size());
  EXPECT_EQ(100, m[0].ts);  // the later sample of the two is the last
  EXPECT_EQ(2, m[0].min);
  EXPECT_EQ(7, m[0].max);
  EXPECT_EQ(14, m[0].sum);
  EXPECT_EQ(3, m[0].count);
  EXPECT_EQ(7, m[0].last);
  EXPECT_EQ(400, m[1].ts);
  EXPECT_EQ(700, m[2].ts);
}

TEST(RollupTest, MergeOnEqualTimestampsTakesTheNewerLast) {
  std::vector<Bucket> older, newer;
  Downsample(std::vector<model::Sample>{{100, 7}}, 300, &older);
  Downsample(std::vector<model::Sample>{{100, 9}}, 300, &newer);
  std::vector<Bucket> m = MergeBuckets(older, newer, 300);
  ASSERT_EQ(1u, m.size());
  EXPECT_EQ(9, m[0].last);
}

TEST(RollupTest, MergeWithAnEmptyBucketKeepsTheOtherSide) {
  std::vector<Bucket> older, newer;
  Downsample(std::vector<model::Sample>{{100, model::StaleNaN()}}, 300, &older);
  Downsample(std::vector<model::Sample>{{50, 4}}, 300, &newer);
  std::vector<Bucket> m = MergeBuckets(older, newer, 300);
  ASSERT_EQ(1u, m.size());
  EXPECT_EQ(4, m[0].min);
  EXPECT_EQ(4, m[0].max);
  EXPECT_EQ(4, m[0].sum);
  EXPECT_EQ(1, m[0].count);
  EXPECT_TRUE(model::IsStaleNaN(m[0].last));
}

}  // namespace
}  // namespace espy::storage::tier
