// Db: the storage engine's front door. Owns the WAL, the head and the
// persisted blocks; commits batches atomically (group commit: one fdatasync
// for every batch waiting) and answers reads through the head, which covers
// the blocks too. A background thread cuts old head data into blocks
// (data dir "blocks/"), truncates the WAL behind them, and drops blocks past
// the retention. Blocks that fail their checksums at open are moved to
// "quarantine/" and the rest is served. Delete removes samples by selector
// and time range: head data is rewritten (a WAL record replays the deletion
// after a crash) and blocks get a tombstones file, applied on read until
// compaction or CleanTombstones rewrites them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "base/log.h"
#include "fs/env.h"
#include "model/matcher.h"
#include "model/sample_batch.h"
#include "storage/api/appender.h"
#include "storage/api/querier.h"
#include "storage/head/head.h"
#include "storage/index/postings.h"
#include "storage/tier/rollup.h"
#include "storage/wal/wal.h"

namespace espy::storage {

struct DbOptions {
  std::string dir;  // data directory; the WAL lives in dir/wal
  wal::FsyncPolicy fsync = wal::FsyncPolicy::kBatch;
  // Batches still waiting to be written beyond this many samples make
  // Commit fail with Unavailable (back-pressure) instead of eating memory.
  size_t max_pending_samples = 20'000'000;
  base::Logger logger = base::NullLogger();
  const base::Clock* clock = base::SystemClock::Get();  // must outlive the Db
  // Every file the Db touches goes through this (tests pass an fs::MemEnv).
  // Must outlive the Db.
  fs::Env* env = fs::Env::Default();

  // Time span (ms) of a block cut from the head; chunks never straddle a
  // multiple of it. Shorter: smaller WAL and head, more blocks.
  int64_t block_range = 2 * 3600 * 1000;
  // Blocks whose newest sample is older than now - retention are deleted,
  // and WAL replay skips samples older than that; 0 keeps everything.
  int64_t retention_ms = 0;
  // Series limits; 0 means none. A batch that would exceed one fails whole
  // with ResourceExhausted naming the limit.
  uint64_t max_series = 0;
  uint64_t max_new_series_per_minute = 0;
  // How often the background thread looks for head data to persist and
  // blocks to expire; 0 runs no background thread (tests call Maintain()).
  int64_t maintenance_interval_ms = 60'000;
  // Compaction merges blocks that overlap, and the blocks of each finished
  // window of this many ms (aligned), into one block. 0 picks
  // min(24h, retention / 10) rounded down to a multiple of block_range, at
  // least block_range (then only overlapping blocks are merged).
  int64_t max_block_range = 0;
  // Samples per chunk in blocks made by compaction (head chunks hold 120).
  uint32_t compacted_chunk_samples = 1000;
  // Downsampling tiers, ascending in both resolution and age (see
  // tier/rollup.h); empty keeps raw samples until the retention. Raw blocks
  // older than the first tier's age are turned into every tier's buckets
  // and deleted; a tier's buckets are deleted once the next tier takes over.
  std::vector<tier::TierSpec> tiers;
};

struct DbStats {
  uint64_t series = 0;
  uint64_t samples_in_head = 0;
  uint64_t samples_committed = 0;  // since start
  uint64_t batches_committed = 0;
  uint64_t commit_rounds = 0;  // group commits (one fsync each under kBatch)
  uint64_t wal_bytes = 0;
  uint64_t wal_syncs = 0;
  uint64_t wal_truncations = 0;  // times old WAL segments were removed
  // Head memory (see Head::Memory): chunks, out-of-order samples, and an
  // estimate of all bytes held per series.
  uint64_t head_chunks = 0;
  uint64_t head_chunk_bytes = 0;
  uint64_t head_ooo_samples = 0;
  uint64_t head_memory_bytes = 0;
  // Persisted blocks.
  uint64_t blocks = 0;
  uint64_t block_bytes = 0;
  uint64_t block_samples = 0;
  uint64_t block_chunks = 0;
  uint64_t blocks_written = 0;           // since start
  uint64_t blocks_quarantined = 0;       // since start: corrupt blocks moved aside
  uint64_t blocks_expired = 0;           // since start: deleted by retention
  uint64_t compactions = 0;              // since start: blocks made by merging others
  uint64_t blocks_compacted = 0;         // since start: source blocks merged away
  uint64_t series_limit_rejections = 0;  // batches refused by a series limit
  uint64_t deletes = 0;                  // since start: Delete calls done
  uint64_t blocks_with_tombstones = 0;   // attached blocks with deleted ranges
  // Downsampled tiers.
  uint64_t tier_blocks = 0;
  uint64_t tier_bytes = 0;
  uint64_t tier_samples = 0;         // stored aggregates (five per bucket)
  uint64_t blocks_downsampled = 0;   // since start: raw blocks turned into tiers
  uint64_t tier_blocks_expired = 0;  // since start: tier blocks a coarser tier took over
};

// Called once per committed batch, on the commit thread, after the batch is
// durable and visible, with the refs its samples went to (parallel to
// batch.samples). Must be quick: it delays the next commit round.
using CommitListener =
    std::function<void(const model::SampleBatch& batch, const std::vector<model::SeriesRef>& refs)>;

// Thread-safe. Readers and producers above storage use it through the
// Queryable and Appender interfaces (api/); the rest is for the server's
// wiring, admin endpoints and storage's own tests.
class Db : public Queryable, public Appender {
 public:
  // Opens (creating) options.dir, replays the WAL into the head, and starts
  // the commit thread.
  static absl::StatusOr<std::unique_ptr<Db>> Open(DbOptions options);
  ~Db() override;  // Close()
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Appender. `done` runs on the commit thread: OK once the batch is in the
  // WAL (synced per the fsync policy) and readable.
  void Commit(model::SampleBatch batch, Done done) override;
  SeriesId Lookup(const model::Labels& labels) const override;

  // Queryable (db_querier.cc): reads of the head, the blocks and the tiers.
  // Cheap to open (no snapshot is taken); reads never block commits.
  absl::StatusOr<std::unique_ptr<storage::Querier>> Querier(int64_t mint,
                                                            int64_t maxt) const override;

  // Set before the first Commit; not thread-safe against commits.
  void SetCommitListener(CommitListener listener) { listener_ = std::move(listener); }

  // The head, for storage's own reads and tests; code above storage reads
  // through Querier.
  const head::Head& head() const { return head_; }
  DbStats stats() const;

  // One round of background work, also run by the background thread:
  // persists head data older than (newest - block_range / 2), aligned down
  // to the block range, truncates the WAL behind it, drops expired blocks,
  // and compacts blocks (see DbOptions::max_block_range).
  absl::Status Maintain();
  // Persists all head data to blocks now (tests, tools, shutdown).
  absl::Status FlushHead();

  // Deletes the samples of every series matching all `matchers` with
  // mint <= ts <= maxt, in the head and in the blocks. Durable when it
  // returns OK: blocks' tombstones files and a WAL record (synced whatever
  // the fsync policy) are on disk. Every read after it leaves those samples
  // out; samples written after it are kept, also inside [mint, maxt].
  // InvalidArgument for no matchers or mint > maxt. Waits for a running
  // block cut or compaction.
  absl::Status Delete(const std::vector<model::Matcher>& matchers, int64_t mint, int64_t maxt);
  // Rewrites every block that has tombstones without the deleted samples
  // (merging it with the blocks its time range overlaps, so that no later
  // write is reordered) and drops its tombstones. A block left with no
  // samples is removed. Crash-safe: the rewritten block is in place before
  // the old one is deleted, and both together read the same.
  absl::Status CleanTombstones();

  // ---- Downsampled tiers (DbOptions::tiers) ----

  const std::vector<tier::TierSpec>& tiers() const { return options_.tiers; }
  // The tier (1-based; 0 for raw samples) a read from mint with this step
  // should use: raw while every sample since mint is still raw; otherwise
  // the coarsest tier whose resolution is at most both step_ms and
  // max_resolution_ms, but never one that no longer holds data at mint.
  int TierFor(int64_t mint, int64_t step_ms, int64_t max_resolution_ms) const;
  // Appends to *out the buckets of series `ref` at tier `level` (>= 1) whose
  // timestamps (their last samples') lie in [mint, maxt]: the tier's stored buckets merged with
  // the raw samples not yet downsampled, aggregated on the fly. A
  // consistent snapshot: a concurrent downsampling neither doubles nor
  // drops a sample.
  absl::Status ReadBuckets(model::SeriesRef ref, int level, int64_t mint, int64_t maxt,
                           std::vector<tier::Bucket>* out) const;

  // Stops taking commits, finishes the queued ones, syncs the WAL, and joins
  // the commit thread. Idempotent.
  void Close();

 private:
  struct Pending {
    // batch.refs is parallel to batch.series: the head's ref of each, given
    // by the producer or looked up by the committing thread (0: unknown
    // then), so the commit thread need not hash and compare labels. Series
    // are never removed from the head, so a ref found stays right.
    model::SampleBatch batch;
    Done done;
    std::function<void()> task;  // if set: run on the commit thread instead
  };
  // A run of WAL segments written between two rotations, and the newest
  // sample timestamp in them: once blocks hold everything before a cut
  // above max_ts, segments before `next_segment` can go.
  struct WalGroup {
    uint64_t next_segment;
    int64_t max_ts;
  };

  explicit Db(DbOptions options);
  absl::Status Replay();
  absl::Status OpenBlocks();
  // Moves a corrupt block dir from `parent` to "quarantine/".
  void Quarantine(const std::string& parent, const std::string& name, const absl::Status& why);
  void CommitLoop();
  void MaintenanceLoop(std::stop_token stop);
  // Writes one round of batches; sets each batch's status (a batch refused
  // by a limit fails alone). Returns a WAL error, which fails them all.
  absl::Status WriteRound(std::vector<Pending>& round,
                          std::vector<std::vector<model::SeriesRef>>* refs,
                          std::vector<absl::Status>* statuses);
  // Checks the series limits for `new_series` more series.
  absl::Status CheckSeriesLimits(size_t new_series);
  // Runs fn on the commit thread between rounds and waits for it.
  absl::Status RunOnCommitThread(std::function<void()> fn);
  // Starts a new WAL segment (commit thread only).
  absl::Status RotateWal();
  // Publishes the WAL's counters for stats() (commit thread, or after it
  // was joined).
  void PublishWalStats();
  // Freezes head data below cut_t (unless a failed earlier cut left frozen
  // data), writes it to blocks, attaches them and truncates the WAL.
  absl::Status CutBlocks(int64_t cut_t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  absl::Status ApplyRetention() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  // Merges the blocks PlanCompactions picks; windows ending at or before
  // complete_before are done. Sources are detached and deleted once the
  // merged block is in place.
  absl::Status Compact(int64_t complete_before) ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  // Merges `sources` (ascending seq) into one new block, attaches it and
  // deletes the sources; a merge left with no samples just deletes them.
  // `why` names the caller in logs; `crash_point` is hit once the new block
  // is in place.
  absl::Status MergeBlocks(const std::vector<std::shared_ptr<const block::Block>>& sources,
                           std::string_view why, std::string_view crash_point)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  // Applies a WAL tombstones record during replay.
  void ReplayTombstone(std::string_view payload);
  int64_t MaxBlockRange() const;
  void RemoveBlockDir(const std::string& name) { RemoveDir(BlocksDir(), name); }
  void RemoveDir(const std::string& parent, const std::string& name);
  std::string BlocksDir() const { return options_.dir + "/blocks"; }

  // Tiers (db_tiers.cc). A downsampled block, with the five series ids
  // (one per tier::Rollup) of each head ref it holds.
  struct TierBlock {
    std::shared_ptr<const block::Block> block;
    absl::flat_hash_map<model::SeriesRef, std::array<uint32_t, tier::kNumRollups>> ids;
  };
  struct TierState {
    std::vector<std::vector<std::shared_ptr<const TierBlock>>> levels;  // per tier, by seq
    // Raw samples before this were downsampled (up to backfill not yet
    // cut and downsampled); INT64_MIN when none were.
    int64_t raw_from = INT64_MIN;
  };
  std::string TierDir(size_t i) const;
  // Tier i (0-based) keeps blocks whose data reaches back to here: the next
  // tier's age, or the retention.
  int64_t TierCutoff(size_t i, int64_t now) const;
  // Opens the tier dirs and finishes or undoes a downsampling a crash cut short.
  absl::Status OpenTiers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  absl::StatusOr<std::shared_ptr<const TierBlock>> OpenTierBlock(size_t level,
                                                                 const std::string& name);
  // Turns raw blocks older than the first tier's age into tier blocks.
  absl::Status Downsample() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  absl::Status DownsampleBlock(const std::shared_ptr<const block::Block>& raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  // Drops tier blocks a coarser tier (or the retention) has taken over.
  absl::Status ExpireTiers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);
  // Replaces the tier state and detaches raw blocks, atomically for ReadBuckets.
  void SwapTiers(std::shared_ptr<const TierState> next, const std::vector<uint64_t>& remove_raw);
  std::shared_ptr<const TierState> Tiers() const;
  // Adds tombstones to the tier blocks for a Delete.
  absl::Status DeleteFromTiers(const index::Postings& refs, int64_t mint, int64_t maxt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(maint_mu_);

  const DbOptions options_;
  head::Head head_;
  std::unique_ptr<wal::WalWriter> wal_;  // touched only by the commit thread after Open
  // The WAL's counters since start, published by the commit thread for
  // stats() (which must not touch wal_: a rotation replaces it), and the
  // counts of the writers rotation closed (commit thread only).
  std::atomic<uint64_t> wal_bytes_{0};
  std::atomic<uint64_t> wal_syncs_{0};
  uint64_t wal_bytes_closed_ = 0;
  uint64_t wal_syncs_closed_ = 0;
  CommitListener listener_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_samples_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // a failed WAL write stops all later commits

  std::atomic<uint64_t> samples_committed_{0};
  std::atomic<uint64_t> batches_committed_{0};
  std::atomic<uint64_t> commit_rounds_{0};

  // Commit thread only.
  uint32_t wal_gen_ = 1;  // series are re-logged once per generation
  int64_t group_max_ts_ = INT64_MIN;
  int64_t minute_start_ = 0;
  uint64_t new_series_this_minute_ = 0;

  mutable absl::Mutex groups_mu_;
  std::deque<WalGroup> wal_groups_ ABSL_GUARDED_BY(groups_mu_);

  absl::Mutex maint_mu_;  // one Maintain/FlushHead at a time
  uint64_t next_seq_ ABSL_GUARDED_BY(maint_mu_) = 1;
  bool frozen_pending_ ABSL_GUARDED_BY(maint_mu_) = false;
  int64_t frozen_cut_t_ ABSL_GUARDED_BY(maint_mu_) = 0;
  // The WAL segment started when the frozen data was frozen: the frozen
  // samples are all in segments before it.
  uint64_t frozen_wal_segment_ = 0;
  uint64_t wal_removed_before_ ABSL_GUARDED_BY(maint_mu_) = 0;

  std::atomic<uint64_t> wal_truncations_{0};
  std::atomic<uint64_t> blocks_written_{0};
  std::atomic<uint64_t> blocks_quarantined_{0};
  std::atomic<uint64_t> blocks_expired_{0};
  std::atomic<uint64_t> compactions_{0};
  std::atomic<uint64_t> blocks_compacted_{0};
  std::atomic<uint64_t> limit_rejections_{0};
  std::atomic<uint64_t> deletes_{0};
  std::atomic<uint64_t> blocks_downsampled_{0};
  std::atomic<uint64_t> tier_blocks_expired_{0};

  // Held shared by ReadBuckets and exclusively while SwapTiers changes
  // the tiers and the raw blocks together.
  mutable absl::Mutex tier_mu_;
  std::shared_ptr<const TierState> tier_state_ ABSL_GUARDED_BY(tier_mu_);

  std::jthread committer_;
  std::jthread maintainer_;
  absl::Mutex stop_mu_;
  bool stop_maintenance_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace espy::storage
