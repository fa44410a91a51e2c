// Tombstones: the deleted time ranges of a block's series, kept in the
// block's "tombstones" file (checksummed; written to "tombstones.tmp",
// fsynced, renamed) and applied on every read until compaction or
// clean_tombstones rewrites the block without the deleted samples.
// Format: docs/format/block.md ("tombstones").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/env.h"

namespace espy::storage::block {

// A closed time range [mint, maxt] (ms).
struct Interval {
  int64_t mint = 0;
  int64_t maxt = 0;
  bool operator==(const Interval&) const = default;
};

// Sorted, disjoint, non-adjacent intervals. Value type; thread-compatible.
class Intervals {
 public:
  Intervals() = default;
  explicit Intervals(std::vector<Interval> v);  // any order; merged

  // Adds [iv.mint, iv.maxt], merging it with the ones it overlaps or touches.
  void Add(Interval iv);
  void AddAll(const Intervals& other);
  // Whether ts lies in one of the intervals.
  bool Contains(int64_t ts) const;
  // Whether one interval covers all of [mint, maxt].
  bool Covers(int64_t mint, int64_t maxt) const;
  // Whether some interval meets [mint, maxt].
  bool Overlaps(int64_t mint, int64_t maxt) const;

  const std::vector<Interval>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  bool operator==(const Intervals&) const = default;

 private:
  std::vector<Interval> items_;
};

// Deleted intervals per series id of one block. Value type; thread-compatible.
using Tombstones = std::map<uint32_t, Intervals>;

// The file name inside a block directory.
inline constexpr std::string_view kTombstonesFile = "tombstones";

// Encodes the file's bytes (magic, entries, CRC-32C).
std::string EncodeTombstones(const Tombstones& t);
// Parses them; DataLoss naming the offset and what is wrong. Series ids must
// be below num_series.
absl::StatusOr<Tombstones> DecodeTombstones(std::string_view data, uint32_t num_series);

// Writes dir/tombstones durably: to a temporary file, fdatasync, rename,
// fsync of dir. A crash leaves the old file or the new one, never a mix.
absl::Status WriteTombstonesFile(fs::Env* env, const std::string& dir, const Tombstones& t);

}  // namespace espy::storage::block
