// The storage read interface: what every reader above storage (the PromQL
// engine, the JSON and Prometheus APIs, the stream, the uptime page) reads
// series and samples through. It names no part of a store (no head, block,
// WAL or tier), so a second backend (PostgreSQL) implements it as the
// embedded storage::Db does. As Prometheus' storage.Queryable/Querier: a
// Queryable opens a Querier over a time range; the Querier selects series by
// matchers, lists label names and values, and reads samples. The store, not
// its readers, decides which data answers (head, blocks, a downsampled tier)
// and hides deleted samples.
//
// Samples cross the interface in batches (a series' whole range, or a chunk's
// worth), never one virtual call per sample.
#pragma once

#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/labels.h"
#include "model/matcher.h"

namespace espy::storage {

// A series' id: nonzero, never reused, stable for the store's lifetime, and
// ordered (keyset paging resumes "after" one). Opaque to readers: a backend
// picks its own (the embedded store's head refs, a PostgreSQL bigserial).
// The same numbers as the model::SeriesRef a SampleBatch may carry.
using SeriesId = model::SeriesRef;

// What the reader will do with the selected samples. A store may use it to
// pick a downsampled tier (for a long range with a large step): it then
// returns, instead of raw samples, one value per bucket of the tier's
// resolution, stamped with the time of the bucket's last sample. The value
// is what `func` needs: the bucket's minimum for min_over_time, maximum for
// max_over_time, sum for sum_over_time, raw sample count for
// count_over_time, and its last sample otherwise.
struct SelectHints {
  int64_t mint = 0;      // first wanted timestamp, inclusive (ms)
  int64_t maxt = 0;      // last wanted timestamp, inclusive (ms)
  int64_t step_ms = 0;   // evaluation step; 0 for an instant query
  int64_t range_ms = 0;  // range of the enclosing range selector; 0 for none
  std::string func;      // enclosing function ("rate"), empty for none
  // The bucket width to read, as Resolution() returned it (0: raw
  // samples); -1 lets the store choose.
  int64_t resolution = -1;
  // Series come in ascending label order; false lets the store skip the
  // sort (the order is then its own, e.g. by id).
  bool sorted = true;
};

// A cursor over selected series. Single-threaded; valid while its Querier
// lives.
class SeriesSet {
 public:
  virtual ~SeriesSet();  // out of line: the vtable's home is storage/api/interfaces.cc
  // Moves to the next series; false at the end.
  virtual bool Next() = 0;
  // The current series' labels, valid while the Querier lives.
  // REQUIRES: Next() returned true.
  virtual const model::Labels& labels() const = 0;
  // The current series' id. REQUIRES: Next() returned true.
  virtual SeriesId id() const = 0;
  // Appends the current series' samples with ts in [hints.mint, hints.maxt]
  // to *out, oldest first. Appends at most `max` samples and returns how
  // many it appended (so callers can enforce a sample limit).
  virtual absl::StatusOr<size_t> ReadSamples(size_t max, std::vector<model::Sample>* out) = 0;
};

// Raw samples of one series, oldest first, a batch at a time: for readers
// that walk many series side by side (the pager's merge) or a long range in
// bounded memory. Single-threaded; valid while its Querier lives.
class SampleIterator {
 public:
  virtual ~SampleIterator();  // out of line: the vtable's home is storage/api/interfaces.cc
  // The next samples, about `want` of them (at least one while any are
  // left); an empty span at the end. The span is valid until the next call.
  virtual absl::StatusOr<std::span<const model::Sample>> Next(size_t want) = 0;
};

// Destroys a SampleIterator made in a memory resource and gives its memory
// back: readers that open one per series (the pager, thousands a page) pay
// no malloc for them.
class SampleIteratorDeleter {
 public:
  SampleIteratorDeleter() = default;
  SampleIteratorDeleter(std::pmr::memory_resource* memory, size_t size, size_t align)
      : memory_(memory), size_(size), align_(align) {}
  void operator()(SampleIterator* it) const {
    it->~SampleIterator();
    memory_->deallocate(it, size_, align_);
  }

 private:
  std::pmr::memory_resource* memory_ = nullptr;
  size_t size_ = 0;
  size_t align_ = 0;
};
using SampleIteratorPtr = std::unique_ptr<SampleIterator, SampleIteratorDeleter>;

// Makes a T (a SampleIterator) in `memory`.
template <typename T, typename... Args>
SampleIteratorPtr MakeSampleIterator(std::pmr::memory_resource* memory, Args&&... args) {
  void* at = memory->allocate(sizeof(T), alignof(T));
  return SampleIteratorPtr(new (at) T(std::forward<Args>(args)...),
                           SampleIteratorDeleter(memory, sizeof(T), alignof(T)));
}

// A series as listed by Querier::Series.
struct SeriesEntry {
  SeriesId id = 0;
  const model::Labels* labels = nullptr;  // valid while the Querier lives
};

// Reads over [mint(), maxt()] (inclusive, ms): hints and ranges are clipped
// to it. Deleted samples are never returned and a series left with none in
// range is not listed by Series, LabelNames or LabelValues. A Querier sees
// what was committed before each call (it is not a snapshot). Thread-safe:
// one Querier may serve concurrent readers; the cursors it returns are not.
class Querier {
 public:
  virtual ~Querier();  // out of line: the vtable's home is storage/api/interfaces.cc

  int64_t mint() const { return mint_; }
  int64_t maxt() const { return maxt_; }

  // The series whose labels satisfy every matcher of any one of `sets`
  // (each set non-empty) and that may have samples in [hints.mint,
  // hints.maxt]; each once. A store may return series with no sample in
  // range (ReadSamples then appends none): selection goes by labels, and
  // reading is what tells.
  virtual absl::StatusOr<std::unique_ptr<SeriesSet>> SelectAny(
      std::span<const std::vector<model::Matcher>> sets, const SelectHints& hints) const = 0;
  // SelectAny with one set.
  absl::StatusOr<std::unique_ptr<SeriesSet>> Select(const std::vector<model::Matcher>& matchers,
                                                    const SelectHints& hints) const {
    return SelectAny(std::span(&matchers, 1), hints);
  }
  // The bucket width (ms) Select would read with these hints, 0 for raw
  // samples. The engine uses it to widen the lookback and to combine
  // bucket counts and sums where raw samples would be counted or averaged.
  virtual int64_t Resolution(const SelectHints& hints) const {
    (void)hints;
    return 0;
  }

  // The series matching any of `sets` with at least one sample in range,
  // in ascending label order.
  virtual absl::StatusOr<std::vector<SeriesEntry>> Series(
      std::span<const std::vector<model::Matcher>> sets) const = 0;
  // The label names, or the values of label `name`, of the series matching
  // any of `sets` (no sets: every series) with a sample in range; sorted,
  // unique, no empty value.
  virtual absl::StatusOr<std::vector<std::string>> LabelNames(
      std::span<const std::vector<model::Matcher>> sets) const = 0;
  virtual absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, std::span<const std::vector<model::Matcher>> sets) const = 0;

  // The labels of series `id`, valid while the Querier lives; null for an
  // id the store does not know.
  virtual const model::Labels* Labels(SeriesId id) const = 0;
  // The raw samples of series `id` with ts in [mint, maxt] (clipped to the
  // Querier's range), read lazily: a reader that stops early pays for little
  // more than it read. The iterator and its buffers come from `memory`,
  // which must outlive it (one arena for many iterators). An unknown id
  // reads empty.
  virtual SampleIteratorPtr Samples(SeriesId id, int64_t mint, int64_t maxt,
                                    std::pmr::memory_resource* memory) const = 0;

 protected:
  Querier(int64_t mint, int64_t maxt) : mint_(mint), maxt_(maxt) {}

 private:
  const int64_t mint_;
  const int64_t maxt_;
};

// Opens Queriers. Thread-safe.
class Queryable {
 public:
  virtual ~Queryable();  // out of line: the vtable's home is storage/api/interfaces.cc
  // A Querier over [mint, maxt]. The Queryable must outlive it.
  virtual absl::StatusOr<std::unique_ptr<storage::Querier>> Querier(int64_t mint,
                                                                    int64_t maxt) const = 0;
};

}  // namespace espy::storage
