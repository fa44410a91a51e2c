// BadInput: how every parser says what was wrong with a request: which item
// (array index, NDJSON/line-protocol line, remote-write series), which field,
// and what was expected. It travels as an InvalidArgument absl::Status with a
// payload, so callers keep one error type; http/ renders it as a 400 body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace espy::ingest {

struct BadInput {
  int64_t item = -1;  // 0-based index of the offending item; -1 when the whole body is bad
  std::string field;  // the offending field or label name; empty when not about one field
  std::string problem;
};

// An InvalidArgument status whose message reads
//   item 3: field "ts": want ISO-8601 or epoch seconds, got "yesterday"
// and whose payload keeps the parts for structured error bodies.
absl::Status MakeBadInput(int64_t item, std::string_view field, std::string_view problem);

// The parts of a status made by MakeBadInput; nullopt for any other status.
std::optional<BadInput> GetBadInput(const absl::Status& status);

}  // namespace espy::ingest
