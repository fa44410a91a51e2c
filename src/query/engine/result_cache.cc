// ResultCache: an LRU of range-query results per (query, step grid), each
// holding the steps old enough to keep (see result_cache.h).
#include "query/engine/result_cache.h"

#include <algorithm>
#include <map>

#include "fmt/format.h"

namespace espy::query::engine {
namespace {

int64_t FloorMod(int64_t t, int64_t m) {
  int64_t r = t % m;
  return r < 0 ? r + m : r;
}

size_t BytesOf(const Matrix& m) {
  size_t n = 64;
  for (const Series& s : m) n += 64 + s.metric.ByteSize() + s.points.size() * sizeof(Point);
  return n;
}

// The points of `m` with from <= t <= to; series left with none are dropped.
Matrix Slice(const Matrix& m, int64_t from, int64_t to) {
  Matrix out;
  for (const Series& s : m) {
    auto lo = std::lower_bound(s.points.begin(), s.points.end(), from,
                               [](const Point& p, int64_t t) { return p.t < t; });
    auto hi = std::upper_bound(s.points.begin(), s.points.end(), to,
                               [](int64_t t, const Point& p) { return t < p.t; });
    if (lo == hi) continue;
    out.push_back(Series{s.metric, std::vector<Point>(lo, hi)});
  }
  return out;
}

// `older` (steps before those of `newer`) and `newer` as one matrix sorted
// by labels, as the engine returns range results.
Matrix Concat(Matrix older, Matrix newer) {
  std::map<model::Labels, std::vector<Point>> by_labels;
  for (Series& s : older) by_labels[std::move(s.metric)] = std::move(s.points);
  for (Series& s : newer) {
    std::vector<Point>& pts = by_labels[std::move(s.metric)];
    pts.insert(pts.end(), s.points.begin(), s.points.end());
  }
  Matrix out;
  out.reserve(by_labels.size());
  for (auto& [labels, pts] : by_labels) out.push_back(Series{labels, std::move(pts)});
  return out;
}

bool Cacheable(const promql::Expr* e) {
  if (e == nullptr) return true;
  switch (e->kind) {
    case promql::NodeKind::kNumberLiteral:
    case promql::NodeKind::kStringLiteral:
      return true;
    case promql::NodeKind::kVectorSelector: {
      // A step reads data at or before itself, so a late sample changes no
      // step before it (Invalidate relies on it); a negative offset or a
      // fixed @ reads elsewhere.
      const auto* vs = e->As<promql::VectorSelector>();
      return vs->at == promql::AtPreprocessor::kNone && !vs->timestamp_ms &&
             vs->original_offset_ms >= 0;
    }
    case promql::NodeKind::kMatrixSelector:
      return Cacheable(e->As<promql::MatrixSelector>()->selector.get());
    case promql::NodeKind::kSubquery: {
      const auto* sq = e->As<promql::SubqueryExpr>();
      return sq->at == promql::AtPreprocessor::kNone && !sq->timestamp_ms &&
             sq->original_offset_ms >= 0 && Cacheable(sq->expr.get());
    }
    case promql::NodeKind::kParen:
      return Cacheable(e->As<promql::ParenExpr>()->expr.get());
    case promql::NodeKind::kUnary:
      return Cacheable(e->As<promql::UnaryExpr>()->expr.get());
    case promql::NodeKind::kBinary: {
      const auto* b = e->As<promql::BinaryExpr>();
      return Cacheable(b->lhs.get()) && Cacheable(b->rhs.get());
    }
    case promql::NodeKind::kAggregate: {
      const auto* a = e->As<promql::AggregateExpr>();
      return Cacheable(a->expr.get()) && Cacheable(a->param.get());
    }
    case promql::NodeKind::kCall: {
      for (const auto& arg : e->As<promql::Call>()->args) {
        if (!Cacheable(arg.get())) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

bool IsRangeCacheable(const promql::Expr& expr) { return Cacheable(&expr); }

std::string ResultCache::GridKey(std::string_view key, int64_t start, int64_t step) {
  return fmt::format("{}/{}/{}", step, FloorMod(start, step), key);
}

absl::StatusOr<QueryResult> ResultCache::RangeQuery(const Engine& engine, const Queryable& q,
                                                    const promql::Expr& expr, std::string_view key,
                                                    int64_t start, int64_t end, int64_t step,
                                                    int64_t now_ms) {
  if (options_.max_bytes == 0 || step <= 0 || end < start || !IsRangeCacheable(expr)) {
    return engine.Exec(q, expr, start, end, step);
  }
  const std::string gk = GridKey(key, start, step);
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  Matrix kept;
  int64_t compute_from = start;
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(gk);
    if (it != index_.end() && it->second->from <= start && it->second->to >= start) {
      kept = Slice(it->second->matrix, start, std::min(end, it->second->to));
      compute_from = std::min(end, it->second->to) + step;
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
    } else {
      ++misses_;
    }
  }
  QueryResult result;
  result.type = promql::ValueType::kMatrix;
  if (compute_from <= end) {
    absl::StatusOr<QueryResult> fresh = engine.Exec(q, expr, compute_from, end, step);
    if (!fresh.ok()) return fresh.status();
    result.matrix =
        kept.empty() ? std::move(fresh->matrix) : Concat(std::move(kept), std::move(fresh->matrix));
  } else {
    result.matrix = std::move(kept);
  }
  // Keep the steps old enough that no more data is expected for them.
  const int64_t safe = std::min(end, now_ms - options_.recent_ms);
  if (safe >= start) {
    Entry e;
    e.key = gk;
    e.from = start;
    e.to = start + (safe - start) / step * step;
    e.matrix = Slice(result.matrix, e.from, e.to);
    e.bytes = BytesOf(e.matrix) + gk.size();
    absl::MutexLock lock(&mu_);
    // A late write or a delete during the evaluation may not be in it.
    if (generation_.load(std::memory_order_acquire) == generation) Store(std::move(e));
  }
  return result;
}

void ResultCache::Store(Entry e) {
  if (e.bytes > options_.max_bytes) return;
  if (auto it = index_.find(e.key); it != index_.end()) Erase(it->second);
  bytes_ += e.bytes;
  lru_.push_front(std::move(e));
  index_[lru_.front().key] = lru_.begin();
  while (bytes_ > options_.max_bytes && !lru_.empty()) Erase(std::prev(lru_.end()));
}

void ResultCache::Erase(Lru::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  lru_.erase(it);
}

void ResultCache::Invalidate(int64_t since_ms) {
  // Most writes are younger than any step that is kept or will be: every
  // entry stops at most at now - recent_ms as of its query, and now grows.
  if (since_ms > options_.clock->NowMillis() - options_.recent_ms) return;
  absl::MutexLock lock(&mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->to >= since_ms) Erase(it);
    it = next;
  }
}

ResultCache::Stats ResultCache::stats() const {
  absl::MutexLock lock(&mu_);
  return {hits_, misses_, lru_.size(), bytes_};
}

}  // namespace espy::query::engine
