// Block compaction: planning which persisted blocks to merge (blocks whose
// time ranges overlap, and small adjacent blocks of one finished compaction
// range) and merging them into one new block, later writes winning on equal
// timestamps and samples re-encoded into full-size chunks. Storage::Db runs
// both from its maintenance thread; the merge writes through BlockWriter, so
// the new block is whole or absent, and the caller deletes the sources only
// once it is in place.
//
//   for (const auto& group : PlanCompactions(metas, 24 * kHour, cut_t)) {
//     ESPY_ASSIGN_OR_RETURN(BlockMeta m, CompactBlocks(env, dir, sources_of(group), seq++, 1000));
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/block/block.h"

namespace espy::storage {

// Groups of indexes into `metas` (each group ascending, at least two) whose
// blocks should be merged. Blocks are grouped by the aligned window of
// `max_range` ms their time range lies in; a window's blocks are merged when
// two of them overlap, or when the window ends at or before
// `complete_before` (no more data will be cut into it) and it holds more
// than one block. A block wider than its window stays alone, and a group
// that some other block overlaps is skipped (merging it would reorder
// writes). REQUIRES: max_range > 0.
std::vector<std::vector<size_t>> PlanCompactions(const std::vector<block::BlockMeta>& metas,
                                                 int64_t max_range, int64_t complete_before);

// Appends `samples` (ascending, unique ts) to *out encoded as chunks of up
// to `max_chunk_samples` samples each.
absl::Status EncodeChunks(std::span<const model::Sample> samples, uint32_t max_chunk_samples,
                          std::vector<std::string>* out);

// Merges `sources` (ascending seq: on equal timestamps the higher seq wins)
// into one block "<parent>/<DirName>" with the given seq and level one above
// the highest source's, chunks holding up to `max_chunk_samples` samples.
// Returns its meta. DataLoss naming the block and series if a source chunk
// does not decode; NotFound if the sources hold no samples. Thread-safe
// (the sources are immutable).
absl::StatusOr<block::BlockMeta> CompactBlocks(
    fs::Env* env, const std::string& parent,
    const std::vector<std::shared_ptr<const block::Block>>& sources, uint64_t seq,
    uint32_t max_chunk_samples);

}  // namespace espy::storage
