#include "ingest/series_cache.h"

#include <algorithm>
#include <cstring>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace espy::ingest {

namespace {

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The shard of a hash, one of 16: its top bits, as the map itself mostly
// uses the low ones.
size_t ShardIndex(size_t hash) { return hash >> (sizeof(size_t) * 8 - 4); }

}  // namespace

SeriesCache::SeriesCache(size_t max_bytes) : max_bytes_(max_bytes) {}

size_t SeriesCache::Hash(std::string_view key) {
  // The maps' own hash, so that it is computed once per lookup.
  return absl::Hash<absl::string_view>{}(View(key));
}

const SeriesCache::Shard& SeriesCache::ShardFor(size_t hash) const {
  static_assert(kShards == 16);
  return shards_[ShardIndex(hash)];
}

SeriesCache::Shard& SeriesCache::MutableShardFor(size_t hash) { return shards_[ShardIndex(hash)]; }

model::SeriesRef SeriesCache::FindLocked(std::string_view key) const {
  const size_t hash = Hash(key);
  const Shard& shard = ShardFor(hash);
  auto it = shard.map.find(View(key), hash);
  return it == shard.map.end() ? 0 : it->second;
}

model::SeriesRef SeriesCache::Find(std::string_view key) const {
  if (!enabled()) return 0;
  absl::ReaderMutexLock lock(&mu_);
  return FindLocked(key);
}

absl::string_view SeriesCache::Shard::Keep(std::string_view key) {
  if (blocks.empty() || block_used + key.size() > kBlockBytes) {
    // A key longer than a block gets a block of its own.
    blocks.push_back(std::make_unique<char[]>(std::max(kBlockBytes, key.size())));
    block_used = 0;
  }
  char* at = blocks.back().get() + block_used;
  std::memcpy(at, key.data(), key.size());
  block_used += key.size();
  return absl::string_view(at, key.size());
}

void SeriesCache::Shard::Clear() {
  map.clear();
  blocks.clear();
  block_used = 0;
  bytes = 0;
}

void SeriesCache::InsertLocked(std::string_view key, model::SeriesRef ref) {
  const size_t cost = key.size() + kEntryOverhead;
  const size_t hash = Hash(key);
  Shard& shard = MutableShardFor(hash);
  if (auto it = shard.map.find(View(key), hash); it != shard.map.end()) {
    it->second = ref;
    return;
  }
  if (shard.bytes + cost > max_bytes_ / kShards) {
    // Over its share: start the shard again with just this entry. Simpler
    // than LRU bookkeeping on every hit, and the working set refills it.
    shard.Clear();
    resets_.fetch_add(1, std::memory_order_relaxed);
  }
  shard.map.emplace(shard.Keep(key), ref);
  shard.bytes += cost;
}

void SeriesCache::Insert(std::string_view key, model::SeriesRef ref) {
  if (!enabled()) return;
  absl::MutexLock lock(&mu_);
  InsertLocked(key, ref);
}

SeriesCacheStats SeriesCache::stats() const {
  SeriesCacheStats s;
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.resets = resets_.load(std::memory_order_relaxed);
  absl::ReaderMutexLock lock(&mu_);
  for (size_t i = 0; i < kShards; ++i) {
    s.entries += shards_[i].map.size();
    s.bytes += shards_[i].bytes;
  }
  return s;
}

SeriesLookup::SeriesLookup(SeriesCache* cache, SeriesCache::Protocol protocol)
    : cache_(cache != nullptr && cache->enabled() ? cache : nullptr),
      key_(1, static_cast<char>(protocol)) {}

SeriesLookup::~SeriesLookup() {
  Unlock();
  if (cache_ == nullptr) return;
  cache_->hits_.fetch_add(hits_, std::memory_order_relaxed);
  cache_->misses_.fetch_add(misses_, std::memory_order_relaxed);
}

// Not analysed: the shared lock is held from the first Find to Learn (or the
// destructor) across calls, as locked_ says, which the analysis cannot follow.
void SeriesLookup::Unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!locked_) return;
  cache_->mu_.ReaderUnlock();
  locked_ = false;
}

// Not analysed: see Unlock.
model::SeriesRef SeriesLookup::Find() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (cache_ == nullptr) return 0;
  if (!locked_) {
    cache_->mu_.ReaderLock();
    locked_ = true;
  }
  const model::SeriesRef ref = cache_->FindLocked(key_);
  ++(ref != 0 ? hits_ : misses_);
  return ref;
}

void SeriesLookup::Learn(model::SampleBatch* batch,
                         absl::FunctionRef<model::SeriesRef(const model::Labels&)> lookup) {
  Unlock();
  if (cache_ == nullptr || missed_.empty()) return;
  std::vector<std::pair<const std::string*, model::SeriesRef>> found;
  batch->refs.resize(batch->series.size());
  for (const auto& [index, key] : missed_) {
    const model::SeriesRef ref = lookup(batch->series[index]);
    if (ref == 0) continue;  // new: it is cached the next time it is sent
    found.emplace_back(&key, ref);
    batch->refs[index] = ref;
  }
  if (!found.empty()) {
    absl::MutexLock lock(&cache_->mu_);
    for (const auto& [key, ref] : found) cache_->InsertLocked(*key, ref);
  }
  missed_.clear();
}

}  // namespace espy::ingest
