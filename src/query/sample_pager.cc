#include "query/sample_pager.h"

#include <algorithm>
#include <queue>

#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace espy::query {

std::string EncodeCursor(const Cursor& c) {
  return fmt::format("{}{:x}_{:x}", c.ts < 0 ? "-" : "",
                     c.ts < 0 ? -static_cast<uint64_t>(c.ts) : static_cast<uint64_t>(c.ts), c.ref);
}

absl::StatusOr<Cursor> DecodeCursor(const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        fmt::format("cursor: want the value from a Link header's next URL, got \"{}\"", text));
  };
  size_t sep = text.find('_');
  if (sep == std::string::npos) return bad();
  std::string ts_part = text.substr(0, sep);
  bool negative = !ts_part.empty() && ts_part[0] == '-';
  if (negative) ts_part.erase(0, 1);
  uint64_t ts_abs, ref;
  if (ts_part.empty() || !absl::SimpleHexAtoi(ts_part, &ts_abs) ||
      !absl::SimpleHexAtoi(text.substr(sep + 1), &ref) || ref == 0 ||
      ts_abs > static_cast<uint64_t>(INT64_MAX)) {
    return bad();
  }
  int64_t ts = static_cast<int64_t>(ts_abs);
  return Cursor{negative ? -ts : ts, ref};
}

namespace {

// One matching series' position in the merge: a snapshot of its upcoming
// samples, taken from the head by timestamp (not index), so concurrent
// out-of-order inserts cannot make it skip or repeat a point. The snapshot
// decodes lazily, so positioning a series whose points do not make it into
// the page costs one short decode, and each chunk a page reads is decoded
// once.
struct SeriesCursor {
  model::SeriesRef ref = 0;
  const model::Labels* labels = nullptr;
  storage::head::SeriesSnapshot snap;
  int64_t from = 0;  // where the first snapshot starts
  bool loaded = false;

  const model::Sample& Current() const { return snap.At(); }

  // Moves to the next sample (the first on the first call); false when none
  // is left in [from, maxt].
  bool Advance(const storage::head::Head& head, int64_t maxt, size_t want) {
    while (true) {
      if (loaded) {
        if (snap.Next()) return true;
        if (snap.covered_maxt() >= maxt) return false;
      }
      const int64_t start = loaded ? snap.covered_maxt() + 1 : from;
      head.Snapshot(ref, start, maxt, want, &snap);
      loaded = true;
    }
  }
};

}  // namespace

Page ReadPage(const storage::head::Head& head, const PageRequest& request) {
  Page page;
  if (request.limit == 0 || request.mint > request.maxt) return page;
  std::vector<model::SeriesRef> refs = head.Select(request.matchers);
  std::vector<SeriesCursor> cursors;
  cursors.reserve(refs.size());
  for (model::SeriesRef ref : refs) {
    int64_t from = request.mint;
    if (request.after) {
      // Points at the cursor's timestamp come after it only for later series.
      int64_t after_ts = request.after->ts;
      int64_t min_ts = ref > request.after->ref ? after_ts
                       : after_ts == INT64_MAX  ? INT64_MAX
                                                : after_ts + 1;
      if (ref <= request.after->ref && after_ts == INT64_MAX) continue;
      from = std::max(from, min_ts);
    }
    SeriesCursor& c = cursors.emplace_back();
    c.ref = ref;
    c.labels = &head.SeriesLabels(ref);
    c.from = from;
  }

  auto later = [&cursors](size_t a, size_t b) {
    const model::Sample& x = cursors[a].Current();
    const model::Sample& y = cursors[b].Current();
    return x.ts != y.ts ? x.ts > y.ts : cursors[a].ref > cursors[b].ref;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  // How many samples a snapshot copies (encoded) at least before it may
  // stop: copying is cheap next to decoding, which is lazy, and fewer
  // snapshots per series mean fewer lock round trips.
  const size_t refill = std::min<size_t>(request.limit, 256);
  for (size_t i = 0; i < cursors.size(); ++i) {
    if (cursors[i].Advance(head, request.maxt, refill)) heap.push(i);
  }
  page.points.reserve(std::min<size_t>(request.limit, 65536));
  while (!heap.empty()) {
    size_t i = heap.top();
    SeriesCursor& c = cursors[i];
    if (page.points.size() == request.limit) {
      const PagePoint& last = page.points.back();
      page.next = Cursor{last.sample.ts, last.ref};
      break;
    }
    heap.pop();
    page.points.push_back({c.labels, c.ref, c.Current()});
    if (c.Advance(head, request.maxt, refill)) heap.push(i);
  }
  return page;
}

}  // namespace espy::query
