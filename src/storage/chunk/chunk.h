// Gorilla-style compressed chunks: the samples (int64 ms timestamp, double
// value) of one series in timestamp order. Timestamps are delta-of-delta
// coded; values are delta coded as scaled integers when every value is an
// integer or a short decimal (value * 10^k exact for k <= 4), else XOR coded
// as in Gorilla. Byte format: docs/format/chunk.md.
//
//   ChunkAppender app;
//   ESPY_RETURN_IF_ERROR(app.Append(1000, 1.5));
//   std::string bytes(app.bytes());          // snapshot for readers
//   for (ChunkIterator it(bytes); it.Next();) Use(it.At());
//   ESPY_RETURN_IF_ERROR(it.status());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/chunk/bit_stream.h"

namespace espy::storage::chunk {

// Header: version u8, value encoding u8, sample count u32 LE, min time i64
// LE, max time i64 LE.
constexpr uint8_t kChunkFormatVersion = 1;
constexpr size_t kChunkHeaderSize = 1 + 1 + 4 + 8 + 8;
static_assert(kChunkHeaderSize == 22);

// Values of the header's encoding byte: 0..kMaxDecimalScale mean "decimal
// with scale k" (integers are scale 0); kXorEncodingByte means XOR;
// kDecimalUlpEncodingByte + k means "decimal with ulp residual, scale k".
constexpr int kMaxDecimalScale = 4;
constexpr uint8_t kXorEncodingByte = 5;
constexpr uint8_t kDecimalUlpEncodingByte = 6;

enum class ValueEncoding {
  kDecimal,  // value == m / 10^scale for int64 m with |m| <= 2^53; rare exceptions stored raw
  kXor,      // Gorilla XOR with the previous value
  // As kDecimal, plus a per-value residual of -4..3 units in the last place:
  // decimals that float arithmetic left a few ulps off (0.1 + 0.2).
  kDecimalUlp,
};

struct ChunkHeader {
  uint32_t num_samples = 0;
  int64_t min_time = 0;  // the first sample's timestamp; 0 when empty
  int64_t max_time = 0;  // the last sample's timestamp; 0 when empty
  ValueEncoding encoding = ValueEncoding::kDecimal;
  int scale = 0;  // decimal scale k; 0 for XOR
};

// Parses and sanity-checks the header of an encoded chunk (a DataLoss error
// says what is wrong), without decoding samples.
absl::StatusOr<ChunkHeader> ReadChunkHeader(std::string_view chunk);

struct Sample {
  int64_t t;
  double v;
};

// Builds one chunk. Append picks the value encoding: the smallest decimal
// scale that represents the values bit-exactly, rescaling (re-encoding the
// chunk) when a value needs more decimals, adding ulp residuals when values
// are decimals a few ulps off (kDecimalUlp), storing a rare unrepresentable
// value (NaN, infinities, -0.0, ...) raw, and re-encoding as XOR when such
// values become common. Single-threaded: readers take a snapshot of bytes().
class ChunkAppender {
 public:
  ChunkAppender();

  // An appender that continues an existing chunk (re-encoding its samples).
  static absl::StatusOr<ChunkAppender> Resume(std::string_view chunk);

  ChunkAppender(ChunkAppender&&) = default;
  ChunkAppender& operator=(ChunkAppender&&) = default;
  ChunkAppender(const ChunkAppender&) = delete;
  ChunkAppender& operator=(const ChunkAppender&) = delete;

  // InvalidArgument unless t is after the last appended timestamp; the chunk
  // is unchanged then.
  absl::Status Append(int64_t t, double v);

  // The encoded chunk: header and bit stream. Valid until the next Append.
  std::string_view bytes() const { return writer_.bytes(); }
  uint32_t num_samples() const { return count_; }
  int64_t min_time() const { return min_t_; }
  int64_t max_time() const { return max_t_; }
  ValueEncoding encoding() const { return encoding_; }
  int scale() const { return scale_; }

 private:
  // Starts over empty with the given value encoding and appends the samples.
  void Rebuild(ValueEncoding encoding, int scale, const std::vector<int64_t>& ts,
               const std::vector<double>& vs);
  // Re-encodes the current samples with another value encoding.
  void Reencode(ValueEncoding encoding, int scale);
  // Appends without checking the timestamp or reconsidering the encoding.
  void AppendEncoded(int64_t t, double v);
  void WriteTimestamp(int64_t t);
  void WriteDecimal(double v);
  void WriteXor(double v);
  void WriteHeader();

  BitWriter writer_;
  uint32_t count_ = 0;
  int64_t min_t_ = 0;
  int64_t max_t_ = 0;
  uint64_t delta_ = 0;  // previous timestamp delta, wrapping arithmetic

  ValueEncoding encoding_ = ValueEncoding::kDecimal;
  int scale_ = 0;
  // Decimal state.
  uint64_t prev_m_ = 0;     // previous scaled integer (int64 bits)
  uint64_t max_abs_m_ = 0;  // largest |m| so far, to know whether a rescale stays exact
  int width_ = 0;           // current delta bit width
  uint32_t exceptions_ = 0;
  // XOR state.
  uint64_t prev_bits_ = 0;
  int leading_ = -1;  // -1: no window yet
  int trailing_ = 0;
};

// Decodes one chunk sample by sample, straight from its bytes ("chunk" must
// outlive the iterator). Corrupt input never reads out of bounds: the
// iterator stops and status() says what and where. Thread-compatible.
class ChunkIterator {
 public:
  explicit ChunkIterator(std::string_view chunk);

  // Moves to the next sample; false at the end or on error (see status()).
  bool Next();
  // Moves forward to the first sample with timestamp >= t (staying put if
  // the current one qualifies); false if there is none or on error. Never
  // moves backwards.
  bool Seek(int64_t t);
  // The current sample. REQUIRES: the last Next/Seek returned true.
  Sample At() const { return {t_, v_}; }

  const absl::Status& status() const { return status_; }
  const ChunkHeader& header() const { return header_; }

  // Decoder state shared with the bulk decoder (chunk.cc).
  struct State {
    uint64_t delta = 0;
    int64_t t = 0;
    double v = 0;
    uint64_t m = 0;  // decimal: current scaled integer
    int width = 0;
    uint64_t bits = 0;  // XOR: current value bits
    int leading = 0;
    int trailing = 0;
  };

 private:
  void Fail(std::string_view what);

  ChunkHeader header_;
  BitReader reader_;
  State state_;
  uint32_t next_ = 0;  // index of the sample the next Next() decodes
  bool done_ = false;
  int64_t t_ = 0;
  double v_ = 0;
  absl::Status status_;
};

// Decodes a whole chunk, appending its samples to *ts and *vs (faster than
// iterating). On error nothing is appended.
absl::Status DecodeChunk(std::string_view chunk, std::vector<int64_t>* ts, std::vector<double>* vs);

// As DecodeChunk, keeping only samples with mint <= t <= maxt.
absl::Status DecodeChunkRange(std::string_view chunk, int64_t mint, int64_t maxt,
                              std::vector<int64_t>* ts, std::vector<double>* vs);

}  // namespace espy::storage::chunk
