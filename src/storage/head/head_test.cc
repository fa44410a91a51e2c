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

TEST(HeadTest, LookupAllMatchesLookupAcrossLockBatches) {
  Head h;
  std::vector<model::Labels> labels;
  for (int i = 0; i < 1000; ++i) {
    labels.push_back(L("cpu", std::to_string(i)));
    if (i % 3 == 0) h.Create(labels.back());
  }
  // Entries already set are kept: the first one, and a whole lock batch.
  std::vector<model::SeriesRef> refs(600, 0);
  refs[0] = 42;
  for (size_t i = 256; i < 512; ++i) refs[i] = 7;
  h.LookupAll(labels, &refs);
  ASSERT_EQ(labels.size(), refs.size());
  EXPECT_EQ(42u, refs[0]);
  for (size_t i = 1; i < labels.size(); ++i) {
    if (i >= 256 && i < 512) {
      EXPECT_EQ(7u, refs[i]) << i;
      continue;
    }
    EXPECT_EQ(h.Lookup(labels[i]), refs[i]) << i;
    EXPECT_EQ(i % 3 == 0, refs[i] != 0) << i;
  }
}

TEST(HeadTest, AppendAllIsAppendOneByOne) {
  // In order, out of order, overwrites and enough refs for several lock
  // batches, into two heads: one sample at a time and all at once.
  Head one, all;
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(one.Create(L("cpu", std::to_string(i))), all.Create(L("cpu", std::to_string(i))));
  }
  std::vector<model::SeriesRef> refs;
  std::vector<model::BatchSample> samples;
  for (int i = 0; i < 700; ++i) {
    const model::SeriesRef r = 1 + i % 300;
    const int64_t ts = i < 600 ? 1000 + i / 300 * 10 : 1000 - i;  // the last 100 late
    refs.push_back(r);
    samples.push_back({0, ts, double(i)});
    refs.push_back(r);
    samples.push_back({0, ts, double(-i)});  // same ts again: the later wins
  }
  for (size_t i = 0; i < refs.size(); ++i) one.Append(refs[i], samples[i].ts, samples[i].value);
  all.AppendAll(refs, samples);
  EXPECT_EQ(one.num_samples(), all.num_samples());
  for (model::SeriesRef r = 1; r <= 300; ++r) {
    std::vector<model::Sample> want = ReadAll(one, r), got = ReadAll(all, r);
    ASSERT_EQ(want.size(), got.size()) << r;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(want[i].ts, got[i].ts) << r;
      EXPECT_EQ(want[i].value, got[i].value) << r;
    }
  }
  std::vector<uint32_t> first;
  all.MarkAllLogged({3, 1, 3, 2}, 7, &first);
  all.MarkAllLogged({2, 4}, 7, &first);
  EXPECT_EQ((std::vector<uint32_t>{0, 1, 3, 1}), first);
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
  auto w = block::BlockWriter::Create(espy::fs::Env::Default(), dir, 1, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddSeries(h.SeriesLabels(a), {chunks[0], chunks[1]}).ok());
  auto meta = (*w)->Finish();
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto blk = block::Block::Open(espy::fs::Env::Default(), dir + "/" + meta->DirName());
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

// A block (seq 3) in a fresh `dir` holding one sample (5, 1.5) for each of
// `series`.
std::shared_ptr<block::Block> OneSampleBlock(const std::string& dir,
                                             const std::vector<model::Labels>& series) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  chunk::ChunkAppender app;
  EXPECT_TRUE(app.Append(5, 1.5).ok());
  auto w = block::BlockWriter::Create(espy::fs::Env::Default(), dir, 3, 1);
  EXPECT_TRUE(w.ok());
  if (!w.ok()) return nullptr;
  for (const model::Labels& l : series) {
    EXPECT_TRUE((*w)->AddSeries(l, {std::string(app.bytes())}).ok());
  }
  auto meta = (*w)->Finish();
  EXPECT_TRUE(meta.ok());
  if (!meta.ok()) return nullptr;
  auto blk = block::Block::Open(espy::fs::Env::Default(), dir + "/" + meta->DirName());
  EXPECT_TRUE(blk.ok());
  return blk.ok() ? *blk : nullptr;
}

TEST(HeadTest, BlockSeriesAreRegisteredForSelectAndLabels) {
  std::string dir = ::testing::TempDir() + "/head_test_register";
  std::shared_ptr<block::Block> blk = OneSampleBlock(dir, {L("disk", "z")});
  ASSERT_NE(nullptr, blk);
  Head h;
  h.ReplaceBlocks({blk}, {});
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
  std::shared_ptr<block::Block> blk = OneSampleBlock(dir, {L("disk", "y"), L("disk", "z")});
  ASSERT_NE(nullptr, blk);
  block::Tombstones t;
  t[1].Add({0, 10});
  ASSERT_TRUE(blk->AddTombstones(t).ok());
  Head h;
  h.ReplaceBlocks({blk}, {});
  EXPECT_FALSE(h.HadDeletion(h.Lookup(L("disk", "y"))));
  EXPECT_TRUE(h.HadDeletion(h.Lookup(L("disk", "z"))));
  EXPECT_EQ(1u, h.num_series_with_deletions());
  EXPECT_TRUE(ReadAll(h, h.Lookup(L("disk", "z"))).empty());
  std::filesystem::remove_all(dir);
}

// Reads [mint, maxt] as a pager does: snapshots of at least `want` samples,
// each resumed after the last one's covered_maxt().
std::vector<model::Sample> ReadBySnapshots(const Head& h, model::SeriesRef ref, int64_t mint,
                                           int64_t maxt, size_t want, int* snapshots = nullptr) {
  std::vector<model::Sample> out;
  SeriesSnapshot snap;
  int64_t from = mint;
  int n = 0;
  while (true) {
    h.Snapshot(ref, from, maxt, want, &snap);
    ++n;
    EXPECT_GE(snap.covered_maxt(), from);
    EXPECT_LE(snap.covered_maxt(), maxt);
    while (snap.Next()) {
      EXPECT_GE(snap.At().ts, from);
      EXPECT_LE(snap.At().ts, snap.covered_maxt());
      out.push_back(snap.At());
    }
    if (snap.covered_maxt() >= maxt) break;
    from = snap.covered_maxt() + 1;
  }
  if (snapshots != nullptr) *snapshots = n;
  return out;
}

TEST(HeadSnapshotTest, StopsPastWantedSamplesAndResumesWithoutGapsOrRepeats) {
  Head h;  // chunks of 120 samples
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 1000; ++i) h.Append(r, i * 10, i);
  SeriesSnapshot snap;
  // From the middle of chunk 0 ([0, 1190]): it does not count, chunk 1 does.
  h.Snapshot(r, 505, INT64_MAX, 100, &snap);
  EXPECT_EQ(2390, snap.covered_maxt());
  ASSERT_TRUE(snap.Next());
  EXPECT_EQ(510, snap.At().ts);
  EXPECT_EQ(51, snap.At().value);
  int got = 1;
  while (snap.Next()) ++got;
  EXPECT_EQ(189, got);  // 510 .. 2390
  EXPECT_FALSE(snap.Next());

  // Everything there is: covers up to maxt.
  h.Snapshot(r, 9000, INT64_MAX, 500, &snap);
  EXPECT_EQ(INT64_MAX, snap.covered_maxt());
  h.Snapshot(r, 0, 5000, SIZE_MAX, &snap);
  EXPECT_EQ(5000, snap.covered_maxt());

  int snapshots = 0;
  std::vector<model::Sample> all = ReadBySnapshots(h, r, 3, 9994, 1, &snapshots);
  std::vector<model::Sample> want;
  h.Read(r, 3, 9994, SIZE_MAX, &want);
  EXPECT_EQ(AsMap(want), AsMap(all));
  EXPECT_EQ(want.size(), all.size());
  EXPECT_EQ(8, snapshots);  // one per chunk after the first
}

TEST(HeadSnapshotTest, EmptyForUnknownSeriesAndEmptyRange) {
  Head h;
  model::SeriesRef r = h.Create(L("cpu", "a"));
  h.Append(r, 10, 1);
  SeriesSnapshot snap;
  h.Snapshot(99, 0, 100, 10, &snap);
  EXPECT_FALSE(snap.Next());
  EXPECT_EQ(100, snap.covered_maxt());
  h.Snapshot(r, 50, 40, 10, &snap);
  EXPECT_FALSE(snap.Next());
  h.Snapshot(r, 11, INT64_MAX, 10, &snap);
  EXPECT_FALSE(snap.Next());
  EXPECT_EQ(INT64_MAX, snap.covered_maxt());
  h.Snapshot(r, INT64_MIN, INT64_MAX, 0, &snap);  // 0 wanted still reads
  ASSERT_TRUE(snap.Next());
  EXPECT_EQ(10, snap.At().ts);
}

TEST(HeadSnapshotTest, LaterWritesMergesAndDeletesDoNotChangeATakenSnapshot) {
  HeadOptions o;
  o.max_chunk_samples = 20;
  o.ooo_merge_threshold = 4;
  Head h(o);
  model::SeriesRef r = h.Create(L("cpu", "a"));
  for (int i = 0; i < 100; ++i) h.Append(r, i * 10, i);
  h.Append(r, 55, -1);  // out of order, in the buffer
  h.Append(r, 60, -2);  // overwrite, in the buffer
  std::vector<model::Sample> before;
  h.Read(r, INT64_MIN, INT64_MAX, SIZE_MAX, &before);
  SeriesSnapshot snap;
  h.Snapshot(r, INT64_MIN, INT64_MAX, SIZE_MAX, &snap);
  ASSERT_TRUE(snap.Next());  // start decoding before the head changes
  std::vector<model::Sample> got{snap.At()};

  for (int i = 0; i < 10; ++i) h.Append(r, i * 10 + 5, 1000 + i);  // merges the buffer
  for (int i = 100; i < 200; ++i) h.Append(r, i * 10, i);          // reallocates the open chunk
  h.Delete(r, 0, 500);
  SeriesSnapshot moved = std::move(snap);  // a move keeps the position
  while (moved.Next()) got.push_back(moved.At());
  EXPECT_EQ(AsMap(before), AsMap(got));
  ASSERT_EQ(before.size(), got.size());
  EXPECT_EQ(-1, AsMap(got)[55]);
  EXPECT_EQ(-2, AsMap(got)[60]);
}

// Random appends, overwrites, deletes, freezes and frozen data persisted
// as blocks: paging by snapshots of any size reads what Read reads.
TEST(HeadSnapshotTest, MatchesReadUnderRandomWorkloadWithBlocksAndFrozenData) {
  HeadOptions o;
  o.block_range = 2000;
  o.max_chunk_samples = 16;
  o.ooo_merge_threshold = 6;
  Head h(o);
  model::SeriesRef a = h.Create(L("cpu", "a"));
  std::string dir = ::testing::TempDir() + "/head_test_snapshot";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  uint64_t state = 7;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  auto check = [&](int step) {
    std::vector<model::Sample> want;
    h.Read(a, INT64_MIN, INT64_MAX, SIZE_MAX, &want);
    for (size_t size : {1, 7, 50, 1000}) {
      std::vector<model::Sample> got = ReadBySnapshots(h, a, INT64_MIN, INT64_MAX, size);
      ASSERT_EQ(want.size(), got.size()) << "step " << step << " size " << size;
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(want[i].ts, got[i].ts) << "step " << step << " size " << size;
        ASSERT_EQ(want[i].value, got[i].value) << "step " << step << " ts " << want[i].ts;
      }
    }
    if (want.size() > 2) {
      const int64_t lo = want[want.size() / 3].ts + 1, hi = want[2 * want.size() / 3].ts;
      std::vector<model::Sample> part;
      h.Read(a, lo, hi, SIZE_MAX, &part);
      EXPECT_EQ(AsMap(part), AsMap(ReadBySnapshots(h, a, lo, hi, 5))) << "step " << step;
    }
  };
  int64_t t = 0;
  uint64_t seq = 0;
  for (int step = 0; step < 3000; ++step) {
    uint64_t op = next(1000);
    if (op < 700) {
      t += static_cast<int64_t>(next(40));
      h.Append(a, t, step);
    } else if (op < 950) {
      h.Append(a, static_cast<int64_t>(next(static_cast<uint64_t>(t) + 1)), -step);
    } else if (op < 990) {
      int64_t lo = static_cast<int64_t>(next(static_cast<uint64_t>(t) + 1));
      h.Delete(a, lo, lo + static_cast<int64_t>(next(500)));
    } else {
      // Cut a block below the newest range, checking reads at each stage.
      const int64_t cut = (t / o.block_range) * o.block_range;
      if (h.Freeze(cut) == 0) continue;
      check(step);
      std::vector<std::string> chunks;
      ASSERT_TRUE(h.ForEachFrozen([&](model::SeriesRef, const model::Labels&,
                                      const std::vector<std::string>& cs) {
                     chunks = cs;
                     return absl::OkStatus();
                   }).ok());
      auto w = block::BlockWriter::Create(espy::fs::Env::Default(), dir, ++seq, 1);
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE((*w)->AddSeries(h.SeriesLabels(a),
                                  std::vector<std::string_view>(chunks.begin(), chunks.end()))
                      .ok());
      auto meta = (*w)->Finish();
      ASSERT_TRUE(meta.ok()) << meta.status();
      auto blk = block::Block::Open(espy::fs::Env::Default(), dir + "/" + meta->DirName());
      ASSERT_TRUE(blk.ok()) << blk.status();
      if (next(2) == 0) {  // a deleted range in the block, as Db::Delete adds
        block::Tombstones ts;
        const int64_t lo = (*blk)->meta().mint + static_cast<int64_t>(next(1000));
        ts[0].Add({lo, lo + static_cast<int64_t>(next(300))});
        ASSERT_TRUE((*blk)->AddTombstones(ts).ok());
      }
      h.ReplaceBlocks({*blk}, {});
      check(step);
      h.ClearFrozen();
    }
    if (step % 100 == 0) check(step);
  }
  check(3000);
  ASSERT_GT(h.Blocks().size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(HeadSnapshotTest, ConcurrentWritersNeverTearASnapshot) {
  HeadOptions o;
  o.max_chunk_samples = 30;
  o.ooo_merge_threshold = 5;
  Head h(o);
  model::SeriesRef r = h.Create(L("cpu", "a"));
  std::atomic<bool> done{false};
  std::thread reader([&] {
    SeriesSnapshot snap;
    while (!done.load()) {
      h.Snapshot(r, INT64_MIN, INT64_MAX, 40, &snap);
      int64_t prev = INT64_MIN;
      while (snap.Next()) {
        ASSERT_LT(prev, snap.At().ts);
        ASSERT_LE(snap.At().ts, snap.covered_maxt());
        prev = snap.At().ts;
      }
    }
  });
  for (int i = 0; i < 20000; ++i) h.Append(r, (i * 7919) % 20000, i);
  done = true;
  reader.join();
  EXPECT_EQ(20000u, ReadBySnapshots(h, r, INT64_MIN, INT64_MAX, 100).size());
}

}  // namespace
}  // namespace espy::storage::head
