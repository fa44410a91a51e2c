// Graphite plaintext protocol (carbon's port 2003, TCP or UDP):
//   servers.web1.cpu.load 0.42 1700000000
//   servers.cpu.load;host=web1;dc=eu 0.42 1700000000.5
// The dotted path is the metric name (__name__); ";tag=value" pairs are
// labels. Graphite acknowledges nothing, so bad lines are skipped and reported
// one by one instead of failing the whole read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "ingest/limits.h"
#include "ingest/series_cache.h"
#include "model/sample_batch.h"

namespace espy::ingest {

using Batch = model::SampleBatch;

// Longest line accepted by default, newline excluded (carbon has no limit;
// VictoriaMetrics reads up to 64 KiB).
inline constexpr size_t kDefaultGraphiteMaxLineBytes = 64 * 1024;
// At most this many errors are kept per parse; the rest are only counted.
inline constexpr size_t kMaxGraphiteErrorsKept = 100;

struct GraphiteLineError {
  int64_t line;         // 0-based line number in the stream (or chunk)
  absl::Status status;  // a BadInput: item = line, field = offending part, problem
};

struct GraphiteParseResult {
  Batch batch;                            // the samples of the good lines
  std::vector<GraphiteLineError> errors;  // the first kMaxGraphiteErrorsKept bad lines
  size_t error_count = 0;                 // all bad lines, kept or not
};

// Parses the complete lines in `chunk` (LF or CRLF separated; the last line
// may lack its newline). `first_line` numbers the chunk's first line, so a
// stream's errors carry stream line numbers. Rules per line:
//   path[;tag=value...] value [timestamp]    (spaces or tabs between parts)
//   - path: non-empty, no ';'; tag names: non-empty, none of ";!^=" nor a
//     leading "__"; tag values: non-empty, not starting with '~'; a tag name
//     appears once (Graphite's tag rules).
//   - value: a decimal float (also nan/inf as carbon's float() takes them).
//   - timestamp: epoch seconds, integer or fractional (truncated to the
//     millisecond toward the past); -1 or missing means `now_millis`.
//   - Blank lines are skipped silently; lines longer than `max_line_bytes`
//     are errors. Each label set goes through ValidateLabels and each
//     timestamp through ValidateTimestamp.
//   - With a `lookup`, a path (with its tags) spelled as a cached one's is
//     added by ref, its labels neither built nor checked again.
GraphiteParseResult ParseGraphiteLines(std::string_view chunk, int64_t first_line,
                                       int64_t now_millis, const Limits& limits,
                                       size_t max_line_bytes = kDefaultGraphiteMaxLineBytes,
                                       SeriesLookup* lookup = nullptr);

// Cuts a TCP byte stream into blocks of whole lines, keeping a partial last
// line across reads. A line longer than max_line_bytes is reported once and
// discarded up to its newline: it is never buffered beyond the limit.
// Single-threaded: one per connection.
class GraphiteLineSplitter {
 public:
  explicit GraphiteLineSplitter(size_t max_line_bytes = kDefaultGraphiteMaxLineBytes)
      : max_line_bytes_(max_line_bytes) {}
  GraphiteLineSplitter(const GraphiteLineSplitter&) = delete;
  GraphiteLineSplitter& operator=(const GraphiteLineSplitter&) = delete;

  struct Block {
    std::string_view text;  // whole lines, each ending in '\n'; may be empty
    int64_t first_line;     // stream line number of text's first line
  };

  // Takes the next read. The returned text views `data` or an internal
  // buffer and is valid until the next Feed or Finish. Errors for over-long
  // lines are appended to *errors.
  Block Feed(std::string_view data, std::vector<GraphiteLineError>* errors);
  // At end of stream: the partial last line, if any (carbon would drop it;
  // like VictoriaMetrics, Espy parses it).
  Block Finish();

  // Lines handed out or discarded so far.
  int64_t lines() const { return next_line_; }

 private:
  void KeepPartial(std::string_view tail, std::vector<GraphiteLineError>* errors);

  const size_t max_line_bytes_;
  std::string partial_;      // the unfinished last line, at most max_line_bytes_
  bool discarding_ = false;  // inside an over-long line: drop bytes up to '\n'
  std::string joined_;       // partial_ + the rest of its line + whole lines, when needed
  int64_t next_line_ = 0;    // stream number of the next line to start
};

}  // namespace espy::ingest
