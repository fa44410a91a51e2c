// Downsampled tiers of storage::Db (see db.h and tier/rollup.h).
//
// Raw blocks older than the first tier's age are turned into one block per
// tier ("tiers/<resolution>ms/"), each series of the raw block becoming five
// series there (its labels plus __rollup__=min|max|sum|count|last), and then
// deleted. Every tier is made from raw samples at that moment, so a tier
// holds data from the first tier's age back to the next tier's age (where
// the next, coarser one takes over) or the retention.
//
// A raw block is downsampled only once the WAL segments holding its samples
// are removed, so that no restart replays samples already downsampled.
//
// A tier block names the raw blocks it was made from (meta "sources"). A
// crash between writing the tier blocks and deleting the raw one is
// finished at the next open when every tier has its block, and undone (the
// tier blocks deleted, the raw block kept) when only some have.
#include <algorithm>

#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "storage/compact.h"
#include "storage/crash_point.h"
#include "storage/db.h"

namespace espy::storage {
namespace {

int64_t Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

model::Labels WithRollup(const model::Labels& labels, tier::Rollup r) {
  std::vector<model::Label> items = labels.items();
  model::Label add{std::string(tier::kRollupLabel), std::string(tier::RollupName(r))};
  items.insert(std::upper_bound(
                   items.begin(), items.end(), add,
                   [](const model::Label& a, const model::Label& b) { return a.name < b.name; }),
               std::move(add));
  return model::Labels(std::move(items));
}

bool Lists(const block::BlockMeta& m, uint64_t seq) {
  return std::find(m.sources.begin(), m.sources.end(), seq) != m.sources.end();
}

constexpr uint32_t kNoId = UINT32_MAX;

}  // namespace

int64_t Db::TierCutoff(size_t i, int64_t now) const {
  int64_t cutoff = INT64_MIN;
  if (i + 1 < options_.tiers.size()) cutoff = now - options_.tiers[i + 1].after_ms;
  if (options_.retention_ms > 0) cutoff = std::max(cutoff, now - options_.retention_ms);
  return cutoff;
}

std::string Db::TierDir(size_t i) const {
  return fmt::format("{}/tiers/{}ms", options_.dir, options_.tiers[i].resolution_ms);
}

absl::StatusOr<std::shared_ptr<const Db::TierBlock>> Db::OpenTierBlock(size_t i,
                                                                       const std::string& name) {
  ESPY_ASSIGN_OR_RETURN(std::shared_ptr<block::Block> b,
                        block::Block::Open(options_.env, TierDir(i) + "/" + name));
  if (b->meta().resolution != options_.tiers[i].resolution_ms) {
    return absl::DataLossError(fmt::format("block {}: resolution {}ms in a tier of {}ms", b->dir(),
                                           b->meta().resolution, options_.tiers[i].resolution_ms));
  }
  auto t = std::make_shared<TierBlock>();
  t->ids.reserve(b->num_series() / tier::kNumRollups);
  for (uint32_t id = 0; id < b->num_series(); ++id) {
    const model::Labels& labels = b->Labels(id);
    tier::Rollup r;
    if (!tier::ParseRollup(labels.Get(tier::kRollupLabel), &r)) {
      return absl::DataLossError(fmt::format("block {}: series {} has no valid {} label", b->dir(),
                                             labels.ToString(), tier::kRollupLabel));
    }
    std::vector<model::Label> raw;
    for (const model::Label& l : labels.items()) {
      if (l.name != tier::kRollupLabel) raw.push_back(l);
    }
    auto [it, inserted] = t->ids.try_emplace(head_.LookupOrCreate(model::Labels(std::move(raw))));
    if (inserted) it->second.fill(kNoId);
    it->second[static_cast<int>(r)] = id;
  }
  for (const auto& [ref, ids] : t->ids) {
    for (uint32_t id : ids) {
      if (id == kNoId) {
        return absl::DataLossError(fmt::format("block {}: series {} lacks one of its rollups",
                                               b->dir(), head_.SeriesLabels(ref).ToString()));
      }
    }
  }
  t->block = std::move(b);
  return t;
}

absl::Status Db::OpenTiers() {
  fs::Env* env = options_.env;
  auto state = std::make_shared<TierState>();
  state->levels.resize(options_.tiers.size());
  for (size_t i = 0; i < options_.tiers.size(); ++i) {
    const std::string dir = TierDir(i);
    if (absl::Status s = fs::CreateDirs(env, dir); !s.ok()) {
      return absl::FailedPreconditionError(
          fmt::format("tier dir {}: cannot create: {}", dir, s.message()));
    }
    ESPY_ASSIGN_OR_RETURN(std::vector<std::string> entries, env->ListDir(dir));
    std::vector<std::string> names;
    for (const std::string& name : entries) {
      if (name.ends_with(".tmp") || name.ends_with(".del")) {
        base::Warn(options_.logger, "removing unfinished block dir", "dir",
                   fmt::format("tiers/{}ms/{}", options_.tiers[i].resolution_ms, name));
        ESPY_RETURN_IF_ERROR(env->RemoveTree(dir + "/" + name));
        continue;
      }
      if (block::ParseDirName(name) != 0) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      next_seq_ = std::max(next_seq_, block::ParseDirName(name) + 1);
      absl::StatusOr<std::shared_ptr<const TierBlock>> t = OpenTierBlock(i, name);
      if (!t.ok()) {
        Quarantine(dir, name, t.status());
        continue;
      }
      state->levels[i].push_back(*std::move(t));
    }
  }
  // Tiers kept under another --downsampling are not read: say so, since
  // their raw data is gone.
  absl::StatusOr<std::vector<std::string>> tier_dirs = env->ListDir(options_.dir + "/tiers");
  for (const std::string& name : tier_dirs.ok() ? *tier_dirs : std::vector<std::string>{}) {
    const std::string path = options_.dir + "/tiers/" + name;
    bool configured = false;
    for (size_t i = 0; i < options_.tiers.size(); ++i) configured |= path == TierDir(i);
    absl::StatusOr<std::vector<std::string>> inside = env->ListDir(path);
    if (!configured && inside.ok() && !inside->empty()) {
      base::Warn(options_.logger, "downsampled data of a tier not configured is not read", "dir",
                 path, "hint", "set --downsampling to include its resolution");
    }
  }
  // A downsampling a crash cut short: raw blocks that tier blocks were made from.
  // Finished when every tier that still keeps data that old has its block.
  const int64_t now = options_.clock->NowMillis();
  std::vector<uint64_t> finished;
  std::vector<std::string> finished_names;
  for (const auto& e : head_.Blocks()) {
    const uint64_t seq = e->block->meta().seq;
    bool listed = false, complete = true;
    for (size_t i = 0; i < state->levels.size(); ++i) {
      const auto& level = state->levels[i];
      bool has = std::any_of(level.begin(), level.end(),
                             [&](const auto& t) { return Lists(t->block->meta(), seq); });
      listed = listed || has;
      if (!has && e->block->meta().maxt >= TierCutoff(i, now)) complete = false;
    }
    if (!listed) continue;
    if (complete) {
      finished.push_back(seq);
      finished_names.push_back(e->block->meta().DirName());
      base::Warn(options_.logger, "finishing an interrupted downsampling", "block",
                 e->block->meta().DirName());
      continue;
    }
    base::Warn(options_.logger, "undoing an interrupted downsampling", "block",
               e->block->meta().DirName());
    for (size_t i = 0; i < state->levels.size(); ++i) {
      auto& level = state->levels[i];
      for (const auto& t : level) {
        if (Lists(t->block->meta(), seq)) RemoveDir(TierDir(i), t->block->meta().DirName());
      }
      std::erase_if(level, [&](const auto& t) { return Lists(t->block->meta(), seq); });
    }
  }
  for (const auto& level : state->levels) {
    for (const auto& t : level) {
      state->raw_from = std::max(state->raw_from, t->block->meta().maxt + 1);
    }
  }
  SwapTiers(std::move(state), finished);
  for (const std::string& name : finished_names) RemoveBlockDir(name);
  return absl::OkStatus();
}

void Db::SwapTiers(std::shared_ptr<const TierState> next, const std::vector<uint64_t>& remove_raw) {
  absl::MutexLock lock(&tier_mu_);
  tier_state_ = std::move(next);
  if (!remove_raw.empty()) head_.ReplaceBlocks({}, remove_raw);
}

std::shared_ptr<const Db::TierState> Db::Tiers() const {
  absl::ReaderMutexLock lock(&tier_mu_);
  return tier_state_;
}

absl::Status Db::Downsample() {
  if (options_.tiers.empty()) return absl::OkStatus();
  const int64_t before = options_.clock->NowMillis() - options_.tiers.front().after_ms;
  for (const auto& e : head_.Blocks()) {
    const block::BlockMeta& m = e->block->meta();
    // A block whose samples are still in the WAL waits: a restart would
    // replay them into the head and they would be counted twice.
    if (m.maxt < before && m.wal_segment <= wal_removed_before_) {
      ESPY_RETURN_IF_ERROR(DownsampleBlock(e->block));
    }
  }
  return absl::OkStatus();
}

absl::Status Db::DownsampleBlock(const std::shared_ptr<const block::Block>& raw) {
  auto start = std::chrono::steady_clock::now();
  const size_t n = options_.tiers.size();
  std::vector<std::unique_ptr<block::BlockWriter>> writers(n);
  for (size_t i = 0; i < n; ++i) {
    ESPY_ASSIGN_OR_RETURN(writers[i],
                          block::BlockWriter::Create(options_.env, TierDir(i), next_seq_++, 1));
    writers[i]->SetDownsampled(options_.tiers[i].resolution_ms, {raw->meta().seq});
  }
  std::vector<model::Sample> samples, values;
  std::vector<tier::Bucket> buckets;
  std::vector<std::string> chunks;
  std::vector<std::string_view> views;
  for (uint32_t id = 0; id < raw->num_series(); ++id) {
    samples.clear();
    if (absl::Status s = raw->Read(id, INT64_MIN, INT64_MAX, &samples); !s.ok()) {
      return absl::DataLossError(fmt::format("downsampling block {}: series {}: {}", raw->dir(),
                                             raw->Labels(id).ToString(), s.message()));
    }
    if (samples.empty()) continue;
    for (size_t i = 0; i < n; ++i) {
      buckets.clear();
      tier::Downsample(samples, options_.tiers[i].resolution_ms, &buckets);
      for (int r = 0; r < tier::kNumRollups; ++r) {
        values.clear();
        for (const tier::Bucket& b : buckets) {
          values.push_back({b.ts, b.Get(static_cast<tier::Rollup>(r))});
        }
        chunks.clear();
        ESPY_RETURN_IF_ERROR(EncodeChunks(values, options_.compacted_chunk_samples, &chunks));
        views.assign(chunks.begin(), chunks.end());
        ESPY_RETURN_IF_ERROR(writers[i]->AddSeries(
            WithRollup(raw->Labels(id), static_cast<tier::Rollup>(r)), views));
      }
    }
  }
  std::shared_ptr<const TierState> cur = Tiers();
  auto next = std::make_shared<TierState>(*cur);
  uint64_t buckets_written = 0;
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<block::BlockMeta> meta = writers[i]->Finish();
    if (absl::IsNotFound(meta.status())) continue;  // every raw sample was deleted
    ESPY_RETURN_IF_ERROR(meta.status());
    if (i == 0) CrashPoint("downsample_after_first_tier");
    ESPY_ASSIGN_OR_RETURN(std::shared_ptr<const TierBlock> t, OpenTierBlock(i, meta->DirName()));
    next->raw_from = std::max(next->raw_from, meta->maxt + 1);
    buckets_written += meta->num_samples / tier::kNumRollups;
    next->levels[i].push_back(std::move(t));
  }
  SwapTiers(std::move(next), {raw->meta().seq});
  CrashPoint("downsample_before_raw_delete");
  RemoveBlockDir(raw->meta().DirName());
  blocks_downsampled_.fetch_add(1, std::memory_order_relaxed);
  base::Info(options_.logger, "downsampled block", "block", raw->meta().DirName(), "mint",
             raw->meta().mint, "maxt", raw->meta().maxt, "samples", raw->meta().num_samples,
             "tiers", n, "buckets", buckets_written, "duration_ms",
             Millis(std::chrono::steady_clock::now() - start));
  return absl::OkStatus();
}

absl::Status Db::ExpireTiers() {
  if (options_.tiers.empty()) return absl::OkStatus();
  const int64_t now = options_.clock->NowMillis();
  std::shared_ptr<const TierState> cur = Tiers();
  auto next = std::make_shared<TierState>(*cur);
  std::vector<std::pair<size_t, std::string>> gone;
  for (size_t i = 0; i < next->levels.size(); ++i) {
    const int64_t cutoff = TierCutoff(i, now);
    std::erase_if(next->levels[i], [&](const auto& t) {
      if (t->block->meta().maxt >= cutoff) return false;
      gone.emplace_back(i, t->block->meta().DirName());
      return true;
    });
  }
  if (gone.empty()) return absl::OkStatus();
  SwapTiers(std::move(next), {});
  for (const auto& [i, name] : gone) RemoveDir(TierDir(i), name);
  tier_blocks_expired_.fetch_add(gone.size(), std::memory_order_relaxed);
  base::Info(options_.logger, "dropped tier blocks", "blocks", gone.size());
  return absl::OkStatus();
}

absl::Status Db::DeleteFromTiers(const index::Postings& refs, int64_t mint, int64_t maxt) {
  for (const auto& level : Tiers()->levels) {
    for (const auto& t : level) {
      const block::BlockMeta& m = t->block->meta();
      if (m.maxt < mint || m.mint > maxt) continue;
      block::Tombstones add;
      for (model::SeriesRef ref : refs) {
        auto it = t->ids.find(ref);
        if (it == t->ids.end()) continue;
        for (uint32_t id : it->second) {
          int64_t lo = mint, hi = maxt;
          if (t->block->ClampToData(id, &lo, &hi)) add[id].Add({lo, hi});
        }
      }
      if (!add.empty()) ESPY_RETURN_IF_ERROR(t->block->AddTombstones(add));
    }
  }
  return absl::OkStatus();
}

int Db::TierFor(int64_t mint, int64_t step_ms, int64_t max_resolution_ms) const {
  if (options_.tiers.empty() || mint >= Tiers()->raw_from) return 0;
  int level = 1;
  for (size_t i = 0; i < options_.tiers.size(); ++i) {
    const int64_t res = options_.tiers[i].resolution_ms;
    if (res <= step_ms && res <= max_resolution_ms) level = static_cast<int>(i) + 1;
  }
  const int64_t now = options_.clock->NowMillis();
  for (size_t i = 1; i < options_.tiers.size(); ++i) {
    if (mint < now - options_.tiers[i].after_ms) level = std::max(level, static_cast<int>(i) + 1);
  }
  return level;
}

absl::Status Db::ReadBuckets(model::SeriesRef ref, int level, int64_t mint, int64_t maxt,
                             std::vector<tier::Bucket>* out) const {
  if (level < 1 || static_cast<size_t>(level) > options_.tiers.size()) {
    return absl::InvalidArgumentError(fmt::format("tier {} is not configured", level));
  }
  if (mint > maxt) return absl::OkStatus();
  const int64_t res = options_.tiers[level - 1].resolution_ms;
  std::vector<tier::Bucket> stored, part;
  std::vector<model::Sample> values[tier::kNumRollups];
  std::vector<model::Sample> raw;
  absl::ReaderMutexLock lock(&tier_mu_);
  for (const auto& t : tier_state_->levels[level - 1]) {
    const block::BlockMeta& m = t->block->meta();
    if (m.maxt < mint || m.mint > maxt) continue;
    auto it = t->ids.find(ref);
    if (it == t->ids.end()) continue;
    for (int r = 0; r < tier::kNumRollups; ++r) {
      values[r].clear();
      ESPY_RETURN_IF_ERROR(t->block->Read(it->second[r], mint, maxt, &values[r]));
    }
    part.clear();
    for (size_t k = 0; k < values[0].size(); ++k) {
      tier::Bucket b;
      b.ts = values[0][k].ts;
      for (int r = 0; r < tier::kNumRollups; ++r) {
        if (values[r].size() != values[0].size() || values[r][k].ts != b.ts) {
          return absl::DataLossError(
              fmt::format("block {}: the rollups of series {} do not line up", t->block->dir(),
                          head_.SeriesLabels(ref).ToString()));
        }
      }
      b.min = values[static_cast<int>(tier::Rollup::kMin)][k].value;
      b.max = values[static_cast<int>(tier::Rollup::kMax)][k].value;
      b.sum = values[static_cast<int>(tier::Rollup::kSum)][k].value;
      b.count = values[static_cast<int>(tier::Rollup::kCount)][k].value;
      if (model::IsStaleNaN(b.count)) b.count = 0;  // stored by Get for a stale-only bucket
      b.last = values[static_cast<int>(tier::Rollup::kLast)][k].value;
      part.push_back(b);
    }
    stored = tier::MergeBuckets(stored, part, res);
  }
  // Raw samples not downsampled yet, over whole buckets: a bucket is
  // stamped with its last sample, so the ones stamped in [mint, maxt] are
  // the buckets in [mint, maxt], as stored ones are.
  const int64_t last_start = tier::BucketStart(maxt, res);
  const int64_t read_to = last_start > INT64_MAX - res ? INT64_MAX : last_start + res - 1;
  const int64_t read_from = mint < INT64_MIN + res ? INT64_MIN : tier::BucketStart(mint, res);
  head_.Read(ref, read_from, read_to, SIZE_MAX, &raw);
  part.clear();
  tier::Downsample(raw, res, &part);
  std::erase_if(part, [&](const tier::Bucket& b) { return b.ts < mint || b.ts > maxt; });
  std::vector<tier::Bucket> merged = tier::MergeBuckets(stored, part, res);
  out->insert(out->end(), merged.begin(), merged.end());
  return absl::OkStatus();
}

}  // namespace espy::storage
