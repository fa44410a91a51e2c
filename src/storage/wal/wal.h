// The write-ahead log: a directory of numbered segment files holding
// CRC-checked records. It moves bytes; storage/record/ says what they mean.
// Format: docs/format/wal.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/log.h"

namespace espy::storage::wal {

enum class FsyncPolicy {
  kBatch,   // group commit: one fdatasync covers every record of a commit round
  kAlways,  // fdatasync after every record
  kNever,   // leave flushing to the OS; a crash may lose acknowledged writes
};

struct WalOptions {
  std::string dir;  // created if missing
  // A segment is closed and a new one started once it grows past this. Larger
  // segments mean fewer files; smaller ones let truncation free space sooner.
  uint64_t segment_bytes = 128ull << 20;
  base::Logger logger = base::NullLogger();
};

// Appends records to the newest segment. Thread-compatible: one committer
// thread owns it (storage::Db's commit loop).
class WalWriter {
 public:
  // Opens `options.dir`, creating it, and starts a new segment numbered after
  // the existing ones. Call after replay (WalReader), never before.
  static absl::StatusOr<std::unique_ptr<WalWriter>> Open(const WalOptions& options);
  ~WalWriter();  // closes the segment (without syncing)
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

  uint64_t current_segment() const;
  uint64_t bytes_written() const;  // total record bytes handed to the OS
  uint64_t syncs() const;          // fdatasync calls made
};

// Record payload limit (framing adds a few bytes).
inline constexpr uint64_t kMaxRecordBytes = 256ull << 20;

struct ReplayStats {
  uint64_t segments = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t corrupt_bytes_skipped = 0;  // in non-final segments; reported as errors
  uint64_t torn_bytes_truncated = 0;   // at the end of the final segment
};

// Reads every record of every segment in `dir`, oldest first, and hands each
// payload to `fn` (an error from `fn` stops the replay and is returned).
// A torn tail of the last segment (a crash mid-write) is truncated away and
// logged at warn; corruption elsewhere is logged at error with segment and
// offset, the rest of that segment is skipped, and replay goes on. Never
// crashes on bad bytes. A missing dir is an empty log.
absl::StatusOr<ReplayStats> Replay(const std::string& dir, const base::Logger& logger,
                                   const std::function<absl::Status(std::string_view)>& fn);

}  // namespace espy::storage::wal
