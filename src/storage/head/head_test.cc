#include "storage/head/head.h"

#include <filesystem>
#include <map>
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
  // Overwrites in the out-of-order buffer count until it merges.
  EXPECT_LE(2u, h.num_samples());
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

TEST(HeadTest, ChunksAreCutAt120SamplesAndAtRangeBoundaries) {
  HeadOptions o;
  o.block_range = 1'000'000;
  Head h(o);
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 300; ++i) h.Append(r, i * 1000, i * 0.25);  // 0 .. 299'000
  h.Append(r, 1'000'000, 7);  // next range: a new chunk though the open one has room
  Head::MemoryStats m = h.Memory();
  EXPECT_EQ(1u, m.series);
  EXPECT_EQ(4u, m.chunks);             // 120 + 120 + 60 + 1
  EXPECT_LT(m.chunk_bytes, 301u * 4);  // compressed, not 16 bytes a sample
  auto got = ReadAll(h, r);
  ASSERT_EQ(301u, got.size());
  EXPECT_EQ(299 * 0.25, got[299].value);
  EXPECT_EQ(7, got[300].value);
}

TEST(HeadTest, OutOfOrderBufferMergesIntoChunksWithLaterWriteWinning) {
  HeadOptions o;
  o.ooo_merge_threshold = 4;
  Head h(o);
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 200; ++i) h.Append(r, i * 10, i);
  // Overwrites of in-order samples (in closed and open chunks), and new
  // timestamps between them; the fourth triggers the merge.
  h.Append(r, 50, -1);
  h.Append(r, 1990, -2);
  h.Append(r, 55, -3);
  h.Append(r, 1500, -4);
  EXPECT_EQ(0u, h.Memory().ooo_samples);
  h.Append(r, 1500, -5);  // again, into the buffer
  EXPECT_EQ(1u, h.Memory().ooo_samples);
  h.Append(r, 2000, 200);  // in order, after the merge
  auto got = ReadAll(h, r);
  ASSERT_EQ(202u, got.size());
  std::map<int64_t, double> by_ts;
  for (auto s : got) by_ts[s.ts] = s.value;
  EXPECT_EQ(-1, by_ts[50]);
  EXPECT_EQ(-3, by_ts[55]);
  EXPECT_EQ(-5, by_ts[1500]);
  EXPECT_EQ(-2, by_ts[1990]);
  EXPECT_EQ(200, by_ts[2000]);
  EXPECT_EQ(7, by_ts[70]);
  for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].ts, got[i].ts);
}

TEST(HeadTest, BackfillBeforeAllChunksLandsInOrder) {
  HeadOptions o;
  o.ooo_merge_threshold = 8;
  Head h(o);
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 50; ++i) h.Append(r, 1'000'000 + i, i);
  for (int i = 0; i < 500; ++i) h.Append(r, i, -i);
  auto got = ReadAll(h, r);
  ASSERT_EQ(550u, got.size());
  for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].ts, got[i].ts);
  EXPECT_EQ(-499, got[499].value);
  EXPECT_EQ(0, got[500].value);
}

TEST(HeadTest, FrozenDataStaysReadableUntilItsBlockIsAttached) {
  HeadOptions o;
  o.block_range = 1000;
  Head h(o);
  model::SeriesRef a = h.Create(L("cpu", "a"));
  model::SeriesRef b = h.Create(L("cpu", "b"));
  for (int i = 0; i < 30; ++i) h.Append(a, i * 100, i);  // 0 .. 2900
  h.Append(b, 2500, 1);
  h.Append(a, 150, 99);  // out of order, below the cut
  EXPECT_EQ(1u, h.Freeze(2000));
  EXPECT_EQ(2000, h.min_time());
  h.Append(a, 250, 77);  // written after the freeze: newer than frozen data

  std::vector<model::SeriesRef> refs;
  std::vector<std::string> chunks;
  ASSERT_TRUE(h.ForEachFrozen([&](model::SeriesRef ref, const model::Labels&,
                                  const std::vector<std::string>& cs) {
                 refs.push_back(ref);
                 chunks = cs;
                 return absl::OkStatus();
               }).ok());
  ASSERT_EQ(std::vector<model::SeriesRef>{a}, refs);
  ASSERT_EQ(2u, chunks.size());  // [0, 1000) and [1000, 2000)
  h.Append(a, 300, -1);          // overwrites a frozen sample

  auto check = [&] {
    auto got = ReadAll(h, a);
    ASSERT_EQ(32u, got.size());
    std::map<int64_t, double> by_ts;
    for (auto s : got) by_ts[s.ts] = s.value;
    EXPECT_EQ(99, by_ts[150]);
    EXPECT_EQ(77, by_ts[250]);
    EXPECT_EQ(-1, by_ts[300]);
    EXPECT_EQ(29, by_ts[2900]);
  };
  check();

  // Persist the frozen data as a block, attach it, drop the frozen copy.
  std::string dir = ::testing::TempDir() + "/head_test_frozen";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto w = block::BlockWriter::Create(dir, 1, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddSeries(h.SeriesLabels(a), {chunks[0], chunks[1]}).ok());
  auto meta = (*w)->Finish();
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto blk = block::Block::Open(dir + "/" + meta->DirName());
  ASSERT_TRUE(blk.ok()) << blk.status();
  h.ReplaceBlocks({*blk}, {});
  check();
  h.ClearFrozen();
  check();
  EXPECT_EQ(1u, h.Blocks().size());
  h.ReplaceBlocks({}, {1});
  EXPECT_EQ(12u, ReadAll(h, a).size());  // 2000..2900, 250, 300
  std::filesystem::remove_all(dir);
}

TEST(HeadTest, BlockSeriesAreRegisteredForSelectAndLabels) {
  std::string dir = ::testing::TempDir() + "/head_test_register";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  chunk::ChunkAppender app;
  ASSERT_TRUE(app.Append(5, 1.5).ok());
  auto w = block::BlockWriter::Create(dir, 3, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddSeries(L("disk", "z"), {std::string(app.bytes())}).ok());
  auto meta = (*w)->Finish();
  ASSERT_TRUE(meta.ok());
  auto blk = block::Block::Open(dir + "/" + meta->DirName());
  ASSERT_TRUE(blk.ok());
  Head h;
  h.ReplaceBlocks({*blk}, {});
  model::SeriesRef r = h.Lookup(L("disk", "z"));
  ASSERT_NE(0u, r);
  auto m = model::Matcher::Make(model::MatchType::kEqual, "host", "z");
  EXPECT_EQ(index::Postings{r}, h.Select({*m}));
  EXPECT_EQ(std::vector<std::string>{"z"}, h.LabelValues("host"));
  auto got = ReadAll(h, r);
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ(1.5, got[0].value);
  std::filesystem::remove_all(dir);
}

std::map<int64_t, double> AsMap(const std::vector<model::Sample>& v) {
  std::map<int64_t, double> m;
  for (const model::Sample& s : v) m[s.ts] = s.value;
  return m;
}

TEST(HeadTest, DeleteDropsTheRangeFromChunksOpenChunkAndOutOfOrderBuffer) {
  Head h;
  model::SeriesRef a = h.Create(L("cpu", "a"));
  model::SeriesRef b = h.Create(L("cpu", "b"));
  std::map<int64_t, double> want;
  for (int i = 0; i < 300; ++i) {  // three chunks: two closed, one open
    h.Append(a, i * 10, i);
    h.Append(b, i * 10, i);
    want[i * 10] = i;
  }
  h.Append(a, 5, -1);  // out of order: stays in the buffer
  want[5] = -1;
  EXPECT_FALSE(h.HadDeletion(a));
  EXPECT_EQ(0u, h.num_series_with_deletions());

  // [1000, 2500] spans the end of chunk 1, all of chunk 2 and part of the open one.
  EXPECT_EQ(151u, h.Delete(a, 1000, 2500));
  EXPECT_EQ(1u, h.Delete(a, 5, 5));
  for (auto it = want.begin(); it != want.end();) {
    it = (it->first == 5 || (it->first >= 1000 && it->first <= 2500)) ? want.erase(it) : ++it;
  }
  EXPECT_EQ(want, AsMap(ReadAll(h, a)));
  EXPECT_EQ(300u, ReadAll(h, b).size());
  EXPECT_TRUE(h.HadDeletion(a));
  EXPECT_FALSE(h.HadDeletion(b));
  EXPECT_EQ(1u, h.num_series_with_deletions());

  // Appends go on after a delete: in order, out of order, into the deleted range.
  h.Append(a, 3000, 3000);
  h.Append(a, 1500, 1500);
  want[3000] = 3000;
  want[1500] = 1500;
  EXPECT_EQ(want, AsMap(ReadAll(h, a)));
  // Deleting nothing changes nothing.
  EXPECT_EQ(0u, h.Delete(a, 100'000, 200'000));
  EXPECT_EQ(want, AsMap(ReadAll(h, a)));
}

TEST(HeadTest, DeleteEverythingFreesTheChunksAndKeepsTheSeriesWritable) {
  Head h;
  model::SeriesRef a = h.Create(L("cpu", "a"));
  for (int i = 0; i < 500; ++i) h.Append(a, i, i);
  const uint64_t before = h.Memory().chunk_bytes;
  EXPECT_EQ(500u, h.Delete(a, INT64_MIN, INT64_MAX));
  EXPECT_TRUE(ReadAll(h, a).empty());
  EXPECT_EQ(0u, h.Memory().chunks);
  EXPECT_LT(h.Memory().chunk_bytes, before);
  EXPECT_EQ(0u, h.num_samples());
  h.Append(a, 10, 1);    // below the old newest sample: out of order
  h.Append(a, 1000, 2);  // above it: a new open chunk
  EXPECT_EQ((std::map<int64_t, double>{{10, 1}, {1000, 2}}), AsMap(ReadAll(h, a)));
  h.Append(a, 10, 3);  // the later write still wins
  EXPECT_EQ(3, AsMap(ReadAll(h, a))[10]);
}

TEST(HeadTest, DeleteReachesFrozenData) {
  HeadOptions o;
  o.block_range = 1000;
  Head h(o);
  model::SeriesRef a = h.Create(L("cpu", "a"));
  for (int i = 0; i < 30; ++i) h.Append(a, i * 100, i);  // 0 .. 2900
  h.Append(a, 150, 99);                                  // out of order
  ASSERT_EQ(1u, h.Freeze(2000));
  EXPECT_EQ(7u, h.Delete(a, 100, 600));  // 100, 150, 200 .. 600
  std::vector<std::string> chunks;
  ASSERT_TRUE(h.ForEachFrozen([&](model::SeriesRef, const model::Labels&,
                                  const std::vector<std::string>& cs) {
                 chunks = cs;
                 return absl::OkStatus();
               }).ok());
  std::vector<int64_t> frozen_ts;
  for (const std::string& c : chunks) {
    std::vector<int64_t> ts;
    std::vector<double> vs;
    ASSERT_TRUE(chunk::DecodeChunkRange(c, INT64_MIN, INT64_MAX, &ts, &vs).ok());
    frozen_ts.insert(frozen_ts.end(), ts.begin(), ts.end());
  }
  EXPECT_EQ(std::vector<int64_t>(
                {0, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900}),
            frozen_ts);
  EXPECT_EQ(24u, ReadAll(h, a).size());
}

// Random appends (in order, out of order, overwrites) and deletes against a
// std::map model.
TEST(HeadTest, DeleteMatchesAModelUnderRandomWorkload) {
  HeadOptions o;
  o.block_range = 5000;
  o.max_chunk_samples = 20;
  o.ooo_merge_threshold = 8;
  Head h(o);
  model::SeriesRef a = h.Create(L("cpu", "a"));
  std::map<int64_t, double> want;
  uint64_t state = 42;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  int64_t t = 0;
  for (int step = 0; step < 5000; ++step) {
    uint64_t op = next(100);
    if (op < 70) {
      t += static_cast<int64_t>(next(50));
      h.Append(a, t, step);
      want[t] = step;
    } else if (op < 95) {
      int64_t ts = static_cast<int64_t>(next(static_cast<uint64_t>(t) + 1));
      h.Append(a, ts, -step);
      want[ts] = -step;
    } else {
      int64_t lo = static_cast<int64_t>(next(static_cast<uint64_t>(t) + 1));
      int64_t hi = lo + static_cast<int64_t>(next(2000));
      h.Delete(a, lo, hi);
      want.erase(want.lower_bound(lo), want.upper_bound(hi));
    }
    if (step % 250 == 0) {
      ASSERT_EQ(want, AsMap(ReadAll(h, a))) << "step " << step;
    }
  }
  EXPECT_EQ(want, AsMap(ReadAll(h, a)));
}

TEST(HeadTest, BlockTombstonesMarkTheirSeriesAsDeleted) {
  std::string dir = ::testing::TempDir() + "/head_test_tombstones";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  chunk::ChunkAppender app;
  ASSERT_TRUE(app.Append(5, 1.5).ok());
  auto w = block::BlockWriter::Create(dir, 3, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddSeries(L("disk", "y"), {std::string(app.bytes())}).ok());
  ASSERT_TRUE((*w)->AddSeries(L("disk", "z"), {std::string(app.bytes())}).ok());
  auto meta = (*w)->Finish();
  ASSERT_TRUE(meta.ok());
  auto blk = block::Block::Open(dir + "/" + meta->DirName());
  ASSERT_TRUE(blk.ok());
  block::Tombstones t;
  t[1].Add({0, 10});
  ASSERT_TRUE((*blk)->AddTombstones(t).ok());
  Head h;
  h.ReplaceBlocks({*blk}, {});
  EXPECT_FALSE(h.HadDeletion(h.Lookup(L("disk", "y"))));
  EXPECT_TRUE(h.HadDeletion(h.Lookup(L("disk", "z"))));
  EXPECT_EQ(1u, h.num_series_with_deletions());
  EXPECT_TRUE(ReadAll(h, h.Lookup(L("disk", "z"))).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace espy::storage::head
