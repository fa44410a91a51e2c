// WalWriter: frames records, buffers them, writes and syncs segment files,
// and rotates to a new segment when one is full.
#include <algorithm>

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

}  // namespace

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
  if (options.env == nullptr) return absl::InvalidArgumentError("wal: WalOptions.env is null");
  if (absl::Status s = fs::CreateDirs(options.env, options.dir); !s.ok()) return WalError(s);
  ESPY_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments(options.env, options.dir));

  std::unique_ptr<WalWriter> writer(new WalWriter(options));
  uint64_t number = segments.empty() ? 1 : segments.back() + 1;
  bool reuse = false;
  if (!segments.empty()) {
    // An empty newest segment (a writer opened and closed without records, or
    // a torn tail truncated to nothing) is reused rather than left behind.
    std::string newest = options.dir + "/" + SegmentFileName(segments.back());
    absl::StatusOr<fs::FileInfo> info = options.env->Stat(newest);
    if (!info.ok()) return WalError(info.status());
    if (!info->is_dir && info->size == 0) {
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
  if (file_ == nullptr) return;
  if (error_.ok()) {
    absl::Status s = Flush();
    // Without the cut, the next writer's segment would leave this one, no
    // longer the newest, ending in zeros that replay reports as corruption.
    if (s.ok() && reserved_ > segment_size_) s = Trim();
    if (!s.ok()) base::Warn(options_.logger, "wal close failed", "err", s.message());
  }
  file_.reset();
}

absl::Status WalWriter::Fail(const absl::Status& s) {
  error_ = WalError(s);
  return error_;
}

std::string WalWriter::SegmentPath() const {
  return options_.dir + "/" + SegmentFileName(segment_);
}

absl::Status WalWriter::OpenSegment(uint64_t number, bool reuse) {
  segment_ = number;
  segment_size_ = 0;
  reserved_ = 0;
  can_reserve_ = true;
  absl::StatusOr<std::unique_ptr<fs::WritableFile>> file = options_.env->NewWritableFile(
      SegmentPath(), reuse ? fs::OpenMode::kAppend : fs::OpenMode::kCreateNew);
  if (!file.ok()) return Fail(file.status());
  file_ = *std::move(file);
  // The file's directory entry must survive power loss, not just its data.
  if (absl::Status s = options_.env->SyncDir(options_.dir); !s.ok()) return Fail(s);
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
  if (absl::Status s = file_->Append(std::string_view(data, n)); !s.ok()) return Fail(s);
  return absl::OkStatus();
}

void WalWriter::Reserve(uint64_t end) {
  if (end <= reserved_ || !can_reserve_ || options_.preallocate_bytes == 0) return;
  // The step grows with the segment, so the zeros reserved ahead stay a
  // small share of what it holds (and of the disk a small WAL takes), and
  // the number of fallocate calls per segment stays bounded.
  const uint64_t cap = options_.preallocate_bytes;
  const uint64_t floor = std::min(kMinPreallocateBytes, cap);
  const uint64_t step =
      std::clamp(segment_size_ / kPreallocateFraction / floor * floor, floor, cap);
  // Whole steps, but never past the segment size (unless a record is).
  const uint64_t target =
      std::max(end, std::min((end + step - 1) / step * step, options_.segment_bytes));
  // Mode 0 sets the file size too: the records then overwrite reserved
  // zeros, and syncing them changes no size.
  if (absl::Status s = file_->Allocate(reserved_, target - reserved_); !s.ok()) {
    // Not supported here, or no room: the writes that follow grow the file
    // (and meet ENOSPC themselves, with a clear error, if the disk is full).
    base::Warn(options_.logger, "wal preallocation off: fallocate failed", "segment",
               SegmentFileName(segment_), "err", s.message());
    can_reserve_ = false;
    return;
  }
  reserved_ = target;
}

absl::Status WalWriter::Trim() {
  if (absl::Status s = file_->Truncate(segment_size_); !s.ok()) return Fail(s);
  reserved_ = segment_size_;
  if (absl::Status s = file_->DataSync(); !s.ok()) return Fail(s);
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
  if (absl::Status s = file_->DataSync(); !s.ok()) return Fail(s);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status WalWriter::Rotate() {
  ESPY_RETURN_IF_ERROR(Flush());
  ESPY_RETURN_IF_ERROR(Trim());  // syncs the records and the cut
  absl::Status closed = file_->Close();
  file_.reset();
  if (!closed.ok()) return Fail(closed);
  return OpenSegment(segment_ + 1, /*reuse=*/false);
}

}  // namespace espy::storage::wal
