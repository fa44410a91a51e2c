#include "ingest/series_cache.h"

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace espy::ingest {

namespace {

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

SeriesCache::SeriesCache(size_t max_bytes)
    : max_bytes_(max_bytes), shards_(std::make_unique<Shard[]>(kShards)) {}

SeriesCache::Shard& SeriesCache::ShardFor(std::string_view key) const {
  // The top bits: the map itself uses the low ones.
  const size_t h = absl::Hash<absl::string_view>{}(View(key));
  return shards_[(h >> 56) % kShards];
}

model::SeriesRef SeriesCache::Find(std::string_view key) const {
  if (!enabled()) return 0;
  Shard& shard = ShardFor(key);
  absl::ReaderMutexLock lock(&shard.mu);
  auto it = shard.map.find(View(key));
  return it == shard.map.end() ? 0 : it->second;
}

void SeriesCache::Insert(std::string_view key, model::SeriesRef ref) {
  if (!enabled()) return;
  const size_t cost = key.size() + kEntryOverhead;
  Shard& shard = ShardFor(key);
  absl::MutexLock lock(&shard.mu);
  auto [it, inserted] = shard.map.try_emplace(View(key), ref);
  if (!inserted) {
    it->second = ref;
    return;
  }
  shard.bytes += cost;
  if (shard.bytes > max_bytes_ / kShards) {
    // Over its share: start the shard again with just this entry. Simpler
    // than LRU bookkeeping on every hit, and the working set refills it.
    shard.map.clear();
    shard.map.try_emplace(View(key), ref);
    shard.bytes = cost;
    resets_.fetch_add(1, std::memory_order_relaxed);
  }
}

SeriesCacheStats SeriesCache::stats() const {
  SeriesCacheStats s;
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.resets = resets_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kShards; ++i) {
    absl::ReaderMutexLock lock(&shards_[i].mu);
    s.entries += shards_[i].map.size();
    s.bytes += shards_[i].bytes;
  }
  return s;
}

SeriesLookup::SeriesLookup(SeriesCache* cache, SeriesCache::Protocol protocol)
    : cache_(cache != nullptr && cache->enabled() ? cache : nullptr),
      key_(1, static_cast<char>(protocol)) {}

SeriesLookup::~SeriesLookup() {
  if (cache_ == nullptr) return;
  cache_->hits_.fetch_add(hits_, std::memory_order_relaxed);
  cache_->misses_.fetch_add(misses_, std::memory_order_relaxed);
}

model::SeriesRef SeriesLookup::Find() {
  if (cache_ == nullptr) return 0;
  const model::SeriesRef ref = cache_->Find(key_);
  ++(ref != 0 ? hits_ : misses_);
  return ref;
}

void SeriesLookup::Learn(model::SampleBatch* batch,
                         absl::FunctionRef<model::SeriesRef(const model::Labels&)> lookup) {
  if (cache_ == nullptr) return;
  for (const auto& [index, key] : missed_) {
    const model::SeriesRef ref = lookup(batch->series[index]);
    if (ref == 0) continue;  // new: it is cached the next time it is sent
    cache_->Insert(key, ref);
    batch->refs.resize(batch->series.size());
    batch->refs[index] = ref;
  }
  missed_.clear();
}

}  // namespace espy::ingest
