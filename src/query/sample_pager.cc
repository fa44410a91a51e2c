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

// One matching series' position in the merge: an iterator over its samples
// from the store, which reads them by timestamp (not index), so concurrent
// out-of-order inserts cannot make it skip or repeat a point. Batches start
// at one sample (positioning a series whose points do not make it into the
// page reads one), then are the page's even share per series, then double
// while the series keeps contributing: a page reads little more than it
// uses whether its points come from few series or from many.
struct SeriesCursor {
  SeriesCursor(model::SeriesRef ref, const model::Labels* labels, storage::SampleIteratorPtr it)
      : ref(ref), labels(labels), it(std::move(it)) {}

  model::SeriesRef ref;
  const model::Labels* labels;
  storage::SampleIteratorPtr it;
  std::span<const model::Sample> batch;
  size_t pos = 0;
  size_t want = 1;  // the next batch's size
  size_t then = 1;  // the one after it

  const model::Sample& Current() const { return batch[pos]; }

  // Moves to the next sample (the first on the first call); false when none
  // is left.
  absl::StatusOr<bool> Advance(size_t max_batch) {
    if (++pos < batch.size()) return true;
    absl::StatusOr<std::span<const model::Sample>> next = it->Next(want);
    if (!next.ok()) return next.status();
    batch = *next;
    pos = 0;
    want = then;
    then = std::min(then * 2, max_batch);
    return !batch.empty();
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

absl::StatusOr<Page> ReadPage(const storage::Querier& querier, const PageRequest& request) {
  Page page;
  if (request.limit == 0 || request.mint > request.maxt) return page;
  absl::StatusOr<std::unique_ptr<storage::SeriesSet>> set = querier.Select(
      request.matchers,
      storage::SelectHints{
          .mint = request.mint, .maxt = request.maxt, .resolution = 0, .sorted = false});
  if (!set.ok()) return set.status();
  // The iterators' buffers live until the page is made: one arena for them
  // all instead of a few allocations per series.
  std::pmr::monotonic_buffer_resource arena;
  std::vector<SeriesCursor> cursors;
  while ((*set)->Next()) {
    const model::SeriesRef ref = (*set)->id();
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
    cursors.emplace_back(ref, &(*set)->labels(), querier.Samples(ref, from, request.maxt, &arena));
  }

  // A min-heap of the cursors' current points, keyed by value so that
  // comparing two needs no visit to the cursors.
  std::vector<HeapKey> heap;
  heap.reserve(cursors.size());
  // The largest batch a series reads at once.
  const size_t max_batch = std::min<size_t>(request.limit, 256);
  const size_t share =
      std::clamp<size_t>(request.limit / std::max<size_t>(cursors.size(), 1), 1, max_batch);
  for (size_t i = 0; i < cursors.size(); ++i) {
    SeriesCursor& c = cursors[i];
    c.then = share;
    absl::StatusOr<bool> more = c.Advance(max_batch);
    if (!more.ok()) return more.status();
    if (*more) {
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
    absl::StatusOr<bool> more = c.Advance(max_batch);
    if (!more.ok()) return more.status();
    if (*more) {
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
