#include "storage/db.h"

#include <filesystem>

#include "base/status_macros.h"
#include "fmt/format.h"
#include "storage/record/record.h"

namespace espy::storage {

namespace {

int64_t Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

Db::Db(DbOptions options) : options_(std::move(options)) {}

Db::~Db() { Close(); }

absl::StatusOr<std::unique_ptr<Db>> Db::Open(DbOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        fmt::format("data dir {}: cannot create: {}", options.dir, ec.message()));
  }
  std::unique_ptr<Db> db(new Db(std::move(options)));
  ESPY_RETURN_IF_ERROR(db->Replay());
  wal::WalOptions wal_options;
  wal_options.dir = db->options_.dir + "/wal";
  wal_options.logger = db->options_.logger;
  ESPY_ASSIGN_OR_RETURN(db->wal_, wal::WalWriter::Open(wal_options));
  db->committer_ = std::jthread([raw = db.get()] { raw->CommitLoop(); });
  return db;
}

absl::Status Db::Replay() {
  auto start = std::chrono::steady_clock::now();
  std::vector<record::RefSeries> series;
  std::vector<record::RefSample> samples;
  uint64_t orphans = 0, bad_records = 0, replayed = 0;
  ESPY_ASSIGN_OR_RETURN(
      wal::ReplayStats stats,
      wal::Replay(options_.dir + "/wal", options_.logger, [&](std::string_view payload) {
        // A record that passed its CRC but does not decode was written by a
        // broken build; skip it rather than refuse to start.
        if (absl::Status s = record::DecodeBatch(payload, &series, &samples); !s.ok()) {
          if (bad_records++ == 0)
            options_.logger->error("msg=\"skipping WAL record\" err=\"{}\"", s.message());
          return absl::OkStatus();
        }
        for (record::RefSeries& s : series) {
          if (absl::Status st = head_.Recover(s.ref, std::move(s.labels)); !st.ok()) {
            options_.logger->error("msg=\"skipping WAL series\" err=\"{}\"", st.message());
          }
        }
        for (const record::RefSample& s : samples) {
          // Samples whose series record was lost to corruption cannot be
          // placed; they are counted and reported.
          if (!head_.Exists(s.ref)) {
            ++orphans;
            continue;
          }
          head_.Append(s.ref, s.ts, s.value);
          ++replayed;
        }
        return absl::OkStatus();
      }));
  if (orphans > 0 || bad_records > 0) {
    options_.logger->error("msg=\"WAL replay dropped data\" orphan_samples={} bad_records={}",
                           orphans, bad_records);
  }
  options_.logger->info(
      "msg=\"replayed WAL\" segments={} records={} samples={} series={} duration_ms={}",
      stats.segments, stats.records, replayed, head_.num_series(),
      Millis(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

void Db::Commit(model::SampleBatch batch, Done done) {
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

absl::Status Db::CommitAndWait(model::SampleBatch batch) {
  absl::Mutex mu;
  bool finished = false;
  absl::Status result;
  Commit(std::move(batch), [&](absl::Status s) {
    absl::MutexLock lock(&mu);
    result = std::move(s);
    finished = true;
  });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&finished));
  return result;
}

absl::Status Db::WriteRound(std::vector<Pending>& round,
                            std::vector<std::vector<model::SeriesRef>>* refs) {
  std::vector<record::RefSeries> new_series;
  std::vector<record::RefSample> samples;
  std::vector<model::SeriesRef> ref_of_series;
  std::string payload;
  refs->resize(round.size());
  for (size_t b = 0; b < round.size(); ++b) {
    const model::SampleBatch& batch = round[b].batch;
    new_series.clear();
    samples.clear();
    ref_of_series.assign(batch.series.size(), 0);
    for (size_t i = 0; i < batch.series.size(); ++i) {
      model::SeriesRef ref = head_.Lookup(batch.series[i]);
      if (ref == 0) {
        ref = head_.Create(batch.series[i]);
        new_series.push_back({ref, batch.series[i]});
      }
      ref_of_series[i] = ref;
    }
    std::vector<model::SeriesRef>& sample_refs = (*refs)[b];
    sample_refs.resize(batch.samples.size());
    samples.reserve(batch.samples.size());
    for (size_t i = 0; i < batch.samples.size(); ++i) {
      const model::BatchSample& s = batch.samples[i];
      sample_refs[i] = ref_of_series[s.series];
      samples.push_back({sample_refs[i], s.ts, s.value});
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
  while (true) {
    round.clear();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // closing and drained
      // Everything that queued while the last round was syncing goes into
      // this round: that is the group commit.
      while (!queue_.empty()) {
        round.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_samples_ = 0;
    }
    absl::Status status = WriteRound(round, &refs);
    if (!status.ok()) {
      options_.logger->error("msg=\"WAL write failed; refusing further writes\" err=\"{}\"",
                             status.message());
      absl::MutexLock lock(&mu_);
      broken_ = absl::UnavailableError(fmt::format("WAL write failed: {}", status.message()));
      status = broken_;
    } else {
      // Durable: now make it visible, in commit order so that the later of
      // two writes to one series and timestamp wins, as on replay.
      for (size_t b = 0; b < round.size(); ++b) {
        const model::SampleBatch& batch = round[b].batch;
        for (size_t i = 0; i < batch.samples.size(); ++i) {
          head_.Append(refs[b][i], batch.samples[i].ts, batch.samples[i].value);
        }
        samples_committed_.fetch_add(batch.samples.size(), std::memory_order_relaxed);
        if (listener_) listener_(batch, refs[b]);
      }
      batches_committed_.fetch_add(round.size(), std::memory_order_relaxed);
      commit_rounds_.fetch_add(1, std::memory_order_relaxed);
    }
    for (Pending& p : round) p.done(status);
  }
}

void Db::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
  }
  if (committer_.joinable()) committer_.join();
  if (wal_ != nullptr) {
    if (absl::Status s = wal_->Sync(); !s.ok()) {
      options_.logger->error("msg=\"final WAL sync failed\" err=\"{}\"", s.message());
    }
  }
}

DbStats Db::stats() const {
  DbStats s;
  s.series = head_.num_series();
  s.samples_in_head = head_.num_samples();
  s.samples_committed = samples_committed_.load(std::memory_order_relaxed);
  s.batches_committed = batches_committed_.load(std::memory_order_relaxed);
  s.commit_rounds = commit_rounds_.load(std::memory_order_relaxed);
  if (wal_ != nullptr) {
    s.wal_bytes = wal_->bytes_written();
    s.wal_syncs = wal_->syncs();
  }
  return s;
}

}  // namespace espy::storage
