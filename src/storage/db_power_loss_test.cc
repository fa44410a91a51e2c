// Power-loss tests of storage::Db on fs::MemEnv. Each durable step (WAL
// append and rotation, block cut and WAL truncation, compaction, Delete,
// CleanTombstones, retention, downsampling) runs with the power cut at sync
// point k, for every k the step (and the Close after it) reaches; then the
// unsynced data is dropped, the Db reopened on what is left, and checked:
// it opens without help, every acknowledged sample is there with its value,
// a batch not acknowledged is there whole or not at all, and samples a
// Delete that returned OK removed stay removed. Unlike the kill -9 tests
// (CrashPoint, tests/e2e/crash_test.py), which keep what the kernel had,
// these also lose what was written but not synced.
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "fs/mem_env.h"
#include "gtest/gtest.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kHour = 60 * kMin;

model::Labels Cpu(const std::string& host) {
  return model::Labels({{"__name__", "cpu"}, {"host", host}});
}

std::vector<model::Matcher> Host(const std::string& host) {
  return {*model::Matcher::Make(model::MatchType::kEqual, "host", host)};
}

// One series' samples, keyed by timestamp.
using Series = std::map<int64_t, double>;

class PowerLossTest : public ::testing::Test {
 protected:
  // What the store must, may and must not hold after a cut.
  struct Model {
    std::map<std::string, Series> acked;  // host -> samples Commit acknowledged
    // Batches whose Commit failed (the cut): all of one or none of it.
    std::vector<std::map<std::string, Series>> unacked;
    // Deleted by a Delete that returned OK: must stay gone.
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> deleted;
    // A Delete that failed may have removed these, or part of them.
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> maybe_deleted;
    int64_t may_be_expired_before = INT64_MIN;  // retention may drop older samples
    int64_t downsampled_before = INT64_MIN;     // raw samples older may be buckets now
  };

  void SetUp() override {
    options_.dir = "/data";
    options_.maintenance_interval_ms = 0;
    options_.clock = &clock_;
  }

  void Open() {
    db_.reset();
    options_.env = env_.get();
    auto db = Db::Open(options_);
    ASSERT_TRUE(db.ok()) << "open after the cut: " << db.status();
    db_ = std::move(*db);
  }

  // Commits one batch of several series; records what was acknowledged.
  void Commit(const std::map<std::string, std::vector<model::Sample>>& by_host) {
    model::SampleBatch b;
    std::map<std::string, Series> batch;
    for (const auto& [host, samples] : by_host) {
      uint32_t s = b.AddSeries(Cpu(host));
      for (const model::Sample& x : samples) {
        b.Add(s, x.ts, x.value);
        batch[host][x.ts] = x.value;
      }
    }
    if (db_->CommitAndWait(std::move(b)).ok()) {
      for (const auto& [host, series] : batch) {
        for (const auto& [ts, v] : series) model_.acked[host][ts] = v;
      }
    } else {
      model_.unacked.push_back(std::move(batch));
    }
  }
  // Samples every 10 s over [from, to) for each host, valued by time (and
  // `salt`, so that a rewrite of a timestamp is told apart).
  void CommitRange(const std::vector<std::string>& hosts, int64_t from, int64_t to,
                   double salt = 0) {
    std::map<std::string, std::vector<model::Sample>> by_host;
    for (const std::string& h : hosts) {
      for (int64_t t = from; t < to; t += 10'000) {
        by_host[h].push_back({t, static_cast<double>(t / 10'000) + salt});
      }
    }
    Commit(by_host);
  }
  void Delete(const std::string& host, int64_t mint, int64_t maxt) {
    if (db_->Delete(Host(host), mint, maxt).ok()) {
      model_.deleted[host].push_back({mint, maxt});
      for (auto it = model_.acked[host].lower_bound(mint);
           it != model_.acked[host].end() && it->first <= maxt;) {
        it = model_.acked[host].erase(it);
      }
    } else {
      model_.maybe_deleted[host].push_back({mint, maxt});
    }
  }

  Series Read(const std::string& host) {
    Series out;
    model::SeriesRef ref = db_->head().Lookup(Cpu(host));
    if (ref == 0) return out;
    std::vector<model::Sample> samples;
    db_->head().Read(ref, INT64_MIN, INT64_MAX, SIZE_MAX, &samples);
    for (const model::Sample& s : samples) {
      EXPECT_FALSE(out.contains(s.ts)) << host << ": ts " << s.ts << " read twice";
      out[s.ts] = s.value;
    }
    return out;
  }

  static bool In(const std::vector<std::pair<int64_t, int64_t>>& ranges, int64_t ts) {
    for (const auto& [a, b] : ranges) {
      if (a <= ts && ts <= b) return true;
    }
    return false;
  }

  // The checks after the reopen; `where` names the cut.
  void Verify(const std::string& where) {
    SCOPED_TRACE(where);
    std::set<std::string> hosts;
    for (const auto& [h, s] : model_.acked) hosts.insert(h);
    for (const auto& b : model_.unacked) {
      for (const auto& [h, s] : b) hosts.insert(h);
    }
    std::map<std::string, Series> got;
    for (const std::string& h : hosts) got[h] = Read(h);

    for (const auto& [h, want] : model_.acked) {
      for (const auto& [ts, v] : want) {
        if (ts < model_.may_be_expired_before || ts < model_.downsampled_before) continue;
        if (In(model_.maybe_deleted[h], ts)) continue;
        auto it = got[h].find(ts);
        ASSERT_NE(it, got[h].end()) << h << ": acknowledged sample at " << ts << " is lost";
        // A failed batch may have rewritten it (later write wins).
        if (it->second != v) {
          bool rewritten = false;
          for (const auto& b : model_.unacked) {
            auto bh = b.find(h);
            rewritten |=
                bh != b.end() && bh->second.contains(ts) && bh->second.at(ts) == it->second;
          }
          ASSERT_TRUE(rewritten) << h << " at " << ts << ": " << it->second << ", want " << v;
        }
      }
    }
    for (const auto& [h, series] : got) {
      for (const auto& [ts, v] : series) {
        bool known = model_.acked[h].contains(ts) && model_.acked[h].at(ts) == v;
        for (const auto& b : model_.unacked) {
          auto bh = b.find(h);
          known |= bh != b.end() && bh->second.contains(ts) && bh->second.at(ts) == v;
        }
        // Samples written after a Delete are kept, also inside its range.
        ASSERT_TRUE(known || !In(model_.deleted[h], ts))
            << h << ": sample at " << ts << " deleted by an acknowledged Delete is back";
        // A deleted sample whose Delete failed may still be there.
        known |= In(model_.maybe_deleted[h], ts);
        ASSERT_TRUE(known) << h << ": sample at " << ts << " = " << v << " was never written";
      }
    }
    // All or nothing per failed batch (outside what acknowledged writes
    // cover anyway, and what retention or downsampling may remove).
    for (size_t i = 0; i < model_.unacked.size(); ++i) {
      size_t present = 0, total = 0;
      for (const auto& [h, series] : model_.unacked[i]) {
        for (const auto& [ts, v] : series) {
          if (model_.acked[h].contains(ts) || ts < model_.may_be_expired_before ||
              ts < model_.downsampled_before) {
            continue;
          }
          ++total;
          auto it = got[h].find(ts);
          present += it != got[h].end() && it->second == v;
        }
      }
      ASSERT_TRUE(present == 0 || present == total)
          << "batch " << i << " not acknowledged is half there: " << present << " of " << total;
    }
  }

  // Runs `setup` with the power on, then `step` with the power cut at sync
  // point k (counted from the step's start), closes the Db, drops what was
  // not synced, reopens and verifies; for k = 1, 2, ... until a run passes
  // every sync point of the step and of the Close after it. `verify_more`
  // adds checks of the reopened Db. Returns the number of cuts made.
  int RunWithPowerCuts(const std::function<void()>& setup, const std::function<void()>& step,
                       const std::function<void(const std::string&)>& verify_more = nullptr) {
    for (uint64_t k = 1;; ++k) {
      env_ = std::make_unique<fs::MemEnv>();
      model_ = Model();
      Open();
      setup();
      if (::testing::Test::HasFatalFailure()) return -1;
      EXPECT_TRUE(model_.unacked.empty()) << "the setup runs with the power on";
      const uint64_t start = env_->sync_points();
      env_->CrashAtSyncPoint(start + k);
      step();
      db_.reset();  // Close, which may reach the cut too
      const bool cut = env_->crashed();
      env_->DropUnsyncedData();
      Open();
      if (::testing::Test::HasFatalFailure()) return -1;
      const std::string where = cut ? fmt::format("power cut at sync point {} of the step", k)
                                    : "no cut (the step and Close finished)";
      Verify(where);
      if (verify_more) verify_more(where);
      if (::testing::Test::HasFatalFailure()) return -1;
      db_.reset();
      if (!cut) return static_cast<int>(k) - 1;
      if (k > 10'000) {
        ADD_FAILURE() << "the step never ends";
        return -1;
      }
    }
  }

  base::FakeClock clock_{0};
  DbOptions options_;
  std::unique_ptr<fs::MemEnv> env_;
  std::unique_ptr<Db> db_;
  Model model_;
};

TEST_F(PowerLossTest, WalAppendAndRotation) {
  int cuts =
      RunWithPowerCuts([&] { CommitRange({"a"}, 0, 60'000); },
                       [&] {
                         // New series and old ones in one batch, then a rotation (the cut of
                         // the head into a block starts a new segment), then more batches
                         // into the new segment.
                         CommitRange({"a", "b"}, 60'000, 120'000);
                         CommitRange({"a", "c"}, 120'000, 180'000, 0.5);
                         ASSERT_TRUE(db_->FlushHead().ok() || env_->crashed());
                         CommitRange({"b", "c"}, 180'000, 240'000);
                         CommitRange({"a", "d"}, 100'000, 200'000, 0.25);  // rewrites older samples
                       });
  EXPECT_GE(cuts, 8);
}

TEST_F(PowerLossTest, BlockCutAndWalTruncation) {
  int cuts = RunWithPowerCuts(
      [&] {
        CommitRange({"a", "b"}, 0, 3 * kHour);
        CommitRange({"b"}, 3 * kHour, 5 * kHour);
      },
      [&] {
        // The first round cuts blocks; the second, after newer samples,
        // removes the WAL segments the blocks now hold.
        ASSERT_TRUE(db_->Maintain().ok() || env_->crashed());
        CommitRange({"a"}, 5 * kHour, 7 * kHour);
        ASSERT_TRUE(db_->Maintain().ok() || env_->crashed());
      },
      [&](const std::string&) {
        // Open ran no repair by hand: nothing was quarantined.
        EXPECT_EQ(0u, db_->stats().blocks_quarantined);
      });
  EXPECT_GE(cuts, 10);
}

TEST_F(PowerLossTest, Compaction) {
  int cuts = RunWithPowerCuts(
      [&] {
        CommitRange({"a", "b"}, 0, 3600'000);
        ASSERT_TRUE(db_->FlushHead().ok());
        CommitRange({"a"}, 1800'000, 2400'000, 0.5);  // overlaps the block: later wins
        ASSERT_TRUE(db_->FlushHead().ok());
        ASSERT_EQ(2u, db_->stats().blocks);
      },
      [&] { ASSERT_TRUE(db_->Maintain().ok() || env_->crashed()); },
      [&](const std::string&) { EXPECT_EQ(0u, db_->stats().blocks_quarantined); });
  EXPECT_GE(cuts, 5);
}

TEST_F(PowerLossTest, DeleteInBlocksAndHead) {
  int cuts = RunWithPowerCuts(
      [&] {
        CommitRange({"a", "b"}, 0, 3 * kHour);
        ASSERT_TRUE(db_->FlushHead().ok());
        CommitRange({"a", "b"}, 3 * kHour, 4 * kHour);  // in the head
      },
      [&] {
        Delete("a", kHour, 3 * kHour + 30 * kMin);
        Delete("b", 0, INT64_MAX);
        CommitRange({"a"}, 2 * kHour, 2 * kHour + kMin, 0.5);  // written after: kept
      });
  EXPECT_GE(cuts, 3);
}

TEST_F(PowerLossTest, CleanTombstones) {
  int cuts = RunWithPowerCuts(
      [&] {
        CommitRange({"a", "b"}, 0, 3 * kHour);
        ASSERT_TRUE(db_->FlushHead().ok());
        Delete("a", kHour, 2 * kHour);
        Delete("b", 0, INT64_MAX);
        ASSERT_TRUE(model_.maybe_deleted.empty());
      },
      [&] { ASSERT_TRUE(db_->CleanTombstones().ok() || env_->crashed()); },
      [&](const std::string&) { EXPECT_EQ(0u, db_->stats().blocks_quarantined); });
  EXPECT_GE(cuts, 5);
}

TEST_F(PowerLossTest, Retention) {
  options_.retention_ms = 5 * kHour;
  clock_.Set(0);
  int cuts = RunWithPowerCuts(
      [&] {
        clock_.Set(0);
        CommitRange({"a", "b"}, 0, 2 * kHour);
        CommitRange({"a"}, 2 * kHour, 8 * kHour);
        ASSERT_TRUE(db_->FlushHead().ok());
        clock_.Set(10 * kHour);
        model_.may_be_expired_before = 10 * kHour - options_.retention_ms;
      },
      [&] { ASSERT_TRUE(db_->Maintain().ok() || env_->crashed()); },
      [&](const std::string&) {
        // Open applies the retention too, so wherever the cut came, the
        // expired block (all of "b") is gone and nothing was quarantined.
        EXPECT_TRUE(Read("b").empty());
        EXPECT_EQ(0u, db_->stats().blocks_quarantined);
      });
  EXPECT_GE(cuts, 2);
}

TEST_F(PowerLossTest, Downsampling) {
  options_.tiers = {{5 * kMin, 24 * kHour}, {kHour, 48 * kHour}};
  auto buckets_match = [&](const std::string& where) {
    SCOPED_TRACE(where);
    // Raw samples and buckets together hold every acknowledged sample once:
    // each tier's buckets (stored ones merged with the raw samples not
    // downsampled yet) aggregate exactly the acknowledged samples.
    for (int level = 1; level <= 2; ++level) {
      for (const std::string h : {"a", "b"}) {
        std::vector<model::Sample> raw;
        for (const auto& [ts, v] : model_.acked[h]) raw.push_back({ts, v});
        std::vector<tier::Bucket> want;
        tier::Downsample(raw, options_.tiers[level - 1].resolution_ms, &want);
        std::vector<tier::Bucket> got;
        ASSERT_TRUE(
            db_->ReadBuckets(db_->head().Lookup(Cpu(h)), level, INT64_MIN, INT64_MAX, &got).ok());
        ASSERT_EQ(want.size(), got.size()) << h << " level " << level;
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_EQ(want[i].ts, got[i].ts) << h << " level " << level << " bucket " << i;
          ASSERT_EQ(want[i].count, got[i].count) << h << " level " << level << " bucket " << i;
          ASSERT_EQ(want[i].sum, got[i].sum) << h << " level " << level << " bucket " << i;
        }
      }
    }
    EXPECT_EQ(0u, db_->stats().blocks_quarantined);
  };
  int cuts = RunWithPowerCuts(
      [&] {
        // Cut and compacted at 30 h, with nothing old enough to downsample,
        // and (after three rounds) the WAL holding the old samples removed; then at 50 h, data
        // before 26 h goes into tiers, and the first tier keeps what is
        // newer than 2 h: all of it, so both tiers can be checked against
        // every sample.
        clock_.Set(30 * kHour);
        CommitRange({"a", "b"}, 10 * kHour, 20 * kHour);
        ASSERT_TRUE(db_->Maintain().ok());
        CommitRange({"a", "b"}, 24 * kHour, 28 * kHour);
        ASSERT_TRUE(db_->Maintain().ok());
        CommitRange({"a", "b"}, 32 * kHour, 36 * kHour);
        ASSERT_TRUE(db_->Maintain().ok());
        ASSERT_EQ(0u, db_->stats().blocks_downsampled);
        clock_.Set(50 * kHour);
        model_.downsampled_before = 50 * kHour - options_.tiers[0].after_ms;
      },
      [&] {
        ASSERT_TRUE(db_->Maintain().ok() || env_->crashed());
        if (!env_->crashed()) {
          EXPECT_GT(db_->stats().blocks_downsampled, 0u);
        }
      },
      buckets_match);
  EXPECT_GE(cuts, 5);
}

}  // namespace
}  // namespace espy::storage
