// SeriesCache: the storage ref of each series spelling seen on the wire, so
// that a series sent again skips building, validating, hashing and
// comparing its labels. The parsers look up the raw bytes that name a
// series (a remote-write series' Label messages, an Influx series key and
// field key, a Graphite path with its tags) and, on a hit, add the series to
// the batch by ref (SampleBatch::AddSeriesRef).
//
// Safe because a spelling always parses to the same labels (the limits are
// fixed for the life of the process) and the head never drops a series, so
// a ref once found stays right. Spellings are learnt after the parse, from
// the head, for series that exist there already: a brand-new series is
// cached the next time it is sent.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "model/sample_batch.h"

namespace espy::ingest {

struct SeriesCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;   // estimated: keys plus per-entry overhead
  uint64_t resets = 0;  // shards emptied for going over their share of max_bytes
};

// Thread-safe. One reader-writer lock: a SeriesLookup holds it shared for a
// whole parse (two atomic operations per parse, not per series), and
// spellings are added under it exclusively once per parse.
class SeriesCache {
 public:
  // Protocols spell series differently; each gets its own key space.
  enum class Protocol : char { kRemoteWrite = 'r', kInflux = 'i', kGraphite = 'g' };

  // Holds about max_bytes; a shard that would go over its share is emptied
  // first. max_bytes = 0 disables the cache (every lookup misses).
  explicit SeriesCache(size_t max_bytes);
  SeriesCache(const SeriesCache&) = delete;
  SeriesCache& operator=(const SeriesCache&) = delete;

  bool enabled() const { return max_bytes_ > 0; }
  // The ref cached for `key` (a protocol byte, then the spelling), or 0.
  model::SeriesRef Find(std::string_view key) const;
  void Insert(std::string_view key, model::SeriesRef ref);
  SeriesCacheStats stats() const;

 private:
  friend class SeriesLookup;
  static constexpr size_t kShards = 16;
  // Per entry beyond its key: the map slot, the string and malloc overhead.
  static constexpr size_t kEntryOverhead = 64;
  // The budget is kept per shard, so that going over it empties a
  // sixteenth of the cache, not all of it. A shard copies its keys into
  // blocks in insertion order, not each into its own allocation: a producer
  // resends its series in the order they were learnt, so its lookups then
  // read the keys' memory front to back.
  struct Shard {
    absl::flat_hash_map<absl::string_view, model::SeriesRef> map;  // views into blocks
    std::vector<std::unique_ptr<char[]>> blocks;
    size_t block_used = 0;  // bytes of blocks.back() in use
    size_t bytes = 0;
    // A copy of `key` that lives as long as the shard's blocks.
    absl::string_view Keep(std::string_view key);
    void Clear();
  };
  static constexpr size_t kBlockBytes = 64 << 10;
  static size_t Hash(std::string_view key);
  const Shard& ShardFor(size_t hash) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Shard& MutableShardFor(size_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  model::SeriesRef FindLocked(std::string_view key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void InsertLocked(std::string_view key, model::SeriesRef ref) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  mutable absl::Mutex mu_;
  // Lookups (Find, a SeriesLookup, stats) hold mu_ shared; Insert and Learn
  // hold it exclusively.
  std::array<Shard, kShards> shards_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> resets_{0};
};

// One parse's use of a SeriesCache: the parser builds a series' spelling in
// key(), calls Find, and on a miss adds the series by labels and calls
// Missed. After the parse, Learn resolves the missed series. From the first
// Find to Learn (or its end), it holds the cache's lock shared, so a thread
// must not use a second SeriesLookup of the same cache in between (the lock
// is not reentrant). Thread-compatible.
class SeriesLookup {
 public:
  // `cache` may be null (or disabled): then every Find misses and Learn
  // does nothing.
  SeriesLookup(SeriesCache* cache, SeriesCache::Protocol protocol);
  ~SeriesLookup();  // adds the hit and miss counts to the cache's
  SeriesLookup(const SeriesLookup&) = delete;
  SeriesLookup& operator=(const SeriesLookup&) = delete;

  bool enabled() const { return cache_ != nullptr; }
  // Starts a new spelling (the protocol byte) and returns it to append to.
  std::string& StartKey() {
    key_.resize(1);
    return key_;
  }
  // The ref cached for the spelling built since StartKey, or 0.
  model::SeriesRef Find();
  // The spelling built since StartKey is that of batch series `index`,
  // which was added by its labels.
  void Missed(uint32_t index) {
    if (cache_ != nullptr) missed_.emplace_back(index, key_);
  }

  // Looks up in storage (`lookup`: labels -> ref, 0 if unknown) each missed
  // series of `batch`; caches those found and sets their batch->refs entry.
  void Learn(model::SampleBatch* batch,
             absl::FunctionRef<model::SeriesRef(const model::Labels&)> lookup);

 private:
  void Unlock();

  SeriesCache* const cache_;
  bool locked_ = false;  // holds cache_->mu_ shared
  std::string key_;
  std::vector<std::pair<uint32_t, std::string>> missed_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace espy::ingest
