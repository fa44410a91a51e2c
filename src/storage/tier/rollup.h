// Downsampling: the tiers a user configures ("5m:30d,1h:1y": after 30 days
// keep 5-minute aggregates, after a year hourly ones) and the per-bucket
// aggregates a tier keeps. A bucket is one aligned interval of the tier's
// resolution; it keeps min, max, sum and count of the series' values in it
// (staleness markers left out) and the last sample, and it is stamped with
// the timestamp of that last sample, so a counter's rate over the "last"
// stream is the rate over raw samples at bucket ends.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "model/sample_batch.h"

namespace espy::storage::tier {

struct TierSpec {
  int64_t resolution_ms = 0;  // bucket width
  int64_t after_ms = 0;       // data older than this is kept at this resolution
  bool operator==(const TierSpec&) const = default;
};

// The aggregates of a bucket, in the order tier blocks store them. The
// label kRollupLabel on a tier block's series names which one it holds.
enum class Rollup { kMin = 0, kMax, kSum, kCount, kLast };
inline constexpr int kNumRollups = 5;
inline constexpr std::string_view kRollupLabel = "__rollup__";
std::string_view RollupName(Rollup r);
// The rollup named `name`; false if there is none.
bool ParseRollup(std::string_view name, Rollup* r);

struct Bucket {
  int64_t ts = 0;  // timestamp of the bucket's last sample
  double min = 0, max = 0, sum = 0, count = 0;
  double last = 0;  // may be a staleness marker
  // The value of one rollup; a staleness marker for all but kLast when the
  // bucket holds staleness markers only (count 0).
  double Get(Rollup r) const;
};

// Start of the bucket of `resolution` ms that holds `ts`.
int64_t BucketStart(int64_t ts, int64_t resolution);

// Appends the buckets of `samples` (ascending ts, unique) at `resolution`
// to *out, oldest first. A bucket holding only staleness markers has count
// 0 and NaN min, max and sum.
void Downsample(std::span<const model::Sample> samples, int64_t resolution,
                std::vector<Bucket>* out);

// Merges two bucket lists (each ascending by bucket) into one: buckets of
// the same interval are combined (min of mins, max of maxes, sums and
// counts added, `newer`'s last). REQUIRES: both at `resolution`.
std::vector<Bucket> MergeBuckets(std::span<const Bucket> older, std::span<const Bucket> newer,
                                 int64_t resolution);

}  // namespace espy::storage::tier
