#include "storage/compact.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/chunk/chunk.h"

namespace espy::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kHour = 3600 * 1000;

block::BlockMeta Meta(uint64_t seq, int64_t mint, int64_t maxt) {
  block::BlockMeta m;
  m.seq = seq;
  m.mint = mint;
  m.maxt = maxt;
  return m;
}

model::Labels L(std::string host) {
  return model::Labels({{"__name__", "cpu"}, {"host", std::move(host)}});
}

TEST(PlanCompactionsTest, MergesOverlappingBlocksEvenInAnOpenWindow) {
  std::vector<block::BlockMeta> metas = {Meta(1, 0, 2 * kHour - 1), Meta(2, kHour, kHour + 5)};
  EXPECT_THAT(PlanCompactions(metas, 24 * kHour, 0), ElementsAre(ElementsAre(0, 1)));
}

TEST(PlanCompactionsTest, MergesAdjacentBlocksOnlyOnceTheirWindowIsComplete) {
  std::vector<block::BlockMeta> metas;
  for (int i = 0; i < 12; ++i) metas.push_back(Meta(i + 1, i * 2 * kHour, (i + 1) * 2 * kHour - 1));
  metas.push_back(Meta(13, 24 * kHour, 26 * kHour - 1));
  metas.push_back(Meta(14, 26 * kHour, 28 * kHour - 1));
  EXPECT_THAT(PlanCompactions(metas, 24 * kHour, 22 * kHour), IsEmpty());
  auto plan = PlanCompactions(metas, 24 * kHour, 24 * kHour);
  ASSERT_EQ(1u, plan.size());
  EXPECT_EQ(12u, plan[0].size());
  EXPECT_THAT(PlanCompactions(metas, 24 * kHour, INT64_MAX),
              ElementsAre(::testing::SizeIs(12), ElementsAre(12, 13)));
}

TEST(PlanCompactionsTest, LeavesAloneASingleBlockAndAGroupAWideBlockOverlaps) {
  EXPECT_THAT(PlanCompactions({Meta(1, 0, 10)}, 24 * kHour, INT64_MAX), IsEmpty());
  // Block 3 spans two windows, so it is in no group, but it overlaps both.
  std::vector<block::BlockMeta> metas = {Meta(1, 0, 10), Meta(2, 20, 30), Meta(3, 25, 25 * kHour)};
  EXPECT_THAT(PlanCompactions(metas, 24 * kHour, INT64_MAX), IsEmpty());
}

class CompactBlocksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("compact_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A block of the given series, each with samples ts = from + i*step (i <
  // n) and value `value`, in chunks of 120.
  std::shared_ptr<const block::Block> Write(uint64_t seq, const std::vector<std::string>& hosts,
                                            int64_t from, int64_t step, int n, double value) {
    auto w = block::BlockWriter::Create(espy::fs::Env::Default(), dir_, seq, 1);
    EXPECT_TRUE(w.ok()) << w.status();
    for (const std::string& h : hosts) {
      std::vector<std::string> chunks;
      chunk::ChunkAppender app;
      for (int i = 0; i < n; ++i) {
        if (app.num_samples() == 120) {
          chunks.emplace_back(app.bytes());
          app = chunk::ChunkAppender();
        }
        EXPECT_TRUE(app.Append(from + i * step, value).ok());
      }
      chunks.emplace_back(app.bytes());
      std::vector<std::string_view> views(chunks.begin(), chunks.end());
      EXPECT_TRUE((*w)->AddSeries(L(h), views).ok());
    }
    auto meta = (*w)->Finish();
    EXPECT_TRUE(meta.ok()) << meta.status();
    auto b = block::Block::Open(espy::fs::Env::Default(), dir_ + "/" + meta->DirName());
    EXPECT_TRUE(b.ok()) << b.status();
    return *b;
  }

  std::string dir_;
};

TEST_F(CompactBlocksTest, LaterBlockWinsOnEqualTimestampsAndSeriesAreUnited) {
  auto a = Write(1, {"a", "b"}, 0, 10, 100, 1.0);    // ts 0..990
  auto b = Write(2, {"b", "c"}, 500, 10, 100, 2.0);  // ts 500..1490
  auto meta = CompactBlocks(espy::fs::Env::Default(), dir_, {a, b}, 3, 1000);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(3u, meta->seq);
  EXPECT_EQ(2, meta->level);
  EXPECT_EQ(3u, meta->num_series);
  EXPECT_EQ(0, meta->mint);
  EXPECT_EQ(1490, meta->maxt);
  EXPECT_EQ(100u + 150u + 100u, meta->num_samples);
  auto c = block::Block::Open(espy::fs::Env::Default(), dir_ + "/" + meta->DirName());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(3u, (*c)->num_series());
  for (uint32_t id = 0; id < 3; ++id) {
    std::vector<model::Sample> got;
    ASSERT_TRUE((*c)->Read(id, INT64_MIN, INT64_MAX, &got).ok());
    const std::string host((*c)->Labels(id).Get("host"));
    if (host == "b") {
      ASSERT_EQ(150u, got.size());
      for (const model::Sample& s : got) EXPECT_EQ(s.ts < 500 ? 1.0 : 2.0, s.value) << s.ts;
    } else {
      EXPECT_EQ(100u, got.size()) << host;
    }
    // Full-size chunks: 150 samples fit in one.
    EXPECT_EQ(1u, (*c)->Chunks(id).size());
  }
}

TEST_F(CompactBlocksTest, SplitsLongSeriesAtMaxChunkSamples) {
  auto a = Write(1, {"a"}, 0, 10, 2500, 1.0);
  auto b = Write(2, {"a"}, 25'000, 10, 10, 1.0);
  auto meta = CompactBlocks(espy::fs::Env::Default(), dir_, {a, b}, 3, 1000);
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto c = block::Block::Open(espy::fs::Env::Default(), dir_ + "/" + meta->DirName());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(3u, (*c)->Chunks(0).size());
  EXPECT_EQ(2510u, meta->num_samples);
}

TEST_F(CompactBlocksTest, CorruptSourceChunkFailsWithDataLossAndLeavesNoBlock) {
  auto a = Write(1, {"a"}, 0, 10, 100, 1.0);
  // A chunk whose header claims a later max_time than its last sample: the
  // header reads fine, decoding fails.
  chunk::ChunkAppender app;
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(app.Append(i * 7, i * 1.5).ok());
  std::string bad(app.bytes());
  bad[14] = static_cast<char>(bad[14] + 1);  // max_time, i64 LE at offset 14
  auto w = block::BlockWriter::Create(espy::fs::Env::Default(), dir_, 2, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddSeries(L("a"), {bad}).ok());
  auto m = (*w)->Finish();
  ASSERT_TRUE(m.ok()) << m.status();
  auto b = block::Block::Open(espy::fs::Env::Default(), dir_ + "/" + m->DirName());
  ASSERT_TRUE(b.ok()) << b.status();
  auto meta = CompactBlocks(espy::fs::Env::Default(), dir_, {a, *b}, 3, 1000);
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(absl::StatusCode::kDataLoss, meta.status().code()) << meta.status();
  EXPECT_THAT(std::string(meta.status().message()), ::testing::HasSubstr("host=\"a\""));
  block::BlockMeta third;
  third.seq = 3;
  EXPECT_FALSE(fs::exists(dir_ + "/" + third.DirName()));
  EXPECT_FALSE(fs::exists(dir_ + "/" + third.DirName() + ".tmp"));
}

}  // namespace
}  // namespace espy::storage
