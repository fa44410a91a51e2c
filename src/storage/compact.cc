// Block compaction planning and merging (see compact.h).
#include "storage/compact.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "base/fmt_absl.h"
#include "base/status_macros.h"
#include "fmt/format.h"
#include "model/labels.h"
#include "model/sample_merge.h"
#include "storage/chunk/chunk.h"

namespace espy::storage {
namespace {

int64_t FloorDiv(int64_t t, int64_t range) {
  int64_t r = t / range;
  if (t % range < 0) --r;
  return r;
}

bool Overlap(const block::BlockMeta& a, const block::BlockMeta& b) {
  return a.mint <= b.maxt && b.mint <= a.maxt;
}

}  // namespace

std::vector<std::vector<size_t>> PlanCompactions(const std::vector<block::BlockMeta>& metas,
                                                 int64_t max_range, int64_t complete_before) {
  std::map<int64_t, std::vector<size_t>> windows;
  for (size_t i = 0; i < metas.size(); ++i) {
    const int64_t w = FloorDiv(metas[i].mint, max_range);
    if (FloorDiv(metas[i].maxt, max_range) != w) continue;  // wider than a window
    windows[w].push_back(i);
  }
  std::vector<std::vector<size_t>> plan;
  for (auto& [w, group] : windows) {
    if (group.size() < 2) continue;
    bool overlapping = false;
    for (size_t a = 0; a < group.size() && !overlapping; ++a) {
      for (size_t b = a + 1; b < group.size() && !overlapping; ++b) {
        overlapping = Overlap(metas[group[a]], metas[group[b]]);
      }
    }
    // Overflow-safe "window end <= complete_before".
    const bool complete = w < FloorDiv(complete_before, max_range);
    if (!overlapping && !complete) continue;
    block::BlockMeta span;
    span.mint = INT64_MAX;
    span.maxt = INT64_MIN;
    for (size_t i : group) {
      span.mint = std::min(span.mint, metas[i].mint);
      span.maxt = std::max(span.maxt, metas[i].maxt);
    }
    bool foreign = false;
    for (size_t i = 0; i < metas.size() && !foreign; ++i) {
      foreign = Overlap(metas[i], span) && std::find(group.begin(), group.end(), i) == group.end();
    }
    if (foreign) continue;
    std::sort(group.begin(), group.end());
    plan.push_back(group);
  }
  return plan;
}

absl::Status EncodeChunks(std::span<const model::Sample> samples, uint32_t max_chunk_samples,
                          std::vector<std::string>* out) {
  chunk::ChunkAppender app;
  for (const model::Sample& x : samples) {
    if (app.num_samples() >= max_chunk_samples) {
      out->emplace_back(app.bytes());
      app = chunk::ChunkAppender();
    }
    ESPY_RETURN_IF_ERROR(app.Append(x.ts, x.value));
  }
  if (app.num_samples() > 0) out->emplace_back(app.bytes());
  return absl::OkStatus();
}

absl::StatusOr<block::BlockMeta> CompactBlocks(
    fs::Env* env, const std::string& parent,
    const std::vector<std::shared_ptr<const block::Block>>& sources, uint64_t seq,
    uint32_t max_chunk_samples) {
  int level = 1;
  // Every series of every source: (source index, series id) in source order.
  std::map<model::Labels, std::vector<std::pair<size_t, uint32_t>>> series;
  for (size_t i = 0; i < sources.size(); ++i) {
    level = std::max(level, sources[i]->meta().level + 1);
    for (uint32_t id = 0; id < sources[i]->num_series(); ++id) {
      series[sources[i]->Labels(id)].emplace_back(i, id);
    }
  }
  ESPY_ASSIGN_OR_RETURN(std::unique_ptr<block::BlockWriter> w,
                        block::BlockWriter::Create(env, parent, seq, level));
  uint64_t wal_segment = 0;
  for (const auto& src : sources) wal_segment = std::max(wal_segment, src->meta().wal_segment);
  w->SetWalSegment(wal_segment);
  std::vector<model::Sample> merged, part;
  std::vector<std::string> chunks;
  std::vector<std::string_view> views;
  for (const auto& [labels, where] : series) {
    merged.clear();
    for (const auto& [i, id] : where) {
      part.clear();
      if (absl::Status s = sources[i]->Read(id, INT64_MIN, INT64_MAX, &part); !s.ok()) {
        return absl::DataLossError(fmt::format("compacting block {}: series {}: {}",
                                               sources[i]->dir(), labels.ToString(), s.message()));
      }
      merged = model::MergeNewerWins(merged, part);
    }
    chunks.clear();
    ESPY_RETURN_IF_ERROR(EncodeChunks(merged, max_chunk_samples, &chunks));
    views.assign(chunks.begin(), chunks.end());
    ESPY_RETURN_IF_ERROR(w->AddSeries(labels, views));
  }
  return w->Finish();
}

}  // namespace espy::storage
