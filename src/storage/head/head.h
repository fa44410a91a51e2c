// Head: the in-memory part of the storage and the registry of every series
// (labels -> ref, label index). Recent samples are kept as compressed chunks
// (docs/format/chunk.md) cut at 120 samples or a block-range boundary;
// out-of-order samples go to a small sorted per-series buffer that wins over
// the chunks on the same timestamp and is merged into them once it fills.
// Persisted blocks are attached to the head (ReplaceBlocks), so Read, Select,
// LabelNames and LabelValues cover blocks + head. storage::Db owns the head,
// the WAL that makes it durable, and the blocks it is cut into.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "model/labels.h"
#include "model/matcher.h"
#include "model/sample_batch.h"
#include "storage/block/block.h"
#include "storage/chunk/chunk.h"
#include "storage/head/ref_table.h"
#include "storage/index/postings.h"

namespace espy::storage::head {

struct HeadOptions {
  // Chunks never span a multiple of this (ms): the unit blocks are cut in.
  int64_t block_range = 2 * 3600 * 1000;
  // A chunk is closed once it holds this many samples (Gorilla's sweet spot:
  // longer chunks compress a little better but cost more to decode partly).
  uint32_t max_chunk_samples = 120;
  // Out-of-order samples of one series buffered before they are merged into
  // its chunks. Larger: cheaper bursts of backfill, more memory per series.
  uint32_t ooo_merge_threshold = 32;
};

// A persisted block attached to the head, with the head ref of each of its
// series. Immutable.
struct BlockEntry {
  std::shared_ptr<const block::Block> block;
  absl::flat_hash_map<model::SeriesRef, uint32_t> id_of_ref;
};

// A consistent copy of one series' samples over [mint, covered_maxt()],
// taken by Head::Snapshot under the series' lock: the head's chunks are
// copied still encoded and decoded sample by sample as Next() reaches them,
// so a reader that stops early decodes little beyond what it returns (and
// each chunk at most once). Attached blocks and frozen chunks are decoded
// when the snapshot is taken. Later writes, deletes and merges in the head
// do not change it. Thread-compatible; move-constructible (a move keeps the
// position); independent of the Head once taken.
class SeriesSnapshot {
 public:
  SeriesSnapshot() = default;
  // The copied chunks are allocated from `memory` (which must outlive the
  // snapshot): a reader that takes many snapshots at once can give them
  // one arena.
  explicit SeriesSnapshot(std::pmr::memory_resource* memory) : bytes_(memory), ends_(memory) {}
  SeriesSnapshot(SeriesSnapshot&&) = default;
  // No move assignment: between two memory resources it would copy the
  // buffer the decoder points into.
  SeriesSnapshot& operator=(SeriesSnapshot&&) = delete;
  SeriesSnapshot(const SeriesSnapshot&) = delete;
  SeriesSnapshot& operator=(const SeriesSnapshot&) = delete;

  // Moves to the next sample (the first one on the first call), oldest
  // first; false when none is left.
  bool Next();
  // The current sample. REQUIRES: the last Next() returned true.
  const model::Sample& At() const { return cur_; }
  // The snapshot holds every sample of the series with mint <= ts <=
  // covered_maxt() (later writes winning on equal timestamps, deleted ones
  // left out); to go on, take another from covered_maxt() + 1 unless
  // covered_maxt() is the maxt asked for.
  int64_t covered_maxt() const { return cover_; }

 private:
  friend class Head;
  // Empties the snapshot for a range starting at mint.
  void Reset(int64_t mint);
  // Moves the chunk source to its next sample within [mint_, cover_];
  // false when it has none left.
  bool AdvanceChunks();

  int64_t mint_ = 0;
  int64_t cover_ = 0;
  // Three sources, newer ones winning on equal timestamps: decoded block and
  // frozen data, the head's encoded chunks, and its out-of-order buffer.
  std::vector<model::Sample> older_;
  size_t older_pos_ = 0;
  // Chunk k is bytes_[ends_[k - 1], ends_[k]). A vector, not a string: a
  // move must keep the buffer the iterator points into.
  std::pmr::vector<char> bytes_;
  std::pmr::vector<uint32_t> ends_;
  size_t next_chunk_ = 0;  // the chunk AdvanceChunks opens next
  std::optional<chunk::ChunkIterator> it_;
  bool chunk_valid_ = false;
  model::Sample chunk_cur_{};
  std::vector<model::Sample> ooo_;
  size_t ooo_pos_ = 0;
  model::Sample cur_{};
  bool started_ = false;
  bool done_ = false;
};

// Thread-safe. Series are created and samples appended by one writer at a
// time (the Db's commit loop or WAL replay); readers may run concurrently
// and never block the writer for longer than a copy of one series' data.
// Finding a series by ref takes no lock (series are never removed).
class Head {
 public:
  Head();
  explicit Head(HeadOptions options);
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  // The ref of the series with exactly these labels, or 0.
  model::SeriesRef Lookup(const model::Labels& labels) const;
  // Resizes *refs to labels.size() (new entries 0) and sets each entry
  // that is 0 to Lookup(labels[i]), taking the lock once per few hundred.
  // Nonzero entries are kept (their labels may be empty).
  void LookupAll(const std::vector<model::Labels>& labels,
                 std::vector<model::SeriesRef>* refs) const;
  // Adds a series with the next free ref and returns it.
  // REQUIRES: Lookup(labels) == 0.
  model::SeriesRef Create(model::Labels labels);
  // Lookup, and Create when missing, atomically.
  model::SeriesRef LookupOrCreate(const model::Labels& labels);
  // WAL replay: adds a series under the ref it was written with. A ref seen
  // before with the same labels is fine; with other labels, DataLoss.
  absl::Status Recover(model::SeriesRef ref, model::Labels labels);

  // Adds or overwrites (same ts: the later write wins) one sample.
  // REQUIRES: ref was returned by Create, LookupOrCreate or Recover.
  void Append(model::SeriesRef ref, int64_t ts, double value);
  // Append(refs[i], samples[i].ts, samples[i].value) for each i, in order,
  // updating the head's sample counters once.
  // REQUIRES: refs.size() == samples.size().
  void AppendAll(const std::vector<model::SeriesRef>& refs,
                 const std::vector<model::BatchSample>& samples);
  bool Exists(model::SeriesRef ref) const;

  // WAL bookkeeping for the Db: returns true the first time it is called for
  // `ref` with generation `gen` (the series must then be written to the WAL
  // again: its record was in a truncated segment or never written).
  bool MarkLogged(model::SeriesRef ref, uint32_t gen);
  // MarkLogged of each of `refs`, in order; appends to *first the indexes
  // of those for which it returned true.
  void MarkAllLogged(const std::vector<model::SeriesRef>& refs, uint32_t gen,
                     std::vector<uint32_t>* first);

  // Refs of the series that satisfy all matchers, ascending (head and
  // attached blocks).
  index::Postings Select(const std::vector<model::Matcher>& matchers) const;
  // Labels of a series; the reference stays valid for the Head's lifetime.
  // REQUIRES: Exists(ref).
  const model::Labels& SeriesLabels(model::SeriesRef ref) const;
  // Sorts refs by their series' labels (the order PromQL and the APIs
  // answer in). REQUIRES: Exists(ref) for each.
  void SortByLabels(std::vector<model::SeriesRef>* refs) const;
  // Appends to *out the samples of `ref` with ts in [mint, maxt], oldest
  // first, at most `max` of them, from the attached blocks and the head
  // (a consistent snapshot). Returns how many were appended.
  size_t Read(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t max,
              std::vector<model::Sample>* out) const;
  // Replaces *snap with a snapshot of `ref` from mint: the samples Read would
  // return for [mint, maxt], decoded lazily. To bound the copy, it may end
  // at covered_maxt() < maxt, but only past at least `min_samples` samples
  // of one of its sources (fewer where some were deleted), never before
  // mint; a paging reader resumes from covered_maxt() + 1. An unknown ref or
  // mint > maxt gives an empty snapshot covering [mint, maxt].
  void Snapshot(model::SeriesRef ref, int64_t mint, int64_t maxt, size_t min_samples,
                SeriesSnapshot* snap) const;

  std::vector<std::string> LabelNames() const;
  std::vector<std::string> LabelValues(std::string_view name) const;

  // ---- Deleting (storage::Db) ----

  // Drops the samples of `ref` with mint <= ts <= maxt from memory (chunks,
  // out-of-order buffer and frozen data are rewritten, so memory shrinks);
  // attached blocks are not touched (Db gives them tombstones). Samples
  // appended later are kept, also inside [mint, maxt]. Returns the number of
  // samples dropped. REQUIRES: called on the writer thread.
  uint64_t Delete(model::SeriesRef ref, int64_t mint, int64_t maxt);
  // Whether a deletion touched the series (Delete, or block tombstones seen
  // by ReplaceBlocks) since this Head was made: it may have no samples left,
  // so a listing of series must read it rather than trust the label index.
  bool HadDeletion(model::SeriesRef ref) const;
  // How many series HadDeletion; 0 means the label index is exact.
  uint64_t num_series_with_deletions() const {
    return num_deleted_series_.load(std::memory_order_relaxed);
  }

  uint64_t num_series() const { return num_series_.load(std::memory_order_relaxed); }
  // Samples held in memory (an upper bound until out-of-order buffers merge).
  uint64_t num_samples() const { return num_samples_.load(std::memory_order_relaxed); }
  // Newest sample timestamp ever appended; INT64_MIN when none.
  int64_t max_time() const { return max_t_.load(std::memory_order_relaxed); }
  // Oldest timestamp of unfrozen data (a lower bound); INT64_MAX when none.
  int64_t min_time() const { return min_t_.load(std::memory_order_relaxed); }

  struct MemoryStats {
    uint64_t series = 0;
    uint64_t chunks = 0;
    uint64_t chunk_bytes = 0;  // encoded bytes of closed, open and frozen chunks
    uint64_t ooo_samples = 0;
    uint64_t bytes = 0;  // estimate of all memory held for series, index included
  };
  // Walks every series (O(series)); for /metrics.
  MemoryStats Memory() const;

  // ---- Cutting blocks (storage::Db) ----

  // Moves every chunk and out-of-order sample with ts < cut_t aside
  // ("frozen"): still read, but no longer changed, so they can be written to
  // a block. Returns the number of series with frozen data.
  // REQUIRES: called on the writer thread; no frozen data left (ClearFrozen).
  uint64_t Freeze(int64_t cut_t);
  // Calls fn(ref, labels, chunks) for each series with frozen data, in ref
  // order, with its frozen samples as encoded chunks (out-of-order samples
  // merged in; each chunk within one block range, in time order).
  absl::Status ForEachFrozen(
      const std::function<absl::Status(model::SeriesRef, const model::Labels&,
                                       const std::vector<std::string>&)>& fn) const;
  // Drops the frozen data, once it is readable from attached blocks.
  void ClearFrozen();

  // Attaches blocks and detaches the ones whose seq is in `remove`,
  // atomically for readers. Series of new blocks missing from the head are
  // created; series with tombstones in them count as HadDeletion.
  void ReplaceBlocks(const std::vector<std::shared_ptr<const block::Block>>& add,
                     const std::vector<uint64_t>& remove);
  // The attached blocks, ascending seq.
  std::vector<std::shared_ptr<const BlockEntry>> Blocks() const;

  // Encodes sorted, unique samples as chunks split at the block range and
  // at max_chunk_samples (for block writing and compaction).
  std::vector<std::string> EncodeChunks(const std::vector<model::Sample>& samples) const;

 private:
  struct Extra {
    std::vector<model::Sample> ooo;   // sorted, unique ts; newer than chunk data
    std::vector<std::string> frozen;  // chunks being written to a block
    std::vector<model::Sample> frozen_ooo;
    bool empty() const { return ooo.empty() && frozen.empty() && frozen_ooo.empty(); }
  };
  struct MemSeries {
    MemSeries(model::SeriesRef r, model::Labels l) : ref(r), labels(std::move(l)) {}
    const model::SeriesRef ref;
    const model::Labels labels;
    // The rest is guarded by the head's stripe lock for `ref`.
    int64_t max_t = INT64_MIN;  // newest in-order timestamp (chunks + app)
    uint32_t logged_gen = 0;    // writer thread only
    bool had_deletion = false;
    chunk::ChunkAppender app;         // the open chunk (maybe empty)
    std::vector<std::string> chunks;  // closed; sorted, disjoint, before app
    std::unique_ptr<Extra> extra;
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
  struct BlockSet {
    std::vector<std::shared_ptr<const BlockEntry>> blocks;  // ascending seq
  };
  static constexpr size_t kStripes = 1024;  // sample locks, by ref

  MemSeries* Get(model::SeriesRef ref) const;
  // The body of Append, for a series found; returns true if the caller is
  // to count one sample more in num_samples_ (an in-order append). The
  // out-of-order path counts its own, and an overwrite adds none.
  bool AppendTo(MemSeries* s, model::SeriesRef ref, int64_t ts, double value);
  model::SeriesRef AddLocked(model::SeriesRef ref, model::Labels labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex& StripeFor(model::SeriesRef ref) const { return stripes_[ref % kStripes]; }
  // REQUIRES: the series' stripe lock.
  void CloseApp(MemSeries* s);
  // REQUIRES: the series' stripe lock. Returns false (it counts itself).
  bool AppendOoo(MemSeries* s, int64_t ts, double value);
  void MergeOoo(MemSeries* s);
  // Removes samples in [mint, maxt] from sorted, disjoint chunks followed
  // by the open chunk *app (null: none), re-encoding the chunks that held
  // some. Returns how many were removed.
  uint64_t EraseFromChunks(std::vector<std::string>* chunks, chunk::ChunkAppender* app,
                           int64_t mint, int64_t maxt) const;
  // REQUIRES: the series' stripe lock.
  void MarkDeletedLocked(MemSeries* s);
  int64_t RangeOf(int64_t ts) const;

  const HeadOptions options_;
  mutable absl::Mutex mu_;
  // series_[ref - 1]; null for refs lost to WAL corruption. MemSeries never
  // move, so pointers handed out stay valid.
  std::vector<std::unique_ptr<MemSeries>> series_ ABSL_GUARDED_BY(mu_);
  // The same pointers, for lookups by ref without mu_ (set under it).
  RefTable<MemSeries> by_ref_;
  absl::flat_hash_set<const MemSeries*, LabelsPtrHash, LabelsPtrEq> by_labels_ ABSL_GUARDED_BY(mu_);
  index::MemPostings postings_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex stripes_[kStripes];
  std::atomic<uint64_t> num_series_{0};
  std::atomic<uint64_t> num_samples_{0};
  std::atomic<int64_t> max_t_{INT64_MIN};
  std::atomic<int64_t> min_t_{INT64_MAX};
  std::atomic<uint64_t> num_deleted_series_{0};

  mutable absl::Mutex blocks_mu_;
  std::shared_ptr<const BlockSet> blocks_ ABSL_GUARDED_BY(blocks_mu_);
  // Bumped before frozen data is dropped: a reader that saw the old block set
  // and then missed the frozen data notices and reads again.
  std::atomic<uint64_t> blocks_version_{0};
};

}  // namespace espy::storage::head
