// Record framing shared by WalWriter and Replay; internal to storage/wal.
// See docs/format/wal.md for the byte layout.
// Header is masked CRC-32C (4 bytes), payload length (4 bytes), type (1 byte).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "storage/wal/wal.h"

namespace espy::storage::wal {

enum class RecordType : uint8_t {
  kZero = 0,  // never written: zeros come from preallocation or a torn write
  kFull = 1,  // a whole payload
};

inline constexpr size_t kCrcBytes = 4;
inline constexpr size_t kLengthBytes = 4;
inline constexpr size_t kTypeBytes = 1;
inline constexpr size_t kHeaderBytes = kCrcBytes + kLengthBytes + kTypeBytes;
static_assert(kHeaderBytes == 9, "docs/format/wal.md fixes a 9-byte header");
static_assert(kMaxRecordBytes <= UINT32_MAX, "the length field is 32 bits");

// Offsets inside the header. The CRC covers header[kLengthOffset, kHeaderBytes)
// and the payload, which sit next to each other, so one CRC pass covers both.
inline constexpr size_t kLengthOffset = kCrcBytes;
inline constexpr size_t kTypeOffset = kCrcBytes + kLengthBytes;

inline constexpr int kSegmentNameDigits = 8;

// A CRC of bytes that embed CRCs is weak, so stored CRCs are masked (as in
// LevelDB): rotated and offset by a constant.
inline constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;
inline uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta; }
inline uint32_t UnmaskCrc(uint32_t masked) {
  uint32_t rot = masked - kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// An Env error as the WAL reports it: "wal: fdatasync /d/00000003: Input/output error".
inline absl::Status WalError(const absl::Status& s) {
  return absl::Status(s.code(), fmt::format("wal: {}", s.message()));
}

}  // namespace espy::storage::wal
