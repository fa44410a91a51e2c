// WalWriter: frames records, buffers them, writes and syncs segment files,
// and rotates to a new segment when one is full.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "base/status_macros.h"
#include "encoding/coding.h"
#include "encoding/crc32c.h"
#include "storage/wal/wal.h"
#include "storage/wal/wal_format.h"

namespace espy::storage::wal {

namespace {

// Buffered records are written once they would pass this; a record at least
// this large is written straight from the caller's memory.
constexpr size_t kFlushThresholdBytes = 1 << 20;

// Creates `dir` and its missing parents, syncing the parent of each directory
// made so the new entries survive power loss.
absl::Status CreateDir(const std::string& dir) {
  std::filesystem::path path(dir);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return absl::OkStatus();
  if (path.has_parent_path() && path.parent_path() != path) {
    ESPY_RETURN_IF_ERROR(CreateDir(path.parent_path().string()));
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return IoError("create directory", dir, errno);
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return IoError("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) return IoError("create directory", dir, ENOTDIR);
  std::string parent = path.has_parent_path() ? path.parent_path().string() : ".";
  return SyncDir(parent.empty() ? "." : parent);
}

}  // namespace

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory", dir, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return IoError("fsync directory", dir, err);
  return absl::OkStatus();
}

std::string SegmentFileName(uint64_t number) {
  return fmt::format("{:0{}d}", number, kSegmentNameDigits);
}

WalWriter::WalWriter(const WalOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<WalWriter>> WalWriter::Open(const WalOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("wal: WalOptions.dir is empty");
  if (options.segment_bytes == 0) {
    return absl::InvalidArgumentError("wal: WalOptions.segment_bytes must be > 0");
  }
  if (!options.logger) return absl::InvalidArgumentError("wal: WalOptions.logger is null");
  ESPY_RETURN_IF_ERROR(CreateDir(options.dir));
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(options.dir));

  std::unique_ptr<WalWriter> writer(new WalWriter(options));
  uint64_t number = segments.empty() ? 1 : segments.back() + 1;
  bool reuse = false;
  if (!segments.empty()) {
    // An empty newest segment (a writer opened and closed without records, or
    // a torn tail truncated to nothing) is reused rather than left behind.
    std::string newest = options.dir + "/" + SegmentFileName(segments.back());
    struct stat st;
    if (stat(newest.c_str(), &st) != 0) return IoError("stat", newest, errno);
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
      number = segments.back();
      reuse = true;
    }
  }
  ESPY_RETURN_IF_ERROR(writer->OpenSegment(number, reuse));
  base::Info(options.logger, "wal writer opened", "dir", options.dir, "segment",
             SegmentFileName(number));
  return writer;
}

WalWriter::~WalWriter() {
  if (fd_ < 0) return;
  if (error_.ok()) {
    absl::Status s = Flush();
    // Without the cut, the next writer's segment would leave this one, no
    // longer the newest, ending in zeros that replay reports as corruption.
    if (s.ok() && reserved_ > segment_size_) s = Trim();
    if (!s.ok()) base::Warn(options_.logger, "wal close failed", "err", s.message());
  }
  close(fd_);
}

std::string WalWriter::SegmentPath() const {
  return options_.dir + "/" + SegmentFileName(segment_);
}

absl::Status WalWriter::OpenSegment(uint64_t number, bool reuse) {
  segment_ = number;
  segment_size_ = 0;
  reserved_ = 0;
  can_reserve_ = true;
  std::string path = SegmentPath();
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (reuse ? 0 : O_EXCL);
  fd_ = open(path.c_str(), flags, 0644);
  if (fd_ < 0) {
    error_ = IoError("create segment", path, errno);
    return error_;
  }
  // The file's directory entry must survive power loss, not just its data.
  if (absl::Status s = SyncDir(options_.dir); !s.ok()) {
    error_ = s;
    return error_;
  }
  return absl::OkStatus();
}

absl::Status WalWriter::AddRecord(std::string_view payload) {
  ESPY_RETURN_IF_ERROR(error_);
  if (payload.size() > kMaxRecordBytes) {
    return absl::InvalidArgumentError(fmt::format(
        "wal: record of {} bytes exceeds the limit of {} bytes", payload.size(), kMaxRecordBytes));
  }
  const uint64_t framed = kHeaderBytes + payload.size();
  // A record goes whole into one segment; only a record larger than a whole
  // segment makes its segment grow past segment_bytes.
  if (segment_size_ > 0 && segment_size_ + framed > options_.segment_bytes) {
    ESPY_RETURN_IF_ERROR(Rotate());
  }

  char header[kHeaderBytes];
  encoding::EncodeFixed32(header + kLengthOffset, static_cast<uint32_t>(payload.size()));
  header[kTypeOffset] = static_cast<char>(RecordType::kFull);
  uint32_t crc = encoding::crc32c::Extend(0, header + kLengthOffset, kHeaderBytes - kLengthOffset);
  crc = encoding::crc32c::Extend(crc, payload.data(), payload.size());
  encoding::EncodeFixed32(header, MaskCrc(crc));

  if (buffer_.size() + framed > kFlushThresholdBytes) ESPY_RETURN_IF_ERROR(Flush());
  if (framed >= kFlushThresholdBytes) {
    Reserve(segment_size_ + framed);
    ESPY_RETURN_IF_ERROR(WriteFully(header, kHeaderBytes));
    ESPY_RETURN_IF_ERROR(WriteFully(payload.data(), payload.size()));
    bytes_written_.fetch_add(framed, std::memory_order_relaxed);
  } else {
    if (buffer_.capacity() < kFlushThresholdBytes) buffer_.reserve(kFlushThresholdBytes);
    buffer_.append(header, kHeaderBytes);
    buffer_.append(payload.data(), payload.size());
  }
  segment_size_ += framed;
  return absl::OkStatus();
}

absl::Status WalWriter::WriteFully(const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      error_ = IoError("write", SegmentPath(), errno);
      return error_;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

void WalWriter::Reserve(uint64_t end) {
  if (end <= reserved_ || !can_reserve_ || options_.preallocate_bytes == 0) return;
  const uint64_t step = options_.preallocate_bytes;
  // Whole steps, but never past the segment size (unless a record is).
  const uint64_t target =
      std::max(end, std::min((end + step - 1) / step * step, options_.segment_bytes));
  // Mode 0 sets the file size too: the records then overwrite reserved
  // zeros, and syncing them changes no size.
  if (fallocate(fd_, 0, static_cast<off_t>(reserved_), static_cast<off_t>(target - reserved_)) !=
      0) {
    // Not supported here, or no room: the writes that follow grow the file
    // (and meet ENOSPC themselves, with a clear error, if the disk is full).
    base::Warn(options_.logger, "wal preallocation off: fallocate failed", "segment",
               SegmentFileName(segment_), "err", std::strerror(errno));
    can_reserve_ = false;
    return;
  }
  reserved_ = target;
}

absl::Status WalWriter::Trim() {
  if (ftruncate(fd_, static_cast<off_t>(segment_size_)) != 0) {
    error_ = IoError("ftruncate", SegmentPath(), errno);
    return error_;
  }
  reserved_ = segment_size_;
  if (fdatasync(fd_) != 0) {
    error_ = IoError("fdatasync", SegmentPath(), errno);
    return error_;
  }
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status WalWriter::Flush() {
  ESPY_RETURN_IF_ERROR(error_);
  if (buffer_.empty()) return absl::OkStatus();
  Reserve(segment_size_);
  ESPY_RETURN_IF_ERROR(WriteFully(buffer_.data(), buffer_.size()));
  bytes_written_.fetch_add(buffer_.size(), std::memory_order_relaxed);
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status WalWriter::Sync() {
  ESPY_RETURN_IF_ERROR(Flush());
  // After a failed fdatasync the kernel may have dropped the dirty pages, so
  // a retry could "succeed" without the data: the error stays.
  if (fdatasync(fd_) != 0) {
    error_ = IoError("fdatasync", SegmentPath(), errno);
    return error_;
  }
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status WalWriter::Rotate() {
  ESPY_RETURN_IF_ERROR(Flush());
  ESPY_RETURN_IF_ERROR(Trim());  // syncs the records and the cut
  if (close(fd_) != 0) {
    error_ = IoError("close", SegmentPath(), errno);
    fd_ = -1;
    return error_;
  }
  fd_ = -1;
  return OpenSegment(segment_ + 1, /*reuse=*/false);
}

}  // namespace espy::storage::wal
