// Replay: reads every segment through mmap, checks each record's CRC, hands
// payloads to the caller, truncates a torn tail and skips over corruption.
// Also lists and removes segment files.
#include <algorithm>
#include <chrono>

#include "base/status_macros.h"
#include "encoding/coding.h"
#include "encoding/crc32c.h"
#include "storage/wal/wal.h"
#include "storage/wal/wal_format.h"

namespace espy::storage::wal {

namespace {

// Parses a segment file name: all digits, at least 8, and canonical (exactly
// what SegmentFileName gives), so "1", "000000001" and "00000001.tmp" are not.
bool ParseSegmentName(std::string_view name, uint64_t* number) {
  if (name.size() < static_cast<size_t>(kSegmentNameDigits) || name.size() > 19) return false;
  uint64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (SegmentFileName(n) != name) return false;
  *number = n;
  return true;
}

// Why the bytes at data[0, n) do not start a valid record; n >= 1.
std::string DescribeBadRecord(const char* data, uint64_t n) {
  if (std::all_of(data, data + n, [](char c) { return c == 0; })) {
    return fmt::format("{} zero bytes (preallocated or never written)", n);
  }
  if (n < kHeaderBytes) return fmt::format("truncated header ({} of {} bytes)", n, kHeaderBytes);
  uint32_t length = encoding::DecodeFixed32(data + kLengthOffset);
  auto type = static_cast<uint8_t>(data[kTypeOffset]);
  if (type != static_cast<uint8_t>(RecordType::kFull))
    return fmt::format("bad record type {}", type);
  if (length > kMaxRecordBytes) {
    return fmt::format("length {} exceeds the limit of {}", length, kMaxRecordBytes);
  }
  if (length > n - kHeaderBytes) {
    return fmt::format("truncated payload (length {}, {} bytes left)", length, n - kHeaderBytes);
  }
  return "checksum mismatch";
}

// Truncates the file at `path` to `size` bytes and syncs it, so the torn
// tail is gone before a new segment is created after it.
absl::Status TruncateFile(fs::Env* env, const std::string& path, uint64_t size) {
  ESPY_ASSIGN_OR_RETURN(std::unique_ptr<fs::WritableFile> file,
                        env->NewWritableFile(path, fs::OpenMode::kAppend));
  ESPY_RETURN_IF_ERROR(file->Truncate(size));
  ESPY_RETURN_IF_ERROR(file->DataSync());
  return file->Close();
}

// Replays one segment into `fn`, updating *stats.
absl::Status ReplaySegment(
    fs::Env* env, const std::string& dir, uint64_t number, bool last, const base::Logger& logger,
    const std::function<absl::Status(std::string_view, const RecordPosition&)>& fn,
    ReplayStats* stats) {
  const std::string name = SegmentFileName(number);
  const std::string path = dir + "/" + name;
  absl::StatusOr<std::unique_ptr<fs::MappedRegion>> segment =
      env->MapFile(path, /*sequential=*/true);
  if (absl::IsFailedPrecondition(segment.status())) {
    base::Warn(logger, "wal: skipping a segment that is not a regular file", "dir", dir, "segment",
               name);
    return absl::OkStatus();
  }
  if (!segment.ok()) return WalError(segment.status());
  ++stats->segments;

  const char* data = (*segment)->data();
  const uint64_t size = (*segment)->size();
  uint64_t pos = 0;
  uint64_t records = 0, bytes = 0;
  // The hot loop: no allocation, one CRC pass per record. Every length is
  // checked against the bytes left before use, so no value read from the file
  // can make it read out of bounds or allocate.
  while (size - pos >= kHeaderBytes) {
    const char* header = data + pos;
    const uint32_t length = encoding::DecodeFixed32(header + kLengthOffset);
    if (header[kTypeOffset] != static_cast<char>(RecordType::kFull)) break;
    if (length > size - pos - kHeaderBytes) break;  // also catches lengths > kMaxRecordBytes
    if (length > kMaxRecordBytes) break;
    const uint32_t expected = UnmaskCrc(encoding::DecodeFixed32(header));
    const uint32_t actual =
        encoding::crc32c::Extend(0, header + kLengthOffset, kHeaderBytes - kLengthOffset + length);
    if (actual != expected) break;
    if (absl::Status s = fn(std::string_view(header + kHeaderBytes, length), {number, pos});
        !s.ok()) {
      stats->records += records;
      stats->bytes += bytes;
      return s;
    }
    ++records;
    bytes += length;
    pos += kHeaderBytes + length;
  }
  stats->records += records;
  stats->bytes += bytes;
  if (pos == size) return absl::OkStatus();

  const uint64_t bad = size - pos;
  const std::string reason = DescribeBadRecord(data + pos, bad);
  if (last) {
    // Bytes after the last good record of the newest segment were never
    // synced (every older segment was closed with an fdatasync), so they are
    // unacknowledged and safe to drop. All zeros is the space the writer
    // reserved ahead with fallocate, left whole by any stop without a clean
    // close: normal, so info. Anything else is a write cut short by a crash.
    if (std::all_of(data + pos, data + size, [](char c) { return c == 0; })) {
      base::Info(logger, "wal: dropped the unused preallocated tail of the last segment", "dir",
                 dir, "segment", name, "offset", pos, "bytes", bad);
    } else {
      base::Warn(logger,
                 "wal: dropped a torn record at the end of the last segment (a write cut short, "
                 "never acknowledged)",
                 "dir", dir, "segment", name, "offset", pos, "bytes", bad, "reason", reason);
    }
    segment->reset();
    if (absl::Status s = TruncateFile(env, path, pos); !s.ok()) return WalError(s);
    stats->torn_bytes_truncated += bad;
  } else {
    base::Error(logger, "wal: corrupt record, skipping the rest of the segment", "dir", dir,
                "segment", name, "offset", pos, "bytes_skipped", bad, "reason", reason);
    stats->corrupt_bytes_skipped += bad;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<uint64_t>> ListSegments(fs::Env* env, const std::string& dir) {
  std::vector<uint64_t> segments;
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(dir);
  if (absl::IsNotFound(names.status())) return segments;
  if (!names.ok()) return WalError(names.status());
  for (const std::string& name : *names) {
    uint64_t number;
    if (ParseSegmentName(name, &number)) segments.push_back(number);
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

absl::Status RemoveSegmentsBefore(fs::Env* env, const std::string& dir, uint64_t first_kept) {
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(env, dir));
  bool removed = false;
  for (uint64_t number : segments) {
    if (number >= first_kept) break;
    if (absl::Status s = env->RemoveFile(dir + "/" + SegmentFileName(number)); !s.ok()) {
      return WalError(s);
    }
    removed = true;
  }
  if (removed) {
    if (absl::Status s = env->SyncDir(dir); !s.ok()) return WalError(s);
  }
  return absl::OkStatus();
}

absl::StatusOr<ReplayStats> Replay(fs::Env* env, const std::string& dir, const base::Logger& logger,
                                   const std::function<absl::Status(std::string_view)>& fn) {
  return ReplayWithPositions(
      env, dir, logger,
      [&fn](std::string_view payload, const RecordPosition&) { return fn(payload); });
}

absl::StatusOr<ReplayStats> ReplayWithPositions(
    fs::Env* env, const std::string& dir, const base::Logger& logger,
    const std::function<absl::Status(std::string_view, const RecordPosition&)>& fn) {
  const auto start = std::chrono::steady_clock::now();
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(env, dir));
  ReplayStats stats;
  for (size_t i = 0; i < segments.size(); ++i) {
    ESPY_RETURN_IF_ERROR(
        ReplaySegment(env, dir, segments[i], i + 1 == segments.size(), logger, fn, &stats));
  }
  const auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  // tail_bytes_dropped: the reserved zeros and any torn record after the
  // last good one, which the lines above tell apart.
  base::Info(logger, "wal replayed", "dir", dir, "segments", stats.segments, "records",
             stats.records, "bytes", stats.bytes, "corrupt_bytes_skipped",
             stats.corrupt_bytes_skipped, "tail_bytes_dropped", stats.torn_bytes_truncated,
             "duration_ms", fmt::format("{:.1f}", elapsed.count()));
  return stats;
}

}  // namespace espy::storage::wal
