// Bucket aggregation for downsampled tiers (see rollup.h).
#include "storage/tier/rollup.h"

#include <cmath>
#include <limits>

namespace espy::storage::tier {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Go's math.Min/Max: NaN wins, so an empty side (NaN) is replaced only by
// taking the other operand when it is the empty one.
double MinOf(double a, double a_count, double b, double b_count) {
  if (a_count == 0) return b;
  if (b_count == 0) return a;
  return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
}
double MaxOf(double a, double a_count, double b, double b_count) {
  if (a_count == 0) return b;
  if (b_count == 0) return a;
  return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
}

}  // namespace

std::string_view RollupName(Rollup r) {
  switch (r) {
    case Rollup::kMin:
      return "min";
    case Rollup::kMax:
      return "max";
    case Rollup::kSum:
      return "sum";
    case Rollup::kCount:
      return "count";
    case Rollup::kLast:
      return "last";
  }
  return "";
}

bool ParseRollup(std::string_view name, Rollup* r) {
  for (int i = 0; i < kNumRollups; ++i) {
    if (RollupName(static_cast<Rollup>(i)) == name) {
      *r = static_cast<Rollup>(i);
      return true;
    }
  }
  return false;
}

double Bucket::Get(Rollup r) const {
  // A bucket of staleness markers only: nothing but its last is a value.
  if (count == 0 && r != Rollup::kLast) return model::StaleNaN();
  switch (r) {
    case Rollup::kMin:
      return min;
    case Rollup::kMax:
      return max;
    case Rollup::kSum:
      return sum;
    case Rollup::kCount:
      return count;
    case Rollup::kLast:
      return last;
  }
  return last;
}

int64_t BucketStart(int64_t ts, int64_t resolution) {
  int64_t r = ts / resolution;
  if (ts % resolution < 0) --r;
  return r * resolution;
}

void Downsample(std::span<const model::Sample> samples, int64_t resolution,
                std::vector<Bucket>* out) {
  int64_t start = 0;
  bool open = false;
  for (const model::Sample& s : samples) {
    const int64_t b = BucketStart(s.ts, resolution);
    if (!open || b != start) {
      out->push_back(Bucket{s.ts, kNaN, kNaN, kNaN, 0, s.value});
      start = b;
      open = true;
    }
    Bucket& cur = out->back();
    cur.ts = s.ts;
    cur.last = s.value;
    if (model::IsStaleNaN(s.value)) continue;
    if (cur.count == 0) {
      cur.min = cur.max = cur.sum = s.value;
    } else {
      cur.min = MinOf(cur.min, 1, s.value, 1);
      cur.max = MaxOf(cur.max, 1, s.value, 1);
      cur.sum += s.value;
    }
    cur.count += 1;
  }
}

std::vector<Bucket> MergeBuckets(std::span<const Bucket> older, std::span<const Bucket> newer,
                                 int64_t resolution) {
  std::vector<Bucket> out;
  out.reserve(older.size() + newer.size());
  size_t i = 0, j = 0;
  while (i < older.size() || j < newer.size()) {
    if (j == newer.size() || (i < older.size() && BucketStart(older[i].ts, resolution) <
                                                      BucketStart(newer[j].ts, resolution))) {
      out.push_back(older[i++]);
      continue;
    }
    if (i == older.size() ||
        BucketStart(newer[j].ts, resolution) < BucketStart(older[i].ts, resolution)) {
      out.push_back(newer[j++]);
      continue;
    }
    const Bucket& a = older[i++];
    const Bucket& b = newer[j++];
    Bucket m;
    m.min = MinOf(a.min, a.count, b.min, b.count);
    m.max = MaxOf(a.max, a.count, b.max, b.count);
    m.sum = a.count == 0 ? b.sum : b.count == 0 ? a.sum : a.sum + b.sum;
    m.count = a.count + b.count;
    // The newer write is the later one; within the bucket the sample with
    // the larger timestamp is the last, the newer winning a tie.
    const Bucket& last = a.ts > b.ts ? a : b;
    m.ts = last.ts;
    m.last = last.last;
    out.push_back(m);
  }
  return out;
}

}  // namespace espy::storage::tier
