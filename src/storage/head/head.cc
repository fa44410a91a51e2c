#include "storage/head/head.h"

#include <algorithm>
#include <cstring>
#include <span>

#include "base/check.h"
#include "base/status_macros.h"
#include "encoding/coding.h"
#include "fmt/format.h"
#include "model/sample_merge.h"

namespace espy::storage::head {

namespace {

// First and last timestamps of a chunk the head encoded itself (the header
// layout of docs/format/chunk.md: version, encoding, count, min, max).
int64_t ChunkMin(std::string_view c) {
  return static_cast<int64_t>(encoding::DecodeFixed64(c.data() + 6));
}
int64_t ChunkMax(std::string_view c) {
  return static_cast<int64_t>(encoding::DecodeFixed64(c.data() + 14));
}

// Decodes the samples of a head chunk in [mint, maxt] onto *out.
void DecodeInto(std::string_view c, int64_t mint, int64_t maxt, std::vector<model::Sample>* out) {
  if (ChunkMax(c) < mint || ChunkMin(c) > maxt) return;
  thread_local std::vector<int64_t> ts;
  thread_local std::vector<double> vs;
  ts.clear();
  vs.clear();
  absl::Status s = chunk::DecodeChunkRange(c, mint, maxt, &ts, &vs);
  ESPY_CHECK(s.ok()) << "head chunk does not decode: " << s.message();
  for (size_t i = 0; i < ts.size(); ++i) out->push_back({ts[i], vs[i]});
}

void AppendRange(const std::vector<model::Sample>& v, int64_t mint, int64_t maxt,
                 std::vector<model::Sample>* out) {
  auto it = std::lower_bound(v.begin(), v.end(), mint,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  for (; it != v.end() && it->ts <= maxt; ++it) out->push_back(*it);
}

// Removes the samples with mint <= ts <= maxt from a sorted vector.
size_t EraseRange(std::vector<model::Sample>* v, int64_t mint, int64_t maxt) {
  auto lo = std::lower_bound(v->begin(), v->end(), mint,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  auto hi = std::upper_bound(lo, v->end(), maxt,
                             [](int64_t t, const model::Sample& a) { return t < a.ts; });
  const auto n = static_cast<size_t>(hi - lo);
  v->erase(lo, hi);
  return n;
}

// The time span and sample count of one chunk, from its header.
struct ChunkSpan {
  int64_t mint;
  int64_t maxt;
  uint64_t count;
};

ChunkSpan SpanOf(std::string_view c) {
  return {ChunkMin(c), ChunkMax(c), encoding::DecodeFixed32(c.data() + 2)};
}

// How far a snapshot of [mint, maxt] needs to reach into n sorted, disjoint
// chunks (span_of(k) for k < n) to hold at least `want` of their samples:
// the end of the chunk where the count of chunks lying wholly at or after
// mint reaches `want`, or maxt when the chunks run out first. The result is
// >= mint (when mint <= maxt) and <= maxt.
template <typename SpanFn>
int64_t CoverOf(size_t n, const SpanFn& span_of, int64_t mint, int64_t maxt, uint64_t want) {
  uint64_t got = 0;
  int64_t last = maxt;
  for (size_t k = 0; k < n; ++k) {
    const ChunkSpan c = span_of(k);
    if (c.maxt < mint) continue;
    if (c.mint > maxt) break;
    if (got >= want) return last;  // earlier chunks hold enough; this one starts after last
    if (c.mint >= mint) got += c.count;
    last = c.maxt;
  }
  return maxt;
}

void UpdateMin(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
void UpdateMax(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

// Refs resolved per hold of the series table lock by the batch calls
// (LookupAll, MarkAllLogged, AppendAll): short holds, so that the writer's
// Create never waits long.
constexpr size_t kRefsPerLock = 256;

}  // namespace

Head::Head() : Head(HeadOptions()) {}
Head::Head(HeadOptions options) : options_(options), blocks_(std::make_shared<BlockSet>()) {
  ESPY_CHECK(options_.block_range > 0 && options_.max_chunk_samples > 0);
}
Head::~Head() = default;

int64_t Head::RangeOf(int64_t ts) const {
  int64_t r = ts / options_.block_range;
  if (ts % options_.block_range < 0) --r;
  return r;
}

Head::MemSeries* Head::Get(model::SeriesRef ref) const { return by_ref_.Get(ref); }

model::SeriesRef Head::Lookup(const model::Labels& labels) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_labels_.find(labels);
  return it == by_labels_.end() ? 0 : (*it)->ref;
}

void Head::LookupAll(const std::vector<model::Labels>& labels,
                     std::vector<model::SeriesRef>* refs) const {
  refs->resize(labels.size());
  for (size_t begin = 0; begin < labels.size(); begin += kRefsPerLock) {
    const auto block_begin = refs->begin() + static_cast<std::ptrdiff_t>(begin);
    const auto block_end =
        refs->begin() + static_cast<std::ptrdiff_t>(std::min(labels.size(), begin + kRefsPerLock));
    if (std::find(block_begin, block_end, 0) == block_end) continue;  // all known
    absl::ReaderMutexLock lock(&mu_);
    for (size_t i = begin; i < std::min(labels.size(), begin + kRefsPerLock); ++i) {
      if ((*refs)[i] != 0) continue;
      auto it = by_labels_.find(labels[i]);
      (*refs)[i] = it == by_labels_.end() ? 0 : (*it)->ref;
    }
  }
}

model::SeriesRef Head::AddLocked(model::SeriesRef ref, model::Labels labels) {
  if (ref > series_.size()) series_.resize(ref);
  auto series = std::make_unique<MemSeries>(ref, std::move(labels));
  postings_.Add(ref, series->labels);
  by_labels_.insert(series.get());
  by_ref_.Set(ref, series.get());
  series_[ref - 1] = std::move(series);
  num_series_.fetch_add(1, std::memory_order_relaxed);
  return ref;
}

model::SeriesRef Head::Create(model::Labels labels) {
  absl::MutexLock lock(&mu_);
  ESPY_DCHECK(!by_labels_.contains(labels)) << labels.ToString();
  return AddLocked(series_.size() + 1, std::move(labels));
}

model::SeriesRef Head::LookupOrCreate(const model::Labels& labels) {
  absl::MutexLock lock(&mu_);
  auto it = by_labels_.find(labels);
  if (it != by_labels_.end()) return (*it)->ref;
  return AddLocked(series_.size() + 1, labels);
}

absl::Status Head::Recover(model::SeriesRef ref, model::Labels labels) {
  absl::MutexLock lock(&mu_);
  if (ref == 0) return absl::DataLossError("series record with ref 0");
  if (ref <= series_.size() && series_[ref - 1] != nullptr) {
    if (series_[ref - 1]->labels == labels) return absl::OkStatus();
    return absl::DataLossError(fmt::format("series ref {} is {} but the WAL says {}", ref,
                                           series_[ref - 1]->labels.ToString(), labels.ToString()));
  }
  if (by_labels_.contains(labels)) {
    return absl::DataLossError(
        fmt::format("series {} recorded under two refs (second: {})", labels.ToString(), ref));
  }
  // A ref below the highest one is a series re-logged after WAL truncation;
  // the postings insert it in place.
  AddLocked(ref, std::move(labels));
  return absl::OkStatus();
}

bool Head::Exists(model::SeriesRef ref) const { return Get(ref) != nullptr; }

bool Head::MarkLogged(model::SeriesRef ref, uint32_t gen) {
  MemSeries* s = Get(ref);
  ESPY_CHECK(s != nullptr) << "unknown series " << ref;
  if (s->logged_gen == gen) return false;
  s->logged_gen = gen;
  return true;
}

void Head::MarkAllLogged(const std::vector<model::SeriesRef>& refs, uint32_t gen,
                         std::vector<uint32_t>* first) {
  for (size_t i = 0; i < refs.size(); ++i) {
    MemSeries* s = Get(refs[i]);
    ESPY_CHECK(s != nullptr) << "unknown series " << refs[i];
    if (s->logged_gen == gen) continue;
    s->logged_gen = gen;
    first->push_back(static_cast<uint32_t>(i));
  }
}

void Head::CloseApp(MemSeries* s) {
  if (s->app.num_samples() == 0) return;
  s->chunks.emplace_back(s->app.bytes());
  s->app = chunk::ChunkAppender();
}

bool Head::AppendTo(MemSeries* s, model::SeriesRef ref, int64_t ts, double value) {
  absl::MutexLock lock(&StripeFor(ref));
  if (ts <= s->max_t) return AppendOoo(s, ts, value);
  if (s->app.num_samples() > 0 && (s->app.num_samples() >= options_.max_chunk_samples ||
                                   RangeOf(ts) != RangeOf(s->app.min_time()))) {
    CloseApp(s);
  }
  absl::Status st = s->app.Append(ts, value);
  ESPY_CHECK(st.ok()) << st.message();
  s->max_t = ts;
  return true;
}

void Head::Append(model::SeriesRef ref, int64_t ts, double value) {
  MemSeries* s = Get(ref);
  ESPY_CHECK(s != nullptr) << "append to unknown series " << ref;
  if (AppendTo(s, ref, ts, value)) num_samples_.fetch_add(1, std::memory_order_relaxed);
  UpdateMax(max_t_, ts);
  UpdateMin(min_t_, ts);
}

void Head::AppendAll(const std::vector<model::SeriesRef>& refs,
                     const std::vector<model::BatchSample>& samples) {
  ESPY_CHECK(refs.size() == samples.size()) << refs.size() << " refs, " << samples.size();
  uint64_t added = 0;
  int64_t min_t = INT64_MAX, max_t = INT64_MIN;
  for (size_t i = 0; i < refs.size(); ++i) {
    MemSeries* s = Get(refs[i]);
    ESPY_CHECK(s != nullptr) << "append to unknown series " << refs[i];
    const model::BatchSample& x = samples[i];
    added += AppendTo(s, refs[i], x.ts, x.value);
    min_t = std::min(min_t, x.ts);
    max_t = std::max(max_t, x.ts);
  }
  if (refs.empty()) return;
  num_samples_.fetch_add(added, std::memory_order_relaxed);
  UpdateMax(max_t_, max_t);
  UpdateMin(min_t_, min_t);
}

bool Head::AppendOoo(MemSeries* s, int64_t ts, double value) {
  if (s->extra == nullptr) s->extra = std::make_unique<Extra>();
  std::vector<model::Sample>& v = s->extra->ooo;
  auto it = std::lower_bound(v.begin(), v.end(), ts,
                             [](const model::Sample& a, int64_t t) { return a.ts < t; });
  if (it != v.end() && it->ts == ts) {
    it->value = value;
    return false;
  }
  v.insert(it, {ts, value});
  // Counted before a merge, which subtracts the duplicates it drops.
  num_samples_.fetch_add(1, std::memory_order_relaxed);
  if (v.size() >= options_.ooo_merge_threshold) MergeOoo(s);
  return false;
}

std::vector<std::string> Head::EncodeChunks(const std::vector<model::Sample>& samples) const {
  std::vector<std::string> out;
  chunk::ChunkAppender app;
  for (const model::Sample& x : samples) {
    if (app.num_samples() > 0 && (app.num_samples() >= options_.max_chunk_samples ||
                                  RangeOf(x.ts) != RangeOf(app.min_time()))) {
      out.emplace_back(app.bytes());
      app = chunk::ChunkAppender();
    }
    absl::Status st = app.Append(x.ts, x.value);
    ESPY_CHECK(st.ok()) << st.message();
  }
  if (app.num_samples() > 0) out.emplace_back(app.bytes());
  return out;
}

void Head::MergeOoo(MemSeries* s) {
  std::vector<model::Sample>& ooo = s->extra->ooo;
  if (ooo.empty()) return;
  const int64_t lo = ooo.front().ts, hi = ooo.back().ts;
  // The chunks overlapping [lo, hi] form one run [i, j) of chunks + app.
  const size_t n = s->chunks.size();
  const bool has_app = s->app.num_samples() > 0;
  auto min_of = [&](size_t k) { return k < n ? ChunkMin(s->chunks[k]) : s->app.min_time(); };
  auto max_of = [&](size_t k) { return k < n ? ChunkMax(s->chunks[k]) : s->app.max_time(); };
  const size_t total = n + (has_app ? 1 : 0);
  size_t i = 0;
  while (i < total && max_of(i) < lo) ++i;
  size_t j = i;
  while (j < total && min_of(j) <= hi) ++j;
  std::vector<model::Sample> old;
  for (size_t k = i; k < j; ++k) {
    DecodeInto(k < n ? std::string_view(s->chunks[k]) : s->app.bytes(), INT64_MIN, INT64_MAX, &old);
  }
  std::vector<model::Sample> merged = model::MergeNewerWins(old, ooo);
  num_samples_.fetch_sub(old.size() + ooo.size() - merged.size(), std::memory_order_relaxed);
  std::vector<std::string> fresh = EncodeChunks(merged);
  const bool app_touched = has_app && j == total;
  if (app_touched) {
    // The newest re-encoded chunk stays open for appends.
    absl::StatusOr<chunk::ChunkAppender> app = chunk::ChunkAppender::Resume(fresh.back());
    ESPY_CHECK(app.ok()) << app.status().message();
    s->app = *std::move(app);
    fresh.pop_back();
  }
  const size_t erase_end = std::min(j, n);
  s->chunks.erase(s->chunks.begin() + static_cast<std::ptrdiff_t>(std::min(i, n)),
                  s->chunks.begin() + static_cast<std::ptrdiff_t>(erase_end));
  s->chunks.insert(s->chunks.begin() + static_cast<std::ptrdiff_t>(std::min(i, n)),
                   std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
  ooo.clear();
  ooo.shrink_to_fit();
  if (s->extra->empty()) s->extra.reset();
}

uint64_t Head::EraseFromChunks(std::vector<std::string>* chunks, chunk::ChunkAppender* app,
                               int64_t mint, int64_t maxt) const {
  const size_t n = chunks->size();
  const bool has_app = app != nullptr && app->num_samples() > 0;
  const size_t total = n + (has_app ? 1 : 0);
  auto min_of = [&](size_t k) { return k < n ? ChunkMin((*chunks)[k]) : app->min_time(); };
  auto max_of = [&](size_t k) { return k < n ? ChunkMax((*chunks)[k]) : app->max_time(); };
  // The chunks overlapping [mint, maxt] form one run [i, j).
  size_t i = 0;
  while (i < total && max_of(i) < mint) ++i;
  size_t j = i;
  while (j < total && min_of(j) <= maxt) ++j;
  if (i == j) return 0;
  std::vector<model::Sample> kept;
  for (size_t k = i; k < j; ++k) {
    DecodeInto(k < n ? std::string_view((*chunks)[k]) : app->bytes(), INT64_MIN, INT64_MAX, &kept);
  }
  const size_t removed = EraseRange(&kept, mint, maxt);
  if (removed == 0) return 0;
  std::vector<std::string> fresh = EncodeChunks(kept);
  if (has_app && j == total) {
    // The newest re-encoded chunk stays open for appends.
    if (fresh.empty()) {
      *app = chunk::ChunkAppender();
    } else {
      absl::StatusOr<chunk::ChunkAppender> resumed = chunk::ChunkAppender::Resume(fresh.back());
      ESPY_CHECK(resumed.ok()) << resumed.status().message();
      *app = *std::move(resumed);
      fresh.pop_back();
    }
  }
  const auto at = static_cast<std::ptrdiff_t>(std::min(i, n));
  chunks->erase(chunks->begin() + at,
                chunks->begin() + static_cast<std::ptrdiff_t>(std::min(j, n)));
  chunks->insert(chunks->begin() + at, std::make_move_iterator(fresh.begin()),
                 std::make_move_iterator(fresh.end()));
  return removed;
}

void Head::MarkDeletedLocked(MemSeries* s) {
  if (s->had_deletion) return;
  s->had_deletion = true;
  num_deleted_series_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Head::Delete(model::SeriesRef ref, int64_t mint, int64_t maxt) {
  MemSeries* s = Get(ref);
  if (s == nullptr || mint > maxt) return 0;
  uint64_t removed = 0;
  {
    absl::MutexLock lock(&StripeFor(ref));
    MarkDeletedLocked(s);
    // max_t stays: it orders later appends (a sample at or below it goes to
    // the out-of-order buffer, which wins over chunk data on equal ts).
    removed += EraseFromChunks(&s->chunks, &s->app, mint, maxt);
    if (s->extra != nullptr) {
      Extra& x = *s->extra;
      removed += EraseRange(&x.ooo, mint, maxt);
      removed += EraseRange(&x.frozen_ooo, mint, maxt);
      removed += EraseFromChunks(&x.frozen, nullptr, mint, maxt);
      if (x.empty()) s->extra.reset();
    }
  }
  num_samples_.fetch_sub(std::min(removed, num_samples_.load()), std::memory_order_relaxed);
  return removed;
}

bool Head::HadDeletion(model::SeriesRef ref) const {
  MemSeries* s = Get(ref);
  if (s == nullptr) return false;
  absl::MutexLock lock(&StripeFor(ref));
  return s->had_deletion;
}

index::Postings Head::Select(const std::vector<model::Matcher>& matchers) const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.Select(matchers);
}

const model::Labels& Head::SeriesLabels(model::SeriesRef ref) const {
  MemSeries* s = Get(ref);
  ESPY_CHECK(s != nullptr) << "unknown series " << ref;
  return s->labels;
}

void Head::SortByLabels(std::vector<model::SeriesRef>* refs) const {
  std::sort(refs->begin(), refs->end(), [this](model::SeriesRef a, model::SeriesRef b) {
    return SeriesLabels(a) < SeriesLabels(b);
  });
}

size_t Head::Read(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t max,
                  std::vector<model::Sample>* out) const {
  MemSeries* s = Get(ref);
  if (s == nullptr || max == 0 || mint > maxt) return 0;
  // Sources from oldest write to newest: blocks by seq, frozen chunks, their
  // out-of-order samples, chunks, out-of-order samples.
  std::vector<model::Sample> merged, part;
  while (true) {
    merged.clear();
    const uint64_t version = blocks_version_.load();
    std::shared_ptr<const BlockSet> blocks;
    {
      absl::ReaderMutexLock lock(&blocks_mu_);
      blocks = blocks_;
    }
    for (const auto& e : blocks->blocks) {
      const block::BlockMeta& m = e->block->meta();
      if (m.maxt < mint || m.mint > maxt) continue;
      auto it = e->id_of_ref.find(ref);
      if (it == e->id_of_ref.end()) continue;
      part.clear();
      // Blocks were checksummed at open; a chunk that still fails to decode
      // is skipped rather than failing every read of the series.
      if (!e->block->Read(it->second, mint, maxt, &part).ok()) continue;
      model::MergeNewerWinsInto(&merged, part);
    }
    {
      absl::MutexLock lock(&StripeFor(ref));
      if (s->extra != nullptr && !s->extra->frozen.empty()) {
        part.clear();
        for (const std::string& c : s->extra->frozen) DecodeInto(c, mint, maxt, &part);
        model::MergeNewerWinsInto(&merged, part);
      }
      if (s->extra != nullptr && !s->extra->frozen_ooo.empty()) {
        part.clear();
        AppendRange(s->extra->frozen_ooo, mint, maxt, &part);
        model::MergeNewerWinsInto(&merged, part);
      }
      part.clear();
      for (const std::string& c : s->chunks) DecodeInto(c, mint, maxt, &part);
      if (s->app.num_samples() > 0) DecodeInto(s->app.bytes(), mint, maxt, &part);
      model::MergeNewerWinsInto(&merged, part);
      if (s->extra != nullptr && !s->extra->ooo.empty()) {
        part.clear();
        AppendRange(s->extra->ooo, mint, maxt, &part);
        model::MergeNewerWinsInto(&merged, part);
      }
    }
    if (blocks_version_.load() == version) break;
  }
  size_t n = std::min(max, merged.size());
  out->insert(out->end(), merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

void Head::Snapshot(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t min_samples,
                    SeriesSnapshot* snap) const {
  snap->Reset(mint);
  snap->cover_ = maxt;
  MemSeries* s = Get(ref);
  if (s == nullptr || mint > maxt) return;
  const uint64_t want = std::max<uint64_t>(min_samples, 1);
  // As in Read: blocks by seq, frozen chunks, their out-of-order samples
  // (all decoded into older_), then the chunks (copied encoded) and the
  // out-of-order buffer.
  std::vector<model::Sample> part, frozen;
  struct BlockPart {
    const block::Block* block;
    uint32_t id;
  };
  std::vector<BlockPart> block_parts;
  while (true) {
    snap->Reset(mint);
    block_parts.clear();
    frozen.clear();
    const uint64_t version = blocks_version_.load();
    std::shared_ptr<const BlockSet> blocks;
    {
      absl::ReaderMutexLock lock(&blocks_mu_);
      blocks = blocks_;
    }
    int64_t cover = maxt;
    for (const auto& e : blocks->blocks) {
      const block::BlockMeta& m = e->block->meta();
      if (m.maxt < mint || m.mint > maxt) continue;
      auto it = e->id_of_ref.find(ref);
      if (it == e->id_of_ref.end()) continue;
      std::span<const block::ChunkRef> chunks = e->block->Chunks(it->second);
      cover = std::min(cover, CoverOf(
                                  chunks.size(),
                                  [&](size_t k) {
                                    std::string_view c = e->block->ChunkBytes(chunks[k]);
                                    uint64_t count = c.size() >= chunk::kChunkHeaderSize
                                                         ? encoding::DecodeFixed32(c.data() + 2)
                                                         : 0;
                                    return ChunkSpan{chunks[k].mint, chunks[k].maxt, count};
                                  },
                                  mint, maxt, want));
      block_parts.push_back({e->block.get(), it->second});
    }
    {
      absl::MutexLock lock(&StripeFor(ref));
      const Extra* x = s->extra.get();
      if (x != nullptr && !x->frozen.empty()) {
        cover =
            std::min(cover, CoverOf(
                                x->frozen.size(), [&](size_t k) { return SpanOf(x->frozen[k]); },
                                mint, maxt, want));
      }
      const size_t n = s->chunks.size();
      const bool has_app = s->app.num_samples() > 0;
      auto chunk_at = [&](size_t k) {
        return k < n ? std::string_view(s->chunks[k]) : s->app.bytes();
      };
      cover = std::min(
          cover, CoverOf(
                     n + (has_app ? 1 : 0),
                     [&](size_t k) {
                       if (k < n) return SpanOf(s->chunks[k]);
                       return ChunkSpan{s->app.min_time(), s->app.max_time(), s->app.num_samples()};
                     },
                     mint, maxt, want));
      if (x != nullptr) {
        for (const std::string& c : x->frozen) DecodeInto(c, mint, cover, &frozen);
        if (!x->frozen_ooo.empty()) {
          part.clear();
          AppendRange(x->frozen_ooo, mint, cover, &part);
          model::MergeNewerWinsInto(&frozen, part);
        }
      }
      for (size_t k = 0; k < n + (has_app ? 1 : 0); ++k) {
        std::string_view c = chunk_at(k);
        if (ChunkMax(c) < mint) continue;
        if (ChunkMin(c) > cover) break;
        // resize and memcpy: a pmr vector's range insert copies byte by byte.
        const size_t at = snap->bytes_.size();
        snap->bytes_.resize(at + c.size());
        std::memcpy(snap->bytes_.data() + at, c.data(), c.size());
        snap->ends_.push_back(static_cast<uint32_t>(snap->bytes_.size()));
      }
      if (x != nullptr) AppendRange(x->ooo, mint, cover, &snap->ooo_);
    }
    // Blocks are immutable (tombstones only grow), so they are read outside
    // the series' lock.
    for (const BlockPart& b : block_parts) {
      part.clear();
      // As in Read, a chunk that fails to decode skips the block.
      if (!b.block->Read(b.id, mint, cover, &part).ok()) continue;
      model::MergeNewerWinsInto(&snap->older_, part);
    }
    model::MergeNewerWinsInto(&snap->older_, frozen);
    if (blocks_version_.load() == version) {
      snap->cover_ = cover;
      return;
    }
  }
}

void SeriesSnapshot::Reset(int64_t mint) {
  mint_ = mint;
  cover_ = mint;
  older_.clear();
  older_pos_ = 0;
  bytes_.clear();
  ends_.clear();
  next_chunk_ = 0;
  it_.reset();
  chunk_valid_ = false;
  ooo_.clear();
  ooo_pos_ = 0;
  started_ = false;
  done_ = false;
}

bool SeriesSnapshot::AdvanceChunks() {
  bool found = it_.has_value() && it_->Next();
  while (!found) {
    if (it_.has_value()) {
      ESPY_CHECK(it_->status().ok()) << "head chunk does not decode: " << it_->status().message();
    }
    if (next_chunk_ == ends_.size()) return false;
    const size_t begin = next_chunk_ == 0 ? 0 : ends_[next_chunk_ - 1];
    it_.emplace(std::string_view(bytes_.data() + begin, ends_[next_chunk_] - begin));
    ++next_chunk_;
    found = it_->Seek(mint_);
  }
  const chunk::Sample x = it_->At();
  chunk_cur_ = {x.t, x.v};
  return x.t <= cover_;
}

bool SeriesSnapshot::Next() {
  if (done_) return false;
  if (!started_) {
    started_ = true;
    chunk_valid_ = AdvanceChunks();
  } else {
    const int64_t t = cur_.ts;
    if (older_pos_ < older_.size() && older_[older_pos_].ts == t) ++older_pos_;
    if (chunk_valid_ && chunk_cur_.ts == t) chunk_valid_ = AdvanceChunks();
    if (ooo_pos_ < ooo_.size() && ooo_[ooo_pos_].ts == t) ++ooo_pos_;
  }
  const bool has_older = older_pos_ < older_.size();
  const bool has_ooo = ooo_pos_ < ooo_.size();
  if (!has_older && !has_ooo) {
    // The common case: chunks only.
    if (!chunk_valid_) {
      done_ = true;
      return false;
    }
    cur_ = chunk_cur_;
    return true;
  }
  int64_t t = INT64_MAX;
  if (has_older) t = older_[older_pos_].ts;
  if (chunk_valid_) t = std::min(t, chunk_cur_.ts);
  if (has_ooo) t = std::min(t, ooo_[ooo_pos_].ts);
  if (t > cover_) {
    done_ = true;
    return false;
  }
  if (has_ooo && ooo_[ooo_pos_].ts == t) {
    cur_ = ooo_[ooo_pos_];
  } else if (chunk_valid_ && chunk_cur_.ts == t) {
    cur_ = chunk_cur_;
  } else {
    cur_ = older_[older_pos_];
  }
  return true;
}

std::vector<std::string> Head::LabelNames() const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.LabelNames();
}

std::vector<std::string> Head::LabelValues(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  return postings_.LabelValues(name);
}

Head::MemoryStats Head::Memory() const {
  MemoryStats m;
  absl::ReaderMutexLock lock(&mu_);
  uint64_t label_bytes = 0;
  for (const auto& s : series_) {
    if (s == nullptr) continue;
    ++m.series;
    label_bytes += s->labels.ByteSize() + s->labels.size() * sizeof(model::Label);
    absl::MutexLock slock(&StripeFor(s->ref));
    m.chunks += s->chunks.size();
    for (const std::string& c : s->chunks) m.chunk_bytes += c.capacity();
    if (s->app.num_samples() > 0) {
      ++m.chunks;
      m.chunk_bytes += s->app.bytes().size();
    }
    if (s->extra != nullptr) {
      m.ooo_samples += s->extra->ooo.size();
      for (const std::string& c : s->extra->frozen) m.chunk_bytes += c.capacity();
      m.bytes += sizeof(Extra) + (s->extra->ooo.capacity() + s->extra->frozen_ooo.capacity()) *
                                     sizeof(model::Sample);
    }
  }
  // Per series: the MemSeries, its slot in series_, the labels hash set and
  // one entry per label in the postings (plus the all-series list).
  m.bytes += m.chunk_bytes + label_bytes + m.series * (sizeof(MemSeries) + 8 + 16 + 8);
  for (const auto& s : series_) {
    if (s != nullptr) m.bytes += (s->labels.size()) * sizeof(model::SeriesRef);
  }
  return m;
}

uint64_t Head::Freeze(int64_t cut_t) {
  uint64_t frozen_series = 0;
  int64_t new_min = INT64_MAX;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& sp : series_) {
    MemSeries* s = sp.get();
    if (s == nullptr) continue;
    absl::MutexLock slock(&StripeFor(s->ref));
    ESPY_CHECK(s->extra == nullptr || (s->extra->frozen.empty() && s->extra->frozen_ooo.empty()))
        << "Freeze with frozen data left";
    size_t k = 0;
    while (k < s->chunks.size() && ChunkMax(s->chunks[k]) < cut_t) ++k;
    bool take_app = k == s->chunks.size() && s->app.num_samples() > 0 && s->app.max_time() < cut_t;
    size_t ooo_k = 0;
    if (s->extra != nullptr) {
      const auto& ooo = s->extra->ooo;
      while (ooo_k < ooo.size() && ooo[ooo_k].ts < cut_t) ++ooo_k;
    }
    if (k > 0 || take_app || ooo_k > 0) {
      ++frozen_series;
      if (s->extra == nullptr) s->extra = std::make_unique<Extra>();
      Extra& x = *s->extra;
      x.frozen.assign(std::make_move_iterator(s->chunks.begin()),
                      std::make_move_iterator(s->chunks.begin() + static_cast<std::ptrdiff_t>(k)));
      s->chunks.erase(s->chunks.begin(), s->chunks.begin() + static_cast<std::ptrdiff_t>(k));
      if (take_app) {
        x.frozen.emplace_back(s->app.bytes());
        s->app = chunk::ChunkAppender();
      }
      x.frozen_ooo.assign(x.ooo.begin(), x.ooo.begin() + static_cast<std::ptrdiff_t>(ooo_k));
      x.ooo.erase(x.ooo.begin(), x.ooo.begin() + static_cast<std::ptrdiff_t>(ooo_k));
    }
    if (!s->chunks.empty()) new_min = std::min(new_min, ChunkMin(s->chunks.front()));
    if (s->app.num_samples() > 0) new_min = std::min(new_min, s->app.min_time());
    if (s->extra != nullptr && !s->extra->ooo.empty()) {
      new_min = std::min(new_min, s->extra->ooo.front().ts);
    }
  }
  // Appends racing with this scan only lower min_t_ further; keeping the
  // smaller value is safe (a later Freeze finds nothing and resets it).
  min_t_.store(new_min, std::memory_order_relaxed);
  return frozen_series;
}

absl::Status Head::ForEachFrozen(
    const std::function<absl::Status(model::SeriesRef, const model::Labels&,
                                     const std::vector<std::string>&)>& fn) const {
  std::vector<MemSeries*> all;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& sp : series_) {
      if (sp != nullptr) all.push_back(sp.get());
    }
  }
  std::vector<std::string> chunks;
  std::vector<model::Sample> samples;
  for (MemSeries* s : all) {
    chunks.clear();
    {
      absl::MutexLock slock(&StripeFor(s->ref));
      if (s->extra == nullptr) continue;
      const Extra& x = *s->extra;
      if (x.frozen.empty() && x.frozen_ooo.empty()) continue;
      if (x.frozen_ooo.empty()) {
        chunks = x.frozen;
      } else {
        samples.clear();
        for (const std::string& c : x.frozen) DecodeInto(c, INT64_MIN, INT64_MAX, &samples);
        chunks = EncodeChunks(model::MergeNewerWins(samples, x.frozen_ooo));
      }
    }
    ESPY_RETURN_IF_ERROR(fn(s->ref, s->labels, chunks));
  }
  return absl::OkStatus();
}

void Head::ClearFrozen() {
  blocks_version_.fetch_add(1);
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& sp : series_) {
    MemSeries* s = sp.get();
    if (s == nullptr) continue;
    absl::MutexLock slock(&StripeFor(s->ref));
    if (s->extra == nullptr) continue;
    uint64_t dropped = s->extra->frozen_ooo.size();
    for (const std::string& c : s->extra->frozen) dropped += chunk::ReadChunkHeader(c)->num_samples;
    num_samples_.fetch_sub(std::min(dropped, num_samples_.load()), std::memory_order_relaxed);
    s->extra->frozen.clear();
    s->extra->frozen.shrink_to_fit();
    s->extra->frozen_ooo.clear();
    s->extra->frozen_ooo.shrink_to_fit();
    if (s->extra->empty()) s->extra.reset();
  }
}

void Head::ReplaceBlocks(const std::vector<std::shared_ptr<const block::Block>>& add,
                         const std::vector<uint64_t>& remove) {
  std::vector<std::shared_ptr<const BlockEntry>> fresh;
  for (const auto& b : add) {
    auto e = std::make_shared<BlockEntry>();
    e->block = b;
    e->id_of_ref.reserve(b->num_series());
    for (uint32_t id = 0; id < b->num_series(); ++id) {
      e->id_of_ref.emplace(LookupOrCreate(b->Labels(id)), id);
    }
    std::shared_ptr<const block::Tombstones> tombstones = b->tombstones();
    for (const auto& [id, intervals] : *tombstones) {
      if (id >= b->num_series()) continue;
      model::SeriesRef ref = Lookup(b->Labels(id));
      MemSeries* s = Get(ref);
      if (s == nullptr) continue;
      absl::MutexLock lock(&StripeFor(ref));
      MarkDeletedLocked(s);
    }
    fresh.push_back(std::move(e));
  }
  absl::MutexLock lock(&blocks_mu_);
  auto next = std::make_shared<BlockSet>();
  for (const auto& e : blocks_->blocks) {
    if (std::find(remove.begin(), remove.end(), e->block->meta().seq) == remove.end()) {
      next->blocks.push_back(e);
    }
  }
  for (auto& e : fresh) next->blocks.push_back(std::move(e));
  std::sort(next->blocks.begin(), next->blocks.end(), [](const auto& a, const auto& b) {
    return a->block->meta().seq < b->block->meta().seq;
  });
  blocks_ = std::move(next);
  blocks_version_.fetch_add(1);
}

std::vector<std::shared_ptr<const BlockEntry>> Head::Blocks() const {
  absl::ReaderMutexLock lock(&blocks_mu_);
  return blocks_->blocks;
}

}  // namespace espy::storage::head
