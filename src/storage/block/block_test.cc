#include "storage/block/block.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/chunk/chunk.h"

namespace espy::storage::block {
namespace {

namespace fs = std::filesystem;

model::Labels L(std::string name, std::string host) {
  return model::Labels({{"__name__", std::move(name)}, {"host", std::move(host)}});
}

std::string Chunk(int64_t from, int n, double base) {
  chunk::ChunkAppender app;
  for (int i = 0; i < n; ++i) EXPECT_TRUE(app.Append(from + i * 10'000, base + i * 0.5).ok());
  return std::string(app.bytes());
}

class BlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("block_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a block with two series; returns its directory.
  std::string WriteTwoSeries(uint64_t seq) {
    auto w = BlockWriter::Create(espy::fs::Env::Default(), dir_, seq, 1);
    EXPECT_TRUE(w.ok()) << w.status();
    c1_ = Chunk(0, 120, 1);
    c2_ = Chunk(1'200'000, 50, 2);
    c3_ = Chunk(5'000, 10, 100);
    EXPECT_TRUE((*w)->AddSeries(L("cpu", "a"), {c1_, c2_}).ok());
    EXPECT_TRUE((*w)->AddSeries(L("mem", "a"), {c3_}).ok());
    auto meta = (*w)->Finish();
    EXPECT_TRUE(meta.ok()) << meta.status();
    return dir_ + "/" + meta->DirName();
  }

  void FlipByte(const std::string& path, size_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x40));
  }

  std::string dir_;
  std::string c1_, c2_, c3_;
};

TEST_F(BlockTest, WrittenBlockReadsBackSeriesSamplesAndPostings) {
  std::string dir = WriteTwoSeries(7);
  EXPECT_EQ("b-0000000000000007", fs::path(dir).filename().string());
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_TRUE(b.ok()) << b.status();
  const BlockMeta& m = (*b)->meta();
  EXPECT_EQ(7u, m.seq);
  EXPECT_EQ(0, m.mint);
  EXPECT_EQ(1'200'000 + 49 * 10'000, m.maxt);
  EXPECT_EQ(2u, m.num_series);
  EXPECT_EQ(3u, m.num_chunks);
  EXPECT_EQ(180u, m.num_samples);
  ASSERT_EQ(2u, (*b)->num_series());
  EXPECT_EQ(L("cpu", "a"), (*b)->Labels(0));
  EXPECT_EQ(L("mem", "a"), (*b)->Labels(1));

  std::vector<model::Sample> out;
  ASSERT_TRUE((*b)->Read(0, 10'000, 1'200'000, &out).ok());
  ASSERT_EQ(120u, out.size());  // 119 from the first chunk, 1 from the second
  EXPECT_EQ(10'000, out.front().ts);
  EXPECT_EQ(1.5, out.front().value);
  EXPECT_EQ(1'200'000, out.back().ts);
  EXPECT_EQ(2.0, out.back().value);

  EXPECT_THAT((*b)->Postings("host", "a"), ::testing::ElementsAre(0, 1));
  EXPECT_THAT((*b)->Postings("__name__", "mem"), ::testing::ElementsAre(1));
  EXPECT_TRUE((*b)->Postings("host", "zzz").empty());
}

TEST_F(BlockTest, MetaRoundTripsAndRejectsEditedText) {
  BlockMeta m;
  m.seq = 3;
  m.mint = -5;
  m.maxt = 99;
  m.level = 2;
  m.num_series = 1;
  m.chunks_crc = 0xdeadbeef;
  std::string text = EncodeMeta(m);
  auto back = DecodeMeta(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(-5, back->mint);
  EXPECT_EQ(2, back->level);
  EXPECT_EQ(0xdeadbeefu, back->chunks_crc);
  text[text.find("maxt 99") + 5] = '8';
  EXPECT_EQ(absl::StatusCode::kDataLoss, DecodeMeta(text).status().code());
  EXPECT_EQ(absl::StatusCode::kDataLoss, DecodeMeta("version 1\n").status().code());
}

TEST_F(BlockTest, CorruptChunkByteIsDetectedAtOpen) {
  std::string dir = WriteTwoSeries(1);
  FlipByte(dir + "/chunks", 30);
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_EQ(absl::StatusCode::kDataLoss, b.status().code());
  EXPECT_THAT(std::string(b.status().message()), ::testing::HasSubstr("chunks: checksum mismatch"));
}

TEST_F(BlockTest, CorruptIndexByteIsDetectedAtOpen) {
  std::string dir = WriteTwoSeries(1);
  FlipByte(dir + "/index", 12);
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_EQ(absl::StatusCode::kDataLoss, b.status().code());
  EXPECT_THAT(std::string(b.status().message()), ::testing::HasSubstr("index"));
}

TEST_F(BlockTest, TruncatedChunksFileIsDetectedAtOpen) {
  std::string dir = WriteTwoSeries(1);
  fs::resize_file(dir + "/chunks", fs::file_size(dir + "/chunks") - 3);
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_EQ(absl::StatusCode::kDataLoss, b.status().code());
  EXPECT_THAT(std::string(b.status().message()), ::testing::HasSubstr("meta says"));
}

TEST_F(BlockTest, MissingMetaIsDataLoss) {
  std::string dir = WriteTwoSeries(1);
  fs::remove(dir + "/meta");
  EXPECT_EQ(absl::StatusCode::kDataLoss,
            Block::Open(espy::fs::Env::Default(), dir).status().code());
}

TEST_F(BlockTest, AbandonedWriterLeavesNoDirectory) {
  {
    auto w = BlockWriter::Create(espy::fs::Env::Default(), dir_, 9, 1);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->AddSeries(L("cpu", "a"), {Chunk(0, 5, 1)}).ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(BlockTest, EmptyBlockIsNotWritten) {
  auto w = BlockWriter::Create(espy::fs::Env::Default(), dir_, 9, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(absl::StatusCode::kNotFound, (*w)->Finish().status().code());
}

TEST_F(BlockTest, OverlappingChunksOfOneSeriesAreRejected) {
  auto w = BlockWriter::Create(espy::fs::Env::Default(), dir_, 9, 1);
  ASSERT_TRUE(w.ok());
  absl::Status s = (*w)->AddSeries(L("cpu", "a"), {Chunk(0, 5, 1), Chunk(20'000, 5, 1)});
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, s.code());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("overlaps"));
}

std::vector<int64_t> Times(const std::vector<model::Sample>& v) {
  std::vector<int64_t> out;
  for (const model::Sample& x : v) out.push_back(x.ts);
  return out;
}

TEST_F(BlockTest, TombstonesHideDeletedSamplesAndSurviveReopen) {
  std::string dir = WriteTwoSeries(1);
  {
    auto b = Block::Open(espy::fs::Env::Default(), dir);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE((*b)->has_tombstones());
    Tombstones t;
    t[0].Add({10'000, 1'190'000});     // all of chunk 1 but its first sample
    t[0].Add({1'210'000, 1'230'000});  // 3 samples of chunk 2
    ASSERT_TRUE((*b)->AddTombstones(t).ok());
    EXPECT_TRUE((*b)->has_tombstones());
    std::vector<model::Sample> out;
    ASSERT_TRUE((*b)->Read(0, INT64_MIN, INT64_MAX, &out).ok());
    EXPECT_EQ(1u + 47u, out.size());
    EXPECT_EQ(0, out[0].ts);
    EXPECT_EQ(1'200'000, out[1].ts);
    EXPECT_EQ(1'240'000, out[2].ts);
    // The other series is untouched.
    out.clear();
    ASSERT_TRUE((*b)->Read(1, INT64_MIN, INT64_MAX, &out).ok());
    EXPECT_EQ(10u, out.size());
  }
  EXPECT_TRUE(fs::exists(dir + "/tombstones"));
  EXPECT_FALSE(fs::exists(dir + "/tombstones.tmp"));
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<model::Sample> out;
  ASSERT_TRUE((*b)->Read(0, 0, 1'240'000, &out).ok());
  EXPECT_THAT(Times(out), ::testing::ElementsAre(0, 1'200'000, 1'240'000));
}

TEST_F(BlockTest, TombstonesAddedTwiceMerge) {
  auto b = Block::Open(espy::fs::Env::Default(), WriteTwoSeries(1));
  ASSERT_TRUE(b.ok());
  Tombstones a, c;
  a[1].Add({5'000, 20'000});
  c[1].Add({20'001, 40'000});
  c[0].Add({0, 0});
  ASSERT_TRUE((*b)->AddTombstones(a).ok());
  ASSERT_TRUE((*b)->AddTombstones(c).ok());
  auto t = (*b)->tombstones();
  ASSERT_EQ(2u, t->size());
  EXPECT_EQ((std::vector<Interval>{{5'000, 40'000}}), t->at(1).items());
  std::vector<model::Sample> out;
  ASSERT_TRUE((*b)->Read(1, INT64_MIN, INT64_MAX, &out).ok());
  EXPECT_THAT(Times(out), ::testing::ElementsAre(45'000, 55'000, 65'000, 75'000, 85'000, 95'000));
  Tombstones bad;
  bad[2].Add({0, 1});
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, (*b)->AddTombstones(bad).code());
}

TEST_F(BlockTest, CorruptTombstonesFileIsDataLossAtOpen) {
  std::string dir = WriteTwoSeries(1);
  {
    auto b = Block::Open(espy::fs::Env::Default(), dir);
    ASSERT_TRUE(b.ok());
    Tombstones t;
    t[0].Add({0, 100});
    ASSERT_TRUE((*b)->AddTombstones(t).ok());
  }
  FlipByte(dir + "/tombstones", 9);
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_EQ(absl::StatusCode::kDataLoss, b.status().code());
  EXPECT_THAT(std::string(b.status().message()), ::testing::HasSubstr("tombstones"));
}

TEST_F(BlockTest, LeftoverTombstonesTmpIsIgnored) {
  std::string dir = WriteTwoSeries(1);
  std::ofstream(dir + "/tombstones.tmp") << "half written";
  auto b = Block::Open(espy::fs::Env::Default(), dir);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE((*b)->has_tombstones());
  EXPECT_FALSE(fs::exists(dir + "/tombstones.tmp"));
}

TEST(TombstonesTest, EncodingRoundTripsAndRejectsDamage) {
  Tombstones t;
  t[0].Add({INT64_MIN, -1});
  t[3].Add({5, 5});
  t[3].Add({10, INT64_MAX});
  std::string data = EncodeTombstones(t);
  auto back = DecodeTombstones(data, 4);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(t, *back);
  // Series ids must exist in the block.
  EXPECT_EQ(absl::StatusCode::kDataLoss, DecodeTombstones(data, 3).status().code());
  for (size_t n = 0; n < data.size(); ++n) {
    EXPECT_EQ(absl::StatusCode::kDataLoss,
              DecodeTombstones(std::string_view(data.data(), n), 4).status().code())
        << "length " << n;
  }
  EXPECT_TRUE(DecodeTombstones(EncodeTombstones({}), 0).ok());
}

TEST(IntervalsTest, AddMergesOverlappingAndAdjacent) {
  Intervals iv;
  iv.Add({10, 20});
  iv.Add({30, 40});
  iv.Add({21, 25});  // touches [10, 20]
  EXPECT_EQ((std::vector<Interval>{{10, 25}, {30, 40}}), iv.items());
  iv.Add({0, 35});
  EXPECT_EQ((std::vector<Interval>{{0, 40}}), iv.items());
  iv.Add({50, 49});  // empty: ignored
  iv.Add({INT64_MIN, INT64_MIN});
  iv.Add({INT64_MAX, INT64_MAX});
  EXPECT_EQ(3u, iv.items().size());
  EXPECT_TRUE(iv.Contains(40));
  EXPECT_FALSE(iv.Contains(41));
  EXPECT_TRUE(iv.Covers(5, 40));
  EXPECT_FALSE(iv.Covers(5, 41));
  EXPECT_TRUE(iv.Overlaps(40, 100));
  EXPECT_FALSE(iv.Overlaps(41, 100));
  EXPECT_TRUE(iv.Contains(INT64_MAX));
  EXPECT_EQ(Intervals({{30, 40}, {0, 10}, {11, 12}}).items(),
            (std::vector<Interval>{{0, 12}, {30, 40}}));
}

TEST_F(BlockTest, DirNamesParse) {
  BlockMeta m;
  m.seq = 0x2a;
  EXPECT_EQ(0x2au, ParseDirName(m.DirName()));
  EXPECT_EQ(0u, ParseDirName("b-000000000000002a.tmp"));
  EXPECT_EQ(0u, ParseDirName("wal"));
}

}  // namespace
}  // namespace espy::storage::block
