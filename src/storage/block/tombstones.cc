// Tombstone intervals and the block's tombstones file (see tombstones.h).
#include "storage/block/tombstones.h"

#include <algorithm>

#include "base/status_macros.h"
#include "encoding/coding.h"
#include "encoding/crc32c.h"
#include "fmt/format.h"
#include "storage/block/block.h"
#include "storage/crash_point.h"

namespace espy::storage::block {

namespace {

constexpr std::string_view kMagic = "ESPYTMB1";
constexpr size_t kCrcBytes = 4;

}  // namespace

Intervals::Intervals(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(),
            [](const Interval& a, const Interval& b) { return a.mint < b.mint; });
  for (const Interval& iv : v) Add(iv);
}

void Intervals::Add(Interval iv) {
  if (iv.mint > iv.maxt) return;
  // First interval that could touch iv: its end + 1 >= iv.mint (overflow-safe).
  auto first =
      std::lower_bound(items_.begin(), items_.end(), iv.mint,
                       [](const Interval& a, int64_t t) { return a.maxt < t && a.maxt + 1 < t; });
  auto last = first;
  while (last != items_.end() && (last->mint <= iv.maxt || last->mint - 1 <= iv.maxt)) {
    iv.mint = std::min(iv.mint, last->mint);
    iv.maxt = std::max(iv.maxt, last->maxt);
    ++last;
  }
  first = items_.erase(first, last);
  items_.insert(first, iv);
}

void Intervals::AddAll(const Intervals& other) {
  for (const Interval& iv : other.items_) Add(iv);
}

bool Intervals::Contains(int64_t ts) const { return Covers(ts, ts); }

bool Intervals::Covers(int64_t mint, int64_t maxt) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), mint,
                             [](const Interval& a, int64_t t) { return a.maxt < t; });
  return it != items_.end() && it->mint <= mint && maxt <= it->maxt;
}

bool Intervals::Overlaps(int64_t mint, int64_t maxt) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), mint,
                             [](const Interval& a, int64_t t) { return a.maxt < t; });
  return it != items_.end() && it->mint <= maxt;
}

std::string EncodeTombstones(const Tombstones& t) {
  std::string out(kMagic);
  encoding::PutVarint64(&out, t.size());
  uint32_t prev = 0;
  for (const auto& [id, ivs] : t) {
    encoding::PutVarint64(&out, id - prev);
    prev = id;
    encoding::PutVarint64(&out, ivs.items().size());
    for (const Interval& iv : ivs.items()) {
      encoding::PutVarsint64(&out, iv.mint);
      encoding::PutVarint64(&out, static_cast<uint64_t>(iv.maxt) - static_cast<uint64_t>(iv.mint));
    }
  }
  encoding::PutFixed32(&out, encoding::crc32c::Value(out));
  return out;
}

absl::StatusOr<Tombstones> DecodeTombstones(std::string_view data, uint32_t num_series) {
  if (data.size() < kMagic.size() + kCrcBytes || data.substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError(fmt::format("tombstones: bad magic or size {}", data.size()));
  }
  const uint32_t want = encoding::DecodeFixed32(data.data() + data.size() - kCrcBytes);
  if (encoding::crc32c::Value(data.substr(0, data.size() - kCrcBytes)) != want) {
    return absl::DataLossError("tombstones: checksum mismatch");
  }
  std::string_view in = data.substr(kMagic.size(), data.size() - kMagic.size() - kCrcBytes);
  const size_t body = in.size();
  auto bad = [&](std::string_view what) {
    return absl::DataLossError(
        fmt::format("tombstones: {} at offset {}", what, kMagic.size() + body - in.size()));
  };
  Tombstones t;
  uint64_t n = 0;
  if (!encoding::GetVarint64(&in, &n) || n > in.size()) return bad("bad series count");
  uint64_t id = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t delta = 0, count = 0;
    if (!encoding::GetVarint64(&in, &delta) || !encoding::GetVarint64(&in, &count) ||
        count > in.size()) {
      return bad("truncated series entry");
    }
    id += delta;
    if (id >= num_series || (i > 0 && delta == 0)) return bad(fmt::format("bad series id {}", id));
    Intervals ivs;
    for (uint64_t j = 0; j < count; ++j) {
      int64_t mint = 0;
      uint64_t span = 0;
      if (!encoding::GetVarsint64(&in, &mint) || !encoding::GetVarint64(&in, &span)) {
        return bad("truncated interval");
      }
      const int64_t maxt = static_cast<int64_t>(static_cast<uint64_t>(mint) + span);
      if (maxt < mint) return bad("interval past the end of time");
      ivs.Add({mint, maxt});
    }
    t.emplace(static_cast<uint32_t>(id), std::move(ivs));
  }
  if (!in.empty()) return bad("trailing bytes");
  return t;
}

absl::Status WriteTombstonesFile(fs::Env* env, const std::string& dir, const Tombstones& t) {
  const std::string tmp = fmt::format("{}/{}.tmp", dir, kTombstonesFile);
  ESPY_RETURN_IF_ERROR(fs::WriteFileSynced(env, tmp, EncodeTombstones(t)));
  CrashPoint("tombstones_write_before_rename");
  ESPY_RETURN_IF_ERROR(env->Rename(tmp, fmt::format("{}/{}", dir, kTombstonesFile)));
  return env->SyncDir(dir);
}

}  // namespace espy::storage::block
