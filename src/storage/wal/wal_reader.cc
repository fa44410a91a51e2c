// Replay: reads every segment through mmap, checks each record's CRC, hands
// payloads to the caller, truncates a torn tail and skips over corruption.
// Also lists and removes segment files.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

// A read-only mapping of one segment file, unmapped and closed on destruction.
class MappedSegment {
 public:
  MappedSegment() = default;
  MappedSegment(const MappedSegment&) = delete;
  MappedSegment& operator=(const MappedSegment&) = delete;
  ~MappedSegment() { Close(); }

  // Opens and maps `path`; *regular is false (and nothing is mapped) for a
  // path that is not a regular file.
  absl::Status Open(const std::string& path, bool* regular) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return IoError("open segment", path, errno);
    struct stat st;
    if (fstat(fd_, &st) != 0) return IoError("stat segment", path, errno);
    *regular = S_ISREG(st.st_mode);
    if (!*regular) return absl::OkStatus();
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) return absl::OkStatus();
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      size_ = 0;
      return IoError("mmap segment", path, errno);
    }
    data_ = static_cast<const char*>(p);
    madvise(p, size_, MADV_SEQUENTIAL);  // only a hint; failure is harmless
    return absl::OkStatus();
  }

  void Close() {
    if (data_ != nullptr) munmap(const_cast<char*>(data_), size_);
    data_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  const char* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  uint64_t size_ = 0;
};

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
absl::Status TruncateFile(const std::string& path, uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open for truncation", path, errno);
  absl::Status status;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    status = IoError("ftruncate", path, errno);
  } else if (fdatasync(fd) != 0) {
    status = IoError("fdatasync after truncation", path, errno);
  }
  close(fd);
  return status;
}

// Replays one segment into `fn`, updating *stats.
absl::Status ReplaySegment(
    const std::string& dir, uint64_t number, bool last, const base::Logger& logger,
    const std::function<absl::Status(std::string_view, const RecordPosition&)>& fn,
    ReplayStats* stats) {
  const std::string name = SegmentFileName(number);
  const std::string path = dir + "/" + name;
  MappedSegment segment;
  bool regular = false;
  ESPY_RETURN_IF_ERROR(segment.Open(path, &regular));
  if (!regular) {
    logger->warn("wal skipping non-file segment dir={} segment={}", dir, name);
    return absl::OkStatus();
  }
  ++stats->segments;

  const char* data = segment.data();
  const uint64_t size = segment.size();
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
    // a write cut short by a crash: unacknowledged, safe to drop.
    logger->warn("wal truncating torn tail dir={} segment={} offset={} bytes={} reason=\"{}\"", dir,
                 name, pos, bad, reason);
    segment.Close();
    ESPY_RETURN_IF_ERROR(TruncateFile(path, pos));
    stats->torn_bytes_truncated += bad;
  } else {
    logger->error(
        "wal corruption, skipping rest of segment dir={} segment={} offset={} bytes_skipped={} "
        "reason=\"{}\"",
        dir, name, pos, bad, reason);
    stats->corrupt_bytes_skipped += bad;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<uint64_t>> ListSegments(const std::string& dir) {
  std::vector<uint64_t> segments;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return segments;
    return IoError("open directory", dir, errno);
  }
  errno = 0;
  while (struct dirent* entry = readdir(d)) {
    uint64_t number;
    if (ParseSegmentName(entry->d_name, &number)) segments.push_back(number);
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (err != 0) return IoError("read directory", dir, err);
  std::sort(segments.begin(), segments.end());
  return segments;
}

absl::Status RemoveSegmentsBefore(const std::string& dir, uint64_t first_kept) {
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(dir));
  bool removed = false;
  for (uint64_t number : segments) {
    if (number >= first_kept) break;
    std::string path = dir + "/" + SegmentFileName(number);
    if (unlink(path.c_str()) != 0) return IoError("remove segment", path, errno);
    removed = true;
  }
  if (removed) return SyncDir(dir);
  return absl::OkStatus();
}

absl::StatusOr<ReplayStats> Replay(const std::string& dir, const base::Logger& logger,
                                   const std::function<absl::Status(std::string_view)>& fn) {
  return ReplayWithPositions(
      dir, logger, [&fn](std::string_view payload, const RecordPosition&) { return fn(payload); });
}

absl::StatusOr<ReplayStats> ReplayWithPositions(
    const std::string& dir, const base::Logger& logger,
    const std::function<absl::Status(std::string_view, const RecordPosition&)>& fn) {
  const auto start = std::chrono::steady_clock::now();
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(dir));
  ReplayStats stats;
  for (size_t i = 0; i < segments.size(); ++i) {
    ESPY_RETURN_IF_ERROR(
        ReplaySegment(dir, segments[i], i + 1 == segments.size(), logger, fn, &stats));
  }
  const auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  logger->info(
      "wal replayed dir={} segments={} records={} bytes={} corrupt_bytes_skipped={} "
      "torn_bytes_truncated={} duration_ms={:.1f}",
      dir, stats.segments, stats.records, stats.bytes, stats.corrupt_bytes_skipped,
      stats.torn_bytes_truncated, elapsed.count());
  return stats;
}

}  // namespace espy::storage::wal
