// Persistent blocks: immutable directories holding the compressed chunks of
// many series over one time range, a series table and a label index
// (symbols + postings), and a meta file with the checksums of both. Written
// to "<dir>.tmp", fsynced, then renamed, so a block directory is whole or
// absent; read through mmap. Format: docs/format/block.md.
//
//   ESPY_ASSIGN_OR_RETURN(auto w, BlockWriter::Create(env, parent, seq, /*level=*/1));
//   ESPY_RETURN_IF_ERROR(w->AddSeries(labels, chunks));
//   ESPY_ASSIGN_OR_RETURN(BlockMeta meta, w->Finish());
//   ESPY_ASSIGN_OR_RETURN(std::shared_ptr<Block> b, Block::Open(env, parent + "/" +
//   meta.DirName()));
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fs/env.h"
#include "model/labels.h"
#include "storage/block/tombstones.h"

namespace espy::storage::block {

// Where one chunk of a series lies in the block's chunks file.
struct ChunkRef {
  int64_t mint = 0;  // first and last sample timestamps, inclusive
  int64_t maxt = 0;
  uint64_t offset = 0;  // from the start of the chunks file
  uint32_t length = 0;
};

struct BlockMeta {
  // Orders blocks: where two overlap, the higher seq holds the later write.
  uint64_t seq = 0;
  int64_t mint = 0;  // inclusive sample time bounds
  int64_t maxt = 0;
  int level = 1;  // 1: cut from the head; higher: made by compaction
  uint64_t num_series = 0;
  uint64_t num_chunks = 0;
  uint64_t num_samples = 0;
  uint64_t chunks_bytes = 0;
  uint32_t chunks_crc = 0;
  uint64_t index_bytes = 0;
  uint32_t index_crc = 0;
  // The first WAL segment that holds none of the block's samples (0 if not
  // known): once the WAL before it is removed, a restart cannot replay
  // them again.
  uint64_t wal_segment = 0;
  // Downsampled blocks only (storage tiers): the bucket width in ms, and the
  // seqs of the raw blocks they were made from. 0 and empty for raw blocks.
  int64_t resolution = 0;
  std::vector<uint64_t> sources;

  // "b-<seq, 16 hex digits>".
  std::string DirName() const;
};

// Parses a block directory name; 0 if it is not one.
uint64_t ParseDirName(std::string_view name);

// Encodes and parses the meta file (text, CRC-checked).
std::string EncodeMeta(const BlockMeta& meta);
absl::StatusOr<BlockMeta> DecodeMeta(std::string_view text);

// Writes one block. Single-threaded. Abandoning it (destroying it before
// Finish) removes the temporary directory.
class BlockWriter {
 public:
  // Starts "<parent>/<DirName>.tmp" (replacing a leftover one), creating
  // `parent` if needed. "*env" must outlive the writer.
  static absl::StatusOr<std::unique_ptr<BlockWriter>> Create(fs::Env* env, std::string parent,
                                                             uint64_t seq, int level);
  ~BlockWriter();
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  // Adds a series with its encoded chunks (docs/format/chunk.md), in time
  // order and not overlapping. A series with no chunks is skipped. Each
  // labels set at most once per block.
  absl::Status AddSeries(const model::Labels& labels, const std::vector<std::string_view>& chunks);

  // Writes the index and meta, fsyncs files and directory, renames the
  // directory into place and fsyncs the parent. Returns the meta. A block
  // with no series is not written (NotFound).
  absl::StatusOr<BlockMeta> Finish();

  void SetWalSegment(uint64_t segment) { meta_.wal_segment = segment; }
  // Marks the block as downsampled (see BlockMeta::resolution). Before Finish.
  void SetDownsampled(int64_t resolution, std::vector<uint64_t> sources) {
    meta_.resolution = resolution;
    meta_.sources = std::move(sources);
  }

 private:
  BlockWriter(fs::Env* env, std::string parent, uint64_t seq, int level);
  absl::Status Write(const char* data, size_t n);

  fs::Env* const env_;
  std::string parent_;
  std::string tmp_dir_;
  BlockMeta meta_;
  std::unique_ptr<fs::WritableFile> chunks_file_;
  uint64_t chunks_offset_ = 0;
  uint32_t chunks_crc_ = 0;
  std::string buffer_;  // chunk bytes not yet written
  std::vector<model::Labels> series_;
  std::vector<std::vector<ChunkRef>> chunk_refs_;
  bool finished_ = false;
};

// An open block: the index in memory, the chunks mapped. Thread-safe; its
// data is immutable, only its tombstones grow (AddTombstones). Held by
// shared_ptr so that queries keep it (and its mapping) alive while
// compaction or retention replaces it.
class Block {
 public:
  // Opens and verifies a block directory: meta checksum, the size and CRC of
  // both files, and the index structure. DataLoss naming the file and what
  // is wrong on any mismatch (the caller quarantines the block). A
  // "tombstones" file, if present, is verified and loaded too. "*env" must
  // outlive the block.
  static absl::StatusOr<std::shared_ptr<Block>> Open(fs::Env* env, const std::string& dir);
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  const BlockMeta& meta() const { return meta_; }
  const std::string& dir() const { return dir_; }
  uint32_t num_series() const { return static_cast<uint32_t>(labels_.size()); }
  const model::Labels& Labels(uint32_t id) const { return labels_[id]; }
  std::span<const ChunkRef> Chunks(uint32_t id) const {
    return {chunks_.data() + chunk_begin_[id], chunks_.data() + chunk_begin_[id + 1]};
  }
  std::string_view ChunkBytes(const ChunkRef& c) const {
    return std::string_view(data_ + c.offset, c.length);
  }

  // Appends the samples of series `id` with mint <= ts <= maxt, oldest
  // first, leaving out deleted ones (tombstones). DataLoss if a chunk does
  // not decode.
  absl::Status Read(uint32_t id, int64_t mint, int64_t maxt, std::vector<model::Sample>* out) const;

  // Narrows [*mint, *maxt] to the time series `id` has data in; false if
  // they do not meet. Deletes record only that part, as Prometheus does:
  // it keeps tombstones files small.
  bool ClampToData(uint32_t id, int64_t* mint, int64_t* maxt) const {
    std::span<const ChunkRef> c = Chunks(id);
    if (c.empty()) return false;
    *mint = std::max(*mint, c.front().mint);
    *maxt = std::min(*maxt, c.back().maxt);
    return *mint <= *maxt;
  }

  // The deleted intervals per series id (a snapshot; never null).
  std::shared_ptr<const Tombstones> tombstones() const;
  bool has_tombstones() const { return !tombstones()->empty(); }
  // Adds deleted intervals (merged with the present ones), durably: the
  // tombstones file is rewritten and synced before they apply to reads
  // (const: the samples stay immutable; this is the one mutable part).
  // InvalidArgument for a series id out of range.
  absl::Status AddTombstones(const Tombstones& add) const;

  // Series ids (ascending) having label name=value, from the label index.
  std::vector<uint32_t> Postings(std::string_view name, std::string_view value) const;

 private:
  Block() = default;
  absl::Status ParseIndex(std::string_view index);

  fs::Env* env_ = nullptr;
  std::string dir_;
  BlockMeta meta_;
  std::unique_ptr<fs::MappedRegion> chunks_map_;
  const char* data_ = nullptr;  // the mapped chunks file
  size_t data_size_ = 0;
  std::vector<std::string> symbols_;
  std::vector<model::Labels> labels_;
  std::vector<uint32_t> chunk_begin_;  // series id -> first index in chunks_; one extra at the end
  std::vector<ChunkRef> chunks_;
  struct PostingsEntry {
    uint32_t name;
    uint32_t value;
    std::vector<uint32_t> ids;
  };
  std::vector<PostingsEntry> postings_;  // sorted by (name, value) symbol

  mutable absl::Mutex write_mu_;  // one AddTombstones at a time
  mutable absl::Mutex tomb_mu_;
  mutable std::shared_ptr<const Tombstones> tombstones_ ABSL_GUARDED_BY(tomb_mu_);
};

}  // namespace espy::storage::block
