#include "storage/db.h"

#include <map>

#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "base/threads.h"
#include "fmt/format.h"
#include "storage/chunk/chunk.h"
#include "storage/compact.h"
#include "storage/crash_point.h"
#include "storage/record/record.h"

namespace espy::storage {

namespace {

int64_t Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

int64_t AlignDown(int64_t t, int64_t range) {
  int64_t r = t / range;
  if (t % range < 0) --r;
  return r * range;
}

head::HeadOptions HeadOptionsFor(const DbOptions& o) {
  head::HeadOptions h;
  h.block_range = o.block_range;
  return h;
}

}  // namespace

Db::Db(DbOptions options) : options_(std::move(options)), head_(HeadOptionsFor(options_)) {
  auto state = std::make_shared<TierState>();
  state->levels.resize(options_.tiers.size());
  absl::MutexLock lock(&tier_mu_);
  tier_state_ = std::move(state);
}

Db::~Db() { Close(); }

absl::StatusOr<std::unique_ptr<Db>> Db::Open(DbOptions options) {
  if (options.env == nullptr) return absl::InvalidArgumentError("DbOptions.env is null");
  if (absl::Status s = fs::CreateDirs(options.env, options.dir); !s.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("data dir {}: cannot create: {}", options.dir, s.message()));
  }
  if (options.block_range <= 0) {
    return absl::InvalidArgumentError(fmt::format("block_range {}: want > 0", options.block_range));
  }
  for (size_t i = 0; i < options.tiers.size(); ++i) {
    const tier::TierSpec& t = options.tiers[i];
    const std::string name = fmt::format("tier {} ({}ms:{}ms)", i + 1, t.resolution_ms, t.after_ms);
    if (t.resolution_ms <= 0 || t.after_ms <= 0) {
      return absl::InvalidArgumentError(fmt::format("{}: want a resolution and age > 0", name));
    }
    if (i > 0 && (t.resolution_ms <= options.tiers[i - 1].resolution_ms ||
                  t.after_ms <= options.tiers[i - 1].after_ms)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: want a coarser resolution and a greater age than the tier before", name));
    }
    if (options.retention_ms > 0 && t.after_ms >= options.retention_ms) {
      return absl::InvalidArgumentError(
          fmt::format("{}: its age is not below the retention ({}ms), so it would never hold data",
                      name, options.retention_ms));
    }
  }
  std::unique_ptr<Db> db(new Db(std::move(options)));
  ESPY_RETURN_IF_ERROR(db->Replay());
  ESPY_RETURN_IF_ERROR(db->OpenBlocks());
  wal::WalOptions wal_options;
  wal_options.dir = db->options_.dir + "/wal";
  wal_options.logger = db->options_.logger;
  wal_options.env = db->options_.env;
  ESPY_ASSIGN_OR_RETURN(db->wal_, wal::WalWriter::Open(wal_options));
  {
    // Everything replayed is in segments before the one just opened.
    absl::MutexLock lock(&db->groups_mu_);
    db->wal_groups_.push_back({db->wal_->current_segment(), db->group_max_ts_});
    db->group_max_ts_ = INT64_MIN;
  }
  {
    absl::MutexLock lock(&db->maint_mu_);
    ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments,
                          wal::ListSegments(db->options_.env, wal_options.dir));
    db->wal_removed_before_ = segments.empty() ? 0 : segments.front();
    ESPY_RETURN_IF_ERROR(db->ApplyRetention());
  }
  db->minute_start_ = db->options_.clock->NowMillis();
  db->committer_ = std::jthread([raw = db.get()] {
    base::SetThreadName("espy-commit");
    raw->CommitLoop();
  });
  if (db->options_.maintenance_interval_ms > 0) {
    db->maintainer_ = std::jthread([raw = db.get()](std::stop_token stop) {
      base::SetThreadName("espy-maintain");
      raw->MaintenanceLoop(stop);
    });
  }
  return db;
}

absl::Status Db::Replay() {
  fs::Env* const env = options_.env;
  auto start = std::chrono::steady_clock::now();
  std::vector<record::RefSeries> series;
  std::vector<record::RefSample> samples;
  uint64_t orphans = 0, bad_records = 0, replayed = 0, expired = 0;
  // Samples the retention has dropped (or would drop at once) stay dropped:
  // a restart must not bring back what a read no longer returned.
  const int64_t oldest_kept =
      options_.retention_ms > 0 ? options_.clock->NowMillis() - options_.retention_ms : INT64_MIN;
  ESPY_ASSIGN_OR_RETURN(
      wal::ReplayStats stats,
      wal::ReplayWithPositions(
          env, options_.dir + "/wal", options_.logger,
          [&](std::string_view payload, const wal::RecordPosition& pos) {
            if (record::TypeOf(payload) == record::RecordType::kTombstones) {
              // In WAL order: it removes what was replayed before it, only.
              ReplayTombstone(payload);
              return absl::OkStatus();
            }
            // A record that passed its CRC but does not decode was written by a
            // broken build; skip it rather than refuse to start.
            if (absl::Status s = record::DecodeBatch(payload, &series, &samples); !s.ok()) {
              if (bad_records++ == 0) {
                base::Error(options_.logger, "skipping WAL record", "segment",
                            wal::SegmentFileName(pos.segment), "offset", pos.offset, "err",
                            s.message());
              }
              return absl::OkStatus();
            }
            for (record::RefSeries& s : series) {
              if (absl::Status st = head_.Recover(s.ref, std::move(s.labels)); !st.ok()) {
                base::Error(options_.logger, "skipping WAL series", "err", st.message());
              } else {
                head_.MarkLogged(s.ref, wal_gen_);
              }
            }
            for (const record::RefSample& s : samples) {
              // Samples whose series record was lost to corruption cannot be
              // placed; they are counted and reported.
              if (!head_.Exists(s.ref)) {
                ++orphans;
                continue;
              }
              if (s.ts < oldest_kept) {
                ++expired;
                continue;
              }
              head_.Append(s.ref, s.ts, s.value);
              group_max_ts_ = std::max(group_max_ts_, s.ts);
              ++replayed;
            }
            return absl::OkStatus();
          }));
  if (orphans > 0 || bad_records > 0) {
    base::Error(options_.logger, "WAL replay dropped data", "orphan_samples", orphans,
                "bad_records", bad_records);
  }
  base::Info(options_.logger, "replayed WAL", "segments", stats.segments, "records", stats.records,
             "samples", replayed, "series", head_.num_series(), "expired_samples", expired,
             "duration_ms", Millis(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

void Db::ReplayTombstone(std::string_view payload) {
  absl::StatusOr<record::Tombstone> t = record::DecodeTombstone(payload);
  if (!t.ok()) {
    base::Error(options_.logger, "skipping WAL tombstones record", "err", t.status().message());
    return;
  }
  for (model::SeriesRef ref : head_.Select(t->matchers)) head_.Delete(ref, t->mint, t->maxt);
}

void Db::Commit(model::SampleBatch batch, Done done) {
  // Here rather than on the commit thread, the one serial step. Series the
  // producer gave by ref keep it.
  head_.LookupAll(batch.series, &batch.refs);
  absl::Status reject;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) {
      reject = absl::UnavailableError("storage is shutting down");
    } else if (!broken_.ok()) {
      reject = broken_;
    } else if (queued_samples_ > 0 &&
               queued_samples_ + batch.samples.size() > options_.max_pending_samples) {
      reject = absl::UnavailableError(
          fmt::format("write queue full ({} samples waiting); retry later", queued_samples_));
    } else {
      queued_samples_ += batch.samples.size();
      queue_.push_back({std::move(batch), std::move(done)});
      return;
    }
  }
  done(reject);
}

absl::Status Db::CheckSeriesLimits(size_t new_series) {
  if (new_series == 0) return absl::OkStatus();
  if (options_.max_series > 0 && head_.num_series() + new_series > options_.max_series) {
    return absl::ResourceExhaustedError(
        fmt::format("series limit max_series={} reached ({} series; this batch adds {})",
                    options_.max_series, head_.num_series(), new_series));
  }
  if (options_.max_new_series_per_minute > 0) {
    const int64_t now = options_.clock->NowMillis();
    if (now - minute_start_ >= 60'000 || now < minute_start_) {
      minute_start_ = now;
      new_series_this_minute_ = 0;
    }
    if (new_series_this_minute_ + new_series > options_.max_new_series_per_minute) {
      return absl::ResourceExhaustedError(fmt::format(
          "series limit max_new_series_per_minute={} reached ({} new this minute; this batch "
          "adds {})",
          options_.max_new_series_per_minute, new_series_this_minute_, new_series));
    }
    new_series_this_minute_ += new_series;
  }
  return absl::OkStatus();
}

absl::Status Db::WriteRound(std::vector<Pending>& round,
                            std::vector<std::vector<model::SeriesRef>>* refs,
                            std::vector<absl::Status>* statuses) {
  std::vector<record::RefSeries> new_series;
  std::vector<record::RefSample> samples;
  std::vector<uint32_t> first_use;
  std::string payload;
  refs->assign(round.size(), {});
  statuses->assign(round.size(), absl::OkStatus());
  for (size_t b = 0; b < round.size(); ++b) {
    model::SampleBatch& batch = round[b].batch;
    new_series.clear();
    samples.clear();
    // Commit sized it; 0 means the series is given by its labels.
    std::vector<model::SeriesRef>& ref_of_series = batch.refs;
    ref_of_series.resize(batch.series.size());
    size_t missing = 0;
    for (size_t i = 0; i < batch.series.size(); ++i) {
      // Unknown when committed; another batch may have created it since.
      if (ref_of_series[i] == 0) ref_of_series[i] = head_.Lookup(batch.series[i]);
      if (ref_of_series[i] == 0) ++missing;
    }
    if (absl::Status s = CheckSeriesLimits(missing); !s.ok()) {
      limit_rejections_.fetch_add(1, std::memory_order_relaxed);
      (*statuses)[b] = std::move(s);
      continue;
    }
    if (missing > 0) {
      for (size_t i = 0; i < batch.series.size(); ++i) {
        model::SeriesRef& ref = ref_of_series[i];
        if (ref == 0) ref = head_.Lookup(batch.series[i]);  // the batch may repeat a series
        if (ref == 0) ref = head_.Create(batch.series[i]);
      }
    }
    // A series is (re)written to the WAL the first time it is used in each
    // WAL generation: new, known only from blocks, or logged in segments
    // that truncation removed.
    first_use.clear();
    head_.MarkAllLogged(ref_of_series, wal_gen_, &first_use);
    for (uint32_t i : first_use) {
      // A series given by ref has no labels in the batch; the head has them.
      const model::SeriesRef ref = ref_of_series[i];
      new_series.push_back(
          {ref, batch.series[i].empty() ? head_.SeriesLabels(ref) : batch.series[i]});
    }
    std::vector<model::SeriesRef>& sample_refs = (*refs)[b];
    sample_refs.resize(batch.samples.size());
    samples.reserve(batch.samples.size());
    for (size_t i = 0; i < batch.samples.size(); ++i) {
      const model::BatchSample& s = batch.samples[i];
      sample_refs[i] = ref_of_series[s.series];
      samples.push_back({sample_refs[i], s.ts, s.value});
      group_max_ts_ = std::max(group_max_ts_, s.ts);
    }
    payload.clear();
    record::EncodeBatch(new_series, samples, &payload);
    ESPY_RETURN_IF_ERROR(wal_->AddRecord(payload));
    if (options_.fsync == wal::FsyncPolicy::kAlways) ESPY_RETURN_IF_ERROR(wal_->Sync());
  }
  if (options_.fsync == wal::FsyncPolicy::kBatch) return wal_->Sync();
  return wal_->Flush();
}

void Db::CommitLoop() {
  std::vector<Pending> round;
  std::vector<std::vector<model::SeriesRef>> refs;
  std::vector<absl::Status> statuses;
  while (true) {
    round.clear();
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // closing and drained
      if (queue_.front().task) {
        task = std::move(queue_.front().task);
        queue_.pop_front();
      } else {
        // Everything that queued while the last round was syncing goes into
        // this round (up to the next task): that is the group commit.
        while (!queue_.empty() && !queue_.front().task) {
          queued_samples_ -= queue_.front().batch.samples.size();
          round.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    if (task) {
      task();
      PublishWalStats();
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (!broken_.ok()) {
        for (Pending& p : round) p.done(broken_);
        continue;
      }
    }
    absl::Status status = WriteRound(round, &refs, &statuses);
    if (!status.ok()) {
      base::Error(options_.logger, "WAL write failed; refusing further writes", "err",
                  status.message());
      absl::MutexLock lock(&mu_);
      broken_ = absl::UnavailableError(fmt::format("WAL write failed: {}", status.message()));
      statuses.assign(round.size(), broken_);
    } else {
      PublishWalStats();
      // Durable: now make it visible, in commit order so that the later of
      // two writes to one series and timestamp wins, as on replay.
      size_t committed = 0;
      for (size_t b = 0; b < round.size(); ++b) {
        if (!statuses[b].ok()) continue;
        const model::SampleBatch& batch = round[b].batch;
        head_.AppendAll(refs[b], batch.samples);
        samples_committed_.fetch_add(batch.samples.size(), std::memory_order_relaxed);
        ++committed;
        if (listener_) listener_(batch, refs[b]);
      }
      batches_committed_.fetch_add(committed, std::memory_order_relaxed);
      commit_rounds_.fetch_add(1, std::memory_order_relaxed);
    }
    for (size_t b = 0; b < round.size(); ++b) round[b].done(statuses[b]);
  }
}

absl::Status Db::RunOnCommitThread(std::function<void()> fn) {
  absl::Mutex mu;
  bool finished = false;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::UnavailableError("storage is shutting down");
    Pending p;
    p.task = [&] {
      fn();
      absl::MutexLock l(&mu);
      finished = true;
    };
    queue_.push_back(std::move(p));
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&finished));
  return absl::OkStatus();
}

void Db::PublishWalStats() {
  uint64_t bytes = wal_bytes_closed_, syncs = wal_syncs_closed_;
  if (wal_ != nullptr) {
    bytes += wal_->bytes_written();
    syncs += wal_->syncs();
  }
  wal_bytes_.store(bytes, std::memory_order_relaxed);
  wal_syncs_.store(syncs, std::memory_order_relaxed);
}

absl::Status Db::RotateWal() {
  ESPY_RETURN_IF_ERROR(wal_->Sync());
  wal_bytes_closed_ += wal_->bytes_written();
  wal_syncs_closed_ += wal_->syncs();
  wal_.reset();
  wal::WalOptions wal_options;
  wal_options.dir = options_.dir + "/wal";
  wal_options.logger = options_.logger;
  wal_options.env = options_.env;
  ESPY_ASSIGN_OR_RETURN(wal_, wal::WalWriter::Open(wal_options));
  absl::MutexLock lock(&groups_mu_);
  wal_groups_.push_back({wal_->current_segment(), group_max_ts_});
  group_max_ts_ = INT64_MIN;
  ++wal_gen_;
  return absl::OkStatus();
}

absl::Status Db::OpenBlocks() {
  fs::Env* env = options_.env;
  if (absl::Status s = fs::CreateDirs(env, BlocksDir()); !s.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("blocks dir {}: cannot create: {}", BlocksDir(), s.message()));
  }
  ESPY_ASSIGN_OR_RETURN(std::vector<std::string> entries, env->ListDir(BlocksDir()));
  std::vector<std::string> names;
  for (const std::string& name : entries) {
    if (name.ends_with(".tmp") || name.ends_with(".del")) {
      // Half-written (crash before rename) or half-deleted: never read.
      base::Warn(options_.logger, "removing unfinished block dir", "dir", name);
      ESPY_RETURN_IF_ERROR(env->RemoveTree(BlocksDir() + "/" + name));
      continue;
    }
    if (block::ParseDirName(name) != 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::shared_ptr<const block::Block>> blocks;
  uint64_t max_seq = 0;
  for (const std::string& name : names) {
    max_seq = std::max(max_seq, block::ParseDirName(name));
    absl::StatusOr<std::shared_ptr<block::Block>> b =
        block::Block::Open(options_.env, BlocksDir() + "/" + name);
    if (!b.ok()) {
      Quarantine(BlocksDir(), name, b.status());
      continue;
    }
    blocks.push_back(*std::move(b));
  }
  head_.ReplaceBlocks(blocks, {});
  absl::MutexLock lock(&maint_mu_);
  next_seq_ = max_seq + 1;
  base::Info(options_.logger, "opened blocks", "blocks", blocks.size(), "series",
             head_.num_series());
  return OpenTiers();
}

void Db::Quarantine(const std::string& parent, const std::string& name, const absl::Status& why) {
  fs::Env* env = options_.env;
  std::string qdir = options_.dir + "/quarantine";
  std::string target = qdir + "/" + name;
  for (int i = 1; fs::Exists(env, target); ++i) target = fmt::format("{}/{}.{}", qdir, name, i);
  // Synced both ways, so that a power cut neither brings the block back nor
  // loses it.
  absl::Status moved = fs::CreateDirs(env, qdir);
  if (moved.ok()) moved = env->Rename(parent + "/" + name, target);
  if (moved.ok()) moved = env->SyncDir(qdir);
  if (moved.ok()) moved = env->SyncDir(parent);
  blocks_quarantined_.fetch_add(1, std::memory_order_relaxed);
  if (moved.ok()) {
    base::Error(options_.logger, "corrupt block quarantined", "block", name, "moved_to", target,
                "err", why.message());
  } else {
    base::Error(options_.logger, "corrupt block quarantined", "block", name, "moved_to", target,
                "err", why.message(), "move_failed", moved.message());
  }
}

void Db::RemoveDir(const std::string& parent, const std::string& name) {
  fs::Env* env = options_.env;
  // Renamed first so that a crash half-way through the delete leaves a
  // ".del" dir that the next Open removes, never a half block it would read.
  std::string from = parent + "/" + name, to = from + ".del";
  absl::Status s = env->Rename(from, to);
  if (s.ok()) {
    if (absl::Status synced = env->SyncDir(parent); !synced.ok()) {
      base::Warn(options_.logger, "sync blocks dir failed", "err", synced.message());
    }
    CrashPoint("block_delete_after_rename");
    s = env->RemoveTree(to);
  }
  if (!s.ok()) {
    base::Error(options_.logger, "cannot delete block", "block", name, "err", s.message());
  }
}

absl::Status Db::CutBlocks(int64_t cut_t) {
  fs::Env* const env = options_.env;
  auto start = std::chrono::steady_clock::now();
  if (!frozen_pending_) {
    absl::Status rotate;
    uint64_t frozen = 0;
    ESPY_RETURN_IF_ERROR(RunOnCommitThread([&] {
      // On the commit thread, between rounds: every record in the WAL so
      // far has reached the head, so the segments before the new one hold
      // only data that is frozen now, persisted already, or at/after cut_t.
      frozen = head_.Freeze(cut_t);
      rotate = RotateWal();
      // A failed rotation can leave no WAL writer at all (its Open failed).
      if (rotate.ok()) frozen_wal_segment_ = wal_->current_segment();
      if (!rotate.ok()) {
        absl::MutexLock lock(&mu_);
        broken_ = absl::UnavailableError(fmt::format("WAL rotation failed: {}", rotate.message()));
      }
    }));
    ESPY_RETURN_IF_ERROR(rotate);
    frozen_pending_ = true;
    frozen_cut_t_ = cut_t;
    if (frozen == 0) {
      head_.ClearFrozen();
      frozen_pending_ = false;
    }
  }
  std::vector<std::shared_ptr<const block::Block>> written;
  if (frozen_pending_) {
    // One block per block range the frozen data touches (backfill can touch many).
    std::map<int64_t, std::unique_ptr<block::BlockWriter>> writers;
    std::map<int64_t, std::vector<std::string_view>> by_range;
    std::vector<int64_t> ts;
    std::vector<double> vs;
    std::vector<model::Sample> samples;
    std::vector<std::string> joined;
    uint64_t seq = next_seq_;
    ESPY_RETURN_IF_ERROR(
        head_.ForEachFrozen([&](model::SeriesRef, const model::Labels& labels,
                                const std::vector<std::string>& chunks) -> absl::Status {
          by_range.clear();
          for (const std::string& c : chunks) {
            ESPY_ASSIGN_OR_RETURN(chunk::ChunkHeader h, chunk::ReadChunkHeader(c));
            by_range[AlignDown(h.min_time, options_.block_range)].push_back(c);
          }
          for (auto& [range, cs] : by_range) {
            auto& w = writers[range];
            if (w == nullptr) {
              ESPY_ASSIGN_OR_RETURN(w, block::BlockWriter::Create(env, BlocksDir(), seq++, 1));
              w->SetWalSegment(frozen_wal_segment_);
            }
            if (cs.size() > 1) {
              // The head's short chunks joined into long ones: each chunk
              // costs a header, a full first sample and an index entry.
              ts.clear();
              vs.clear();
              for (std::string_view c : cs) ESPY_RETURN_IF_ERROR(chunk::DecodeChunk(c, &ts, &vs));
              samples.clear();
              for (size_t i = 0; i < ts.size(); ++i) samples.push_back({ts[i], vs[i]});
              joined.clear();
              ESPY_RETURN_IF_ERROR(
                  EncodeChunks(samples, options_.compacted_chunk_samples, &joined));
              cs.assign(joined.begin(), joined.end());
            }
            ESPY_RETURN_IF_ERROR(w->AddSeries(labels, cs));
          }
          return absl::OkStatus();
        }));
    next_seq_ = seq;
    for (auto& [range, w] : writers) {
      ESPY_ASSIGN_OR_RETURN(block::BlockMeta meta, w->Finish());
      ESPY_ASSIGN_OR_RETURN(std::shared_ptr<block::Block> b,
                            block::Block::Open(options_.env, BlocksDir() + "/" + meta.DirName()));
      written.push_back(std::move(b));
    }
    head_.ReplaceBlocks(written, {});
    head_.ClearFrozen();
    frozen_pending_ = false;
    blocks_written_.fetch_add(written.size(), std::memory_order_relaxed);
  }
  // Truncate the WAL behind the persisted data.
  uint64_t remove_before = 0;
  {
    absl::MutexLock lock(&groups_mu_);
    // Closed groups only: the open segment is never in the deque.
    while (!wal_groups_.empty() && wal_groups_.front().max_ts < frozen_cut_t_) {
      remove_before = wal_groups_.front().next_segment;
      wal_groups_.pop_front();
    }
  }
  if (remove_before > wal_removed_before_) {
    wal_removed_before_ = remove_before;
    CrashPoint("wal_truncate_before_remove");
    ESPY_RETURN_IF_ERROR(
        wal::RemoveSegmentsBefore(options_.env, options_.dir + "/wal", remove_before));
    wal_truncations_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!written.empty()) {
    base::Info(options_.logger, "persisted head data", "cut_before", frozen_cut_t_, "blocks",
               written.size(), "wal_removed_before", remove_before, "duration_ms",
               Millis(std::chrono::steady_clock::now() - start));
  }
  return absl::OkStatus();
}

absl::Status Db::ApplyRetention() {
  if (options_.retention_ms <= 0) return absl::OkStatus();
  const int64_t cutoff = options_.clock->NowMillis() - options_.retention_ms;
  std::vector<uint64_t> expired;
  std::vector<std::string> names;
  for (const auto& e : head_.Blocks()) {
    if (e->block->meta().maxt < cutoff) {
      expired.push_back(e->block->meta().seq);
      names.push_back(e->block->meta().DirName());
    }
  }
  if (expired.empty()) return absl::OkStatus();
  head_.ReplaceBlocks({}, expired);
  for (const std::string& name : names) RemoveBlockDir(name);
  blocks_expired_.fetch_add(expired.size(), std::memory_order_relaxed);
  base::Info(options_.logger, "retention dropped blocks", "blocks", expired.size(), "older_than_ms",
             cutoff);
  return absl::OkStatus();
}

int64_t Db::MaxBlockRange() const {
  int64_t r = options_.max_block_range;
  if (r <= 0) {
    r = 24 * 3600 * 1000;
    if (options_.retention_ms > 0) r = std::min(r, options_.retention_ms / 10);
  }
  return std::max(options_.block_range, AlignDown(r, options_.block_range));
}

absl::Status Db::Compact(int64_t complete_before) {
  std::vector<std::shared_ptr<const head::BlockEntry>> entries = head_.Blocks();
  std::vector<block::BlockMeta> metas;
  metas.reserve(entries.size());
  for (const auto& e : entries) metas.push_back(e->block->meta());
  for (const std::vector<size_t>& group :
       PlanCompactions(metas, MaxBlockRange(), complete_before)) {
    std::vector<std::shared_ptr<const block::Block>> sources;
    for (size_t i : group) sources.push_back(entries[i]->block);
    ESPY_RETURN_IF_ERROR(MergeBlocks(sources, "compacted blocks", "compact_after_rename"));
  }
  return absl::OkStatus();
}

absl::Status Db::MergeBlocks(const std::vector<std::shared_ptr<const block::Block>>& sources,
                             std::string_view why, std::string_view crash_point) {
  auto start = std::chrono::steady_clock::now();
  std::vector<uint64_t> seqs;
  uint64_t source_bytes = 0;
  for (const auto& src : sources) {
    seqs.push_back(src->meta().seq);
    source_bytes += src->meta().chunks_bytes + src->meta().index_bytes;
  }
  // The merged block gets the newest seq: no other block overlaps the
  // sources (the callers' contract), so no write is reordered. A crash after
  // the rename leaves it beside its sources, holding the same samples (the
  // sources' tombstones still hide what it left out), the merged one
  // winning; the next round merges them again.
  absl::StatusOr<block::BlockMeta> meta = CompactBlocks(
      options_.env, BlocksDir(), sources, next_seq_++, options_.compacted_chunk_samples);
  if (absl::IsNotFound(meta.status())) {
    // Every sample was deleted: the sources just go.
    head_.ReplaceBlocks({}, seqs);
    for (const auto& src : sources) RemoveBlockDir(src->meta().DirName());
    blocks_compacted_.fetch_add(sources.size(), std::memory_order_relaxed);
    base::Info(options_.logger, why, "sources", sources.size(), "block", "none", "reason",
               "no samples left");
    return absl::OkStatus();
  }
  ESPY_RETURN_IF_ERROR(meta.status());
  CrashPoint(crash_point);
  absl::StatusOr<std::shared_ptr<block::Block>> merged =
      block::Block::Open(options_.env, BlocksDir() + "/" + meta->DirName());
  if (!merged.ok()) {
    // Keep the sources; drop the block that does not read back.
    RemoveBlockDir(meta->DirName());
    return absl::DataLossError(fmt::format("merged block {} does not read back: {}",
                                           meta->DirName(), merged.status().message()));
  }
  head_.ReplaceBlocks({*merged}, seqs);
  for (const auto& src : sources) RemoveBlockDir(src->meta().DirName());
  compactions_.fetch_add(1, std::memory_order_relaxed);
  blocks_compacted_.fetch_add(sources.size(), std::memory_order_relaxed);
  base::Info(options_.logger, why, "sources", sources.size(), "block", meta->DirName(), "mint",
             meta->mint, "maxt", meta->maxt, "series", meta->num_series, "samples",
             meta->num_samples, "bytes_before", source_bytes, "bytes_after",
             meta->chunks_bytes + meta->index_bytes, "duration_ms",
             Millis(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

absl::Status Db::Delete(const std::vector<model::Matcher>& matchers, int64_t mint, int64_t maxt) {
  if (matchers.empty()) return absl::InvalidArgumentError("delete: no matchers");
  if (mint > maxt) {
    return absl::InvalidArgumentError(fmt::format("delete: start {} is after end {}", mint, maxt));
  }
  {
    // Refused up front, so that no block gets tombstones for a delete the
    // head part of which could not be logged.
    absl::MutexLock l(&mu_);
    if (closing_) return absl::UnavailableError("storage is shutting down");
    if (!broken_.ok()) return broken_;
  }
  auto start = std::chrono::steady_clock::now();
  // No block is cut, compacted or expired meanwhile.
  absl::MutexLock lock(&maint_mu_);
  // Blocks first: their tombstones are durable in their own dirs.
  uint64_t block_series = 0, blocks_touched = 0;
  const index::Postings refs = head_.Select(matchers);
  for (const auto& e : head_.Blocks()) {
    const block::BlockMeta& m = e->block->meta();
    if (m.maxt < mint || m.mint > maxt) continue;
    block::Tombstones add;
    for (model::SeriesRef ref : refs) {
      auto it = e->id_of_ref.find(ref);
      if (it == e->id_of_ref.end()) continue;
      int64_t lo = mint, hi = maxt;
      if (e->block->ClampToData(it->second, &lo, &hi)) add[it->second].Add({lo, hi});
    }
    if (add.empty()) continue;
    ESPY_RETURN_IF_ERROR(e->block->AddTombstones(add));
    block_series += add.size();
    ++blocks_touched;
  }
  ESPY_RETURN_IF_ERROR(DeleteFromTiers(refs, mint, maxt));
  // Then the head, on the commit thread between rounds: batches committed
  // before the WAL record lose their samples, later ones keep theirs, and
  // replay sees the record at the same place.
  std::string payload;
  record::EncodeTombstone({matchers, mint, maxt}, &payload);
  absl::Status status;
  uint64_t head_samples = 0;
  ESPY_RETURN_IF_ERROR(RunOnCommitThread([&] {
    {
      absl::MutexLock l(&mu_);
      status = broken_;
    }
    if (!status.ok()) return;
    status = wal_->AddRecord(payload);
    if (status.ok()) status = wal_->Sync();
    if (!status.ok()) {
      absl::MutexLock l(&mu_);
      broken_ = absl::UnavailableError(fmt::format("WAL write failed: {}", status.message()));
      return;
    }
    for (model::SeriesRef ref : head_.Select(matchers)) {
      head_samples += head_.Delete(ref, mint, maxt);
    }
  }));
  ESPY_RETURN_IF_ERROR(status);
  deletes_.fetch_add(1, std::memory_order_relaxed);
  std::string selector;
  for (const model::Matcher& m : matchers) selector += (selector.empty() ? "" : ",") + m.ToString();
  base::Info(options_.logger, "deleted series data", "selector", "{" + selector + "}", "mint", mint,
             "maxt", maxt, "series", refs.size(), "head_samples", head_samples, "block_series",
             block_series, "blocks", blocks_touched, "duration_ms",
             Millis(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

absl::Status Db::CleanTombstones() {
  absl::MutexLock lock(&maint_mu_);
  std::vector<std::shared_ptr<const head::BlockEntry>> entries = head_.Blocks();
  // Blocks whose time ranges overlap, transitively, go together: rewriting
  // one alone would give it a seq above the others and reorder writes.
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return entries[a]->block->meta().mint < entries[b]->block->meta().mint;
  });
  std::vector<std::vector<std::shared_ptr<const block::Block>>> groups;
  int64_t group_maxt = INT64_MIN;
  bool group_dirty = false;
  std::vector<std::shared_ptr<const block::Block>> group;
  auto close_group = [&] {
    if (group_dirty) {
      std::sort(group.begin(), group.end(),
                [](const auto& a, const auto& b) { return a->meta().seq < b->meta().seq; });
      groups.push_back(std::move(group));
    }
    group.clear();
    group_dirty = false;
  };
  for (size_t i : order) {
    const auto& b = entries[i]->block;
    if (!group.empty() && b->meta().mint > group_maxt) close_group();
    group_maxt = group.empty() ? b->meta().maxt : std::max(group_maxt, b->meta().maxt);
    group.push_back(b);
    group_dirty = group_dirty || b->has_tombstones();
  }
  close_group();
  for (const auto& g : groups) {
    ESPY_RETURN_IF_ERROR(
        MergeBlocks(g, "rewrote blocks without deleted data", "clean_tombstones_after_rename"));
  }
  return absl::OkStatus();
}

absl::Status Db::Maintain() {
  absl::MutexLock lock(&maint_mu_);
  const int64_t max_t = head_.max_time();
  int64_t cut_t = INT64_MIN;
  if (max_t != INT64_MIN) {
    cut_t = AlignDown(max_t - options_.block_range / 2, options_.block_range);
    if (frozen_pending_ || head_.min_time() < cut_t) ESPY_RETURN_IF_ERROR(CutBlocks(cut_t));
  }
  ESPY_RETURN_IF_ERROR(ApplyRetention());
  ESPY_RETURN_IF_ERROR(Compact(cut_t));
  ESPY_RETURN_IF_ERROR(Downsample());
  return ExpireTiers();
}

absl::Status Db::FlushHead() {
  absl::MutexLock lock(&maint_mu_);
  return CutBlocks(INT64_MAX);
}

void Db::MaintenanceLoop(std::stop_token stop) {
  std::stop_callback wake(stop, [this] {
    absl::MutexLock lock(&stop_mu_);
    stop_maintenance_ = true;
  });
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      stop_mu_.AwaitWithTimeout(absl::Condition(&stop_maintenance_),
                                absl::Milliseconds(options_.maintenance_interval_ms));
      if (stop_maintenance_) return;
    }
    if (absl::Status s = Maintain(); !s.ok()) {
      base::Error(options_.logger, "background maintenance failed; will retry", "err", s.message());
    }
  }
}

void Db::Close() {
  if (maintainer_.joinable()) {
    maintainer_.request_stop();
    maintainer_.join();
  }
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
  }
  if (committer_.joinable()) committer_.join();
  if (wal_ != nullptr) {
    if (absl::Status s = wal_->Sync(); !s.ok()) {
      base::Error(options_.logger, "final WAL sync failed", "err", s.message());
    }
    PublishWalStats();  // the commit thread is joined: this thread owns wal_ now
  }
}

DbStats Db::stats() const {
  DbStats s;
  s.series = head_.num_series();
  s.samples_in_head = head_.num_samples();
  s.samples_committed = samples_committed_.load(std::memory_order_relaxed);
  s.batches_committed = batches_committed_.load(std::memory_order_relaxed);
  s.commit_rounds = commit_rounds_.load(std::memory_order_relaxed);
  s.wal_bytes = wal_bytes_.load(std::memory_order_relaxed);
  s.wal_syncs = wal_syncs_.load(std::memory_order_relaxed);
  s.wal_truncations = wal_truncations_.load(std::memory_order_relaxed);
  head::Head::MemoryStats m = head_.Memory();
  s.head_chunks = m.chunks;
  s.head_chunk_bytes = m.chunk_bytes;
  s.head_ooo_samples = m.ooo_samples;
  s.head_memory_bytes = m.bytes;
  for (const auto& e : head_.Blocks()) {
    const block::BlockMeta& bm = e->block->meta();
    ++s.blocks;
    if (e->block->has_tombstones()) ++s.blocks_with_tombstones;
    s.block_bytes += bm.chunks_bytes + bm.index_bytes;
    s.block_samples += bm.num_samples;
    s.block_chunks += bm.num_chunks;
  }
  s.blocks_written = blocks_written_.load(std::memory_order_relaxed);
  s.blocks_quarantined = blocks_quarantined_.load(std::memory_order_relaxed);
  s.blocks_expired = blocks_expired_.load(std::memory_order_relaxed);
  s.compactions = compactions_.load(std::memory_order_relaxed);
  s.blocks_compacted = blocks_compacted_.load(std::memory_order_relaxed);
  s.series_limit_rejections = limit_rejections_.load(std::memory_order_relaxed);
  s.deletes = deletes_.load(std::memory_order_relaxed);
  for (const auto& level : Tiers()->levels) {
    for (const auto& t : level) {
      const block::BlockMeta& bm = t->block->meta();
      ++s.tier_blocks;
      s.tier_bytes += bm.chunks_bytes + bm.index_bytes;
      s.tier_samples += bm.num_samples;
    }
  }
  s.blocks_downsampled = blocks_downsampled_.load(std::memory_order_relaxed);
  s.tier_blocks_expired = tier_blocks_expired_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace espy::storage
