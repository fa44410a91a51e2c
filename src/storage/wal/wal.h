// The write-ahead log: a directory of numbered segment files holding
// CRC-checked records. It moves bytes; storage/record/ says what they mean.
// Format: docs/format/wal.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/log.h"
#include "fs/env.h"

namespace espy::storage::wal {

enum class FsyncPolicy {
  kBatch,   // group commit: one fdatasync covers every record of a commit round
  kAlways,  // fdatasync after every record
  kNever,   // leave flushing to the OS; a crash may lose acknowledged writes
};

// The smallest reservation step, and the share of a segment's size that a
// step grows to (see WalOptions::preallocate_bytes).
inline constexpr uint64_t kMinPreallocateBytes = 64 << 10;
inline constexpr uint64_t kPreallocateFraction = 32;

struct WalOptions {
  std::string dir;  // created if missing
  // A segment is closed and a new one started once it grows past this. Larger
  // segments mean fewer files; smaller ones let truncation free space sooner.
  uint64_t segment_bytes = 128ull << 20;
  // The segment file is reserved (fallocate) ahead of its records, so that
  // an fdatasync need not also commit a new file size: on ext4 that makes
  // each group commit's sync about a quarter faster. The step grows with the
  // segment (a 1/kPreallocateFraction of what it holds, at least
  // kMinPreallocateBytes) up to this, so that a small WAL is not mostly
  // reserved zeros on disk. 0 turns reservation off.
  uint64_t preallocate_bytes = 8ull << 20;
  base::Logger logger = base::NullLogger();
  fs::Env* env = fs::Env::Default();  // must outlive the writer
};

// Appends records to the newest segment. Thread-compatible: one committer
// thread owns it (storage::Db's commit loop); only bytes_written() and syncs()
// may be read from other threads (e.g. for /metrics).
//
// Every Open() writes into a fresh segment (or reuses the newest one if it is
// empty), so every segment but the newest was closed cleanly after an fdatasync;
// Replay() relies on that to tell a crash's torn tail from real corruption.
// A failed write(2) or fdatasync leaves the segment in an unknown state, so
// such an error is sticky: every later call returns it, and the owner must
// reopen (replay, then a new WalWriter) to go on.
class WalWriter {
 public:
  // Opens `options.dir`, creating it, and starts a new segment numbered after
  // the existing ones. Call after replay (WalReader), never before.
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(const WalOptions& options);
  // Writes buffered records (best effort), cuts the reserved space off the
  // segment and closes it; it syncs only if it had to cut.
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Buffers one record (a payload of at most kMaxRecordBytes) for the current
  // segment; rotates the segment first if it is full. Data reaches the file
  // on Flush() or when the buffer is large.
  absl::Status AddRecord(std::string_view payload);
  // Writes buffered records to the file (write(2)), without fdatasync.
  absl::Status Flush();
  // Flush() then fdatasync.
  absl::Status Sync();

  uint64_t current_segment() const { return segment_; }
  // Total record bytes (framing included) handed to the OS. Thread-safe.
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  // fdatasync calls made, including the ones closing a full segment. Thread-safe.
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  explicit WalWriter(const WalOptions& options);
  // Opens segment `number` for writing; `reuse` allows an existing empty file.
  absl::Status OpenSegment(uint64_t number, bool reuse);
  // Flushes, syncs and closes the current segment, then opens the next one.
  absl::Status Rotate();
  // Writes all of data[0, n) to the segment; sets the sticky error on failure.
  absl::Status WriteFully(const char* data, size_t n);
  // Sets the sticky error from an Env error and returns it.
  absl::Status Fail(const absl::Status& s);
  // Reserves the segment file up to at least `end` bytes, a step at a time.
  // A file system without fallocate just grows the file as it is written.
  void Reserve(uint64_t end);
  // Cuts the reserved space off the segment (to segment_size_) and syncs.
  absl::Status Trim();
  std::string SegmentPath() const;

  WalOptions options_;
  std::unique_ptr<fs::WritableFile> file_;  // null once closed
  uint64_t segment_ = 0;                    // number of the segment being written
  uint64_t segment_size_ = 0;               // its bytes, written or still in buffer_
  uint64_t reserved_ = 0;                   // its file size: records, then zeros fallocate reserved
  bool can_reserve_ = true;                 // false once fallocate failed on this segment
  std::string buffer_;                      // framed records not yet written
  absl::Status error_;                      // sticky: the first write/sync failure
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> syncs_{0};
};

// Record payload limit (framing adds a few bytes).
inline constexpr uint64_t kMaxRecordBytes = 256ull << 20;

struct ReplayStats {
  uint64_t segments = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;                  // payload bytes handed to the callback
  uint64_t corrupt_bytes_skipped = 0;  // in non-final segments; reported as errors
  uint64_t torn_bytes_truncated = 0;   // at the end of the final segment
};

// Reads every record of every segment in `dir`, oldest first, and hands each
// payload to `fn` (an error from `fn` stops the replay and is returned).
// A torn tail of the last segment (a crash mid-write) is truncated away and
// logged at warn; corruption elsewhere is logged at error with segment and
// offset, the rest of that segment is skipped, and replay goes on. Never
// crashes on bad bytes. A missing dir is an empty log.
// The payload view is valid only during the call to `fn`. No WalWriter may be
// open on `dir` during a replay.
absl::StatusOr<ReplayStats> Replay(fs::Env* env, const std::string& dir, const base::Logger& logger,
                                   const std::function<absl::Status(std::string_view)>& fn);

// Where a record is: its segment's number and the byte offset of its header
// in that segment.
struct RecordPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
};

// Replay, handing `fn` each record's position too, so that a record which
// passed its CRC but does not decode can be reported where it is.
absl::StatusOr<ReplayStats> ReplayWithPositions(
    fs::Env* env, const std::string& dir, const base::Logger& logger,
    const std::function<absl::Status(std::string_view, const RecordPosition&)>& fn);

// The file name of segment `number`: zero-padded to 8 digits ("00000042").
std::string SegmentFileName(uint64_t number);

// The numbers of the segment files in `dir`, ascending; other files are
// ignored. A missing dir has none.
absl::StatusOr<std::vector<uint64_t>> ListSegments(fs::Env* env, const std::string& dir);

// Deletes the segments numbered below `first_kept` (for truncation once their
// records are in persisted blocks) and syncs the directory. REQUIRES:
// `first_kept` <= the open writer's current_segment().
absl::Status RemoveSegmentsBefore(fs::Env* env, const std::string& dir, uint64_t first_kept);

}  // namespace espy::storage::wal
