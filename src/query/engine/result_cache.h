// ResultCache: the results of range queries kept by query text and step,
// so that a dashboard asking again for a window that slid forward computes
// only the new steps. A step is kept once it is older than `recent_ms`
// (data that young may still arrive); a write or delete that reaches back
// into kept steps drops the entries holding them (Invalidate), so a cached
// answer is the same as a fresh one (except that steps kept before their
// data was downsampled keep their raw-sample values). Queries that
// IsRangeCacheable refuses are never cached.
//
//   ResultCache cache({.max_bytes = 64 << 20});
//   auto r = cache.RangeQuery(engine, queryable, *expr, query_text, start, end, step, now);
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "query/engine/engine.h"

namespace espy::query::engine {

struct ResultCacheOptions {
  size_t max_bytes = 64 << 20;        // least recently used entries go beyond this; 0: no caching
  int64_t recent_ms = 5 * 60 * 1000;  // steps younger than now - this are never kept
  const base::Clock* clock = base::SystemClock::Get();  // "now" for Invalidate; must outlive
};

// Thread-safe.
class ResultCache {
 public:
  explicit ResultCache(ResultCacheOptions options) : options_(options) {}

  // Engine::Exec(q, expr, start, end, step) for a range query, reusing the
  // kept steps of an earlier call with the same `key` (the query text) and
  // step on the same grid, and keeping the steps of this one that are older
  // than now_ms - recent_ms.
  absl::StatusOr<QueryResult> RangeQuery(const Engine& engine, const Queryable& q,
                                         const promql::Expr& expr, std::string_view key,
                                         int64_t start, int64_t end, int64_t step, int64_t now_ms);

  // Drops every entry whose kept steps reach back to `since_ms` or later: a
  // sample at since_ms (written late, or deleted) can change them. A query
  // being evaluated meanwhile keeps nothing, as it may have read from
  // before the change. Cheap (no lock) for samples younger than
  // now - recent_ms, which no kept step can see.
  void Invalidate(int64_t since_ms);

  struct Stats {
    uint64_t hits = 0;    // queries that reused kept steps
    uint64_t misses = 0;  // cacheable queries computed in full
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };
  Stats stats() const;
  bool enabled() const { return options_.max_bytes > 0; }

 private:
  struct Entry {
    std::string key;
    int64_t from = 0;  // kept steps: from, from + step, ..., to
    int64_t to = 0;
    Matrix matrix;  // only points in [from, to]
    size_t bytes = 0;
  };
  using Lru = std::list<Entry>;

  // The key of a query on a step grid.
  static std::string GridKey(std::string_view key, int64_t start, int64_t step);
  void Store(Entry e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(Lru::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ResultCacheOptions options_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, Lru::iterator> index_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by every Invalidate that may touch kept steps.
  std::atomic<uint64_t> generation_{0};
};

// Whether a range query's steps may be kept: each step's value must not
// depend on the query's start and end (no `@ start()`/`@ end()`), and must
// read only data at or before the step (no `@ <time>`, no negative offset),
// so that Invalidate(t) finds every step a sample at t can change.
bool IsRangeCacheable(const promql::Expr& expr);

}  // namespace espy::query::engine
