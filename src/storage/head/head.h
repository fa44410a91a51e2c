// Head: the in-memory part of the storage: every series (labels -> ref), the
// label index, and the recent samples of each series. The WAL makes it
// durable; storage::Db owns both.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "model/labels.h"
#include "model/matcher.h"
#include "storage/index/postings.h"

namespace espy::storage::head {

// Thread-safe. Series are created and samples appended by one writer at a
// time (the Db's commit loop or WAL replay); readers may run concurrently
// and never block the writer for longer than a copy of what they read.
class Head {
 public:
  Head();
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  // The ref of the series with exactly these labels, or 0.
  model::SeriesRef Lookup(const model::Labels& labels) const;
  // Adds a series with the next free ref and returns it.
  // REQUIRES: Lookup(labels) == 0.
  model::SeriesRef Create(model::Labels labels);
  // WAL replay: adds a series under the ref it was written with. A ref seen
  // before with the same labels is fine; with other labels, DataLoss.
  absl::Status Recover(model::SeriesRef ref, model::Labels labels);

  // Adds or overwrites (same ts: the later write wins) one sample.
  // REQUIRES: ref was returned by Create or Recover.
  void Append(model::SeriesRef ref, int64_t ts, double value);
  bool Exists(model::SeriesRef ref) const;

  // Refs of the series that satisfy all matchers, ascending.
  index::Postings Select(const std::vector<model::Matcher>& matchers) const;
  // Labels of a series; the reference stays valid for the Head's lifetime.
  // REQUIRES: Exists(ref).
  const model::Labels& SeriesLabels(model::SeriesRef ref) const;
  // Appends to *out the samples of `ref` with ts in [mint, maxt], oldest
  // first, at most `max` of them. Returns how many were appended.
  size_t Read(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t max,
              std::vector<model::Sample>* out) const;

  std::vector<std::string> LabelNames() const;
  std::vector<std::string> LabelValues(std::string_view name) const;

  uint64_t num_series() const { return num_series_.load(std::memory_order_relaxed); }
  uint64_t num_samples() const { return num_samples_.load(std::memory_order_relaxed); }

 private:
  struct MemSeries {
    MemSeries(model::SeriesRef r, model::Labels l) : ref(r), labels(std::move(l)) {}
    const model::SeriesRef ref;
    const model::Labels labels;
    // Sorted by ts, unique ts. Guarded by the head's stripe lock for `ref`.
    std::vector<model::Sample> samples;
  };
  // Hash and equality over the labels a MemSeries points to, with lookups
  // by a bare Labels (no copy) through absl's transparent functors.
  struct LabelsPtrHash {
    using is_transparent = void;
    size_t operator()(const MemSeries* s) const { return absl::HashOf(s->labels); }
    size_t operator()(const model::Labels& l) const { return absl::HashOf(l); }
  };
  struct LabelsPtrEq {
    using is_transparent = void;
    static const model::Labels& L(const MemSeries* s) { return s->labels; }
    static const model::Labels& L(const model::Labels& l) { return l; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return L(a) == L(b);
    }
  };
  static constexpr size_t kStripes = 1024;  // sample locks, by ref

  MemSeries* Get(model::SeriesRef ref) const;
  model::SeriesRef AddLocked(model::SeriesRef ref, model::Labels labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex& StripeFor(model::SeriesRef ref) const { return stripes_[ref % kStripes]; }

  mutable absl::Mutex mu_;
  // series_[ref - 1]; null for refs lost to WAL corruption. MemSeries never
  // move, so pointers handed out stay valid.
  std::vector<std::unique_ptr<MemSeries>> series_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<const MemSeries*, LabelsPtrHash, LabelsPtrEq> by_labels_ ABSL_GUARDED_BY(mu_);
  index::MemPostings postings_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex stripes_[kStripes];
  std::atomic<uint64_t> num_series_{0};
  std::atomic<uint64_t> num_samples_{0};
};

}  // namespace espy::storage::head
