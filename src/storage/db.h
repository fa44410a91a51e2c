// Db: the storage engine's front door. Owns the WAL and the head; commits
// batches atomically (group commit: one fdatasync for every batch waiting)
// and answers reads through the head.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "base/log.h"
#include "model/sample_batch.h"
#include "storage/head/head.h"
#include "storage/wal/wal.h"

namespace espy::storage {

struct DbOptions {
  std::string dir;  // data directory; the WAL lives in dir/wal
  wal::FsyncPolicy fsync = wal::FsyncPolicy::kBatch;
  // Batches still waiting to be written beyond this many samples make
  // Commit fail with Unavailable (back-pressure) instead of eating memory.
  size_t max_pending_samples = 20'000'000;
  base::Logger logger = base::NullLogger();
};

struct DbStats {
  uint64_t series = 0;
  uint64_t samples_in_head = 0;
  uint64_t samples_committed = 0;  // since start
  uint64_t batches_committed = 0;
  uint64_t commit_rounds = 0;  // group commits (one fsync each under kBatch)
  uint64_t wal_bytes = 0;
  uint64_t wal_syncs = 0;
};

// Called once per committed batch, on the commit thread, after the batch is
// durable and visible, with the refs its samples went to (parallel to
// batch.samples). Must be quick: it delays the next commit round.
using CommitListener =
    std::function<void(const model::SampleBatch& batch, const std::vector<model::SeriesRef>& refs)>;

// Thread-safe.
class Db {
 public:
  // Opens (creating) options.dir, replays the WAL into the head, and starts
  // the commit thread.
  static absl::StatusOr<std::unique_ptr<Db>> Open(DbOptions options);
  ~Db();  // Close()
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  using Done = std::function<void(absl::Status)>;
  // Queues a validated batch. `done` runs exactly once, on the commit thread:
  // OK once the batch is in the WAL (synced per the fsync policy) and
  // readable; an error if it was not stored (none of it is, then).
  void Commit(model::SampleBatch batch, Done done);
  // Commit and wait (tests, tools).
  absl::Status CommitAndWait(model::SampleBatch batch);

  // Set before the first Commit; not thread-safe against commits.
  void SetCommitListener(CommitListener listener) { listener_ = std::move(listener); }

  const head::Head& head() const { return head_; }
  DbStats stats() const;

  // Stops taking commits, finishes the queued ones, syncs the WAL, and joins
  // the commit thread. Idempotent.
  void Close();

 private:
  struct Pending {
    model::SampleBatch batch;
    Done done;
  };

  explicit Db(DbOptions options);
  absl::Status Replay();
  void CommitLoop();
  // Writes one round of batches; returns the status every batch of it gets.
  absl::Status WriteRound(std::vector<Pending>& round,
                          std::vector<std::vector<model::SeriesRef>>* refs);

  const DbOptions options_;
  head::Head head_;
  std::unique_ptr<wal::WalWriter> wal_;  // touched only by the commit thread after Open
  CommitListener listener_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_samples_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // a failed WAL write stops all later commits

  std::atomic<uint64_t> samples_committed_{0};
  std::atomic<uint64_t> batches_committed_{0};
  std::atomic<uint64_t> commit_rounds_{0};
  std::jthread committer_;
};

}  // namespace espy::storage
