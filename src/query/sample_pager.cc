#include "query/sample_pager.h"

#include <algorithm>
#include <memory_resource>

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
  SeriesCursor(model::SeriesRef ref, const model::Labels* labels, int64_t from,
               std::pmr::memory_resource* memory)
      : ref(ref), labels(labels), snap(memory), from(from) {}

  model::SeriesRef ref;
  const model::Labels* labels;
  storage::head::SeriesSnapshot snap;
  int64_t from;  // where the first snapshot starts
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

// A cursor's current point in the merge's heap.
struct HeapKey {
  int64_t ts;
  model::SeriesRef ref;
  uint32_t cursor;  // index into the cursors
};

// The heap order: true when a's point comes after b's (std heaps put the
// greatest first, so this makes the earliest point the top).
bool Later(const HeapKey& a, const HeapKey& b) {
  return a.ts != b.ts ? a.ts > b.ts : a.ref > b.ref;
}

// Restores the heap after its top's key grew: one pass down instead of a
// pop and a push.
void SiftDownTop(std::vector<HeapKey>* heap) {
  std::vector<HeapKey>& h = *heap;
  const size_t n = h.size();
  const HeapKey moving = h[0];
  size_t at = 0;
  while (true) {
    size_t child = 2 * at + 1;
    if (child >= n) break;
    if (child + 1 < n && Later(h[child], h[child + 1])) ++child;
    if (!Later(moving, h[child])) break;
    h[at] = h[child];
    at = child;
  }
  h[at] = moving;
}

}  // namespace

Page ReadPage(const storage::head::Head& head, const PageRequest& request) {
  Page page;
  if (request.limit == 0 || request.mint > request.maxt) return page;
  std::vector<model::SeriesRef> refs = head.Select(request.matchers);
  // The snapshots' copies of chunks live until the page is made: one arena
  // for them all instead of two allocations per series.
  std::pmr::monotonic_buffer_resource arena;
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
    cursors.emplace_back(ref, &head.SeriesLabels(ref), from, &arena);
  }

  // A min-heap of the cursors' current points, keyed by value so that
  // comparing two needs no visit to the cursors.
  std::vector<HeapKey> heap;
  heap.reserve(cursors.size());
  // How many samples a snapshot copies (encoded) at least before it may
  // stop: copying is cheap next to decoding, which is lazy, and fewer
  // snapshots per series mean fewer lock round trips.
  const size_t refill = std::min<size_t>(request.limit, 256);
  for (size_t i = 0; i < cursors.size(); ++i) {
    SeriesCursor& c = cursors[i];
    if (c.Advance(head, request.maxt, refill)) {
      heap.push_back({c.Current().ts, c.ref, static_cast<uint32_t>(i)});
    }
  }
  std::make_heap(heap.begin(), heap.end(), Later);
  page.points.reserve(std::min<size_t>(request.limit, 65536));
  while (!heap.empty()) {
    if (page.points.size() == request.limit) {
      const PagePoint& last = page.points.back();
      page.next = Cursor{last.sample.ts, last.ref};
      break;
    }
    SeriesCursor& c = cursors[heap.front().cursor];
    page.points.push_back({c.labels, c.ref, c.Current()});
    if (c.Advance(head, request.maxt, refill)) {
      heap.front().ts = c.Current().ts;
      SiftDownTop(&heap);
    } else {
      std::pop_heap(heap.begin(), heap.end(), Later);
      heap.pop_back();
    }
  }
  return page;
}

}  // namespace espy::query
