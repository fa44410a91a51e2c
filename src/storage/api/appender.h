// The storage write interface: what every producer (the ingest handlers, the
// Graphite listener, the probes) commits a batch through. It names no part of
// a store, so a second backend (PostgreSQL) implements it as the embedded
// storage::Db does. A batch is the unit of atomicity: all of it is stored, or
// none of it.
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "model/labels.h"
#include "model/sample_batch.h"
#include "storage/api/querier.h"

namespace espy::storage {

// Thread-safe.
class Appender {
 public:
  virtual ~Appender();  // out of line: the vtable's home is storage/api/interfaces.cc

  using Done = std::function<void(absl::Status)>;
  // Queues a validated batch. `done` runs exactly once, on a thread of the
  // store's: OK once the batch is durable and readable; an error if it was
  // not stored (none of it is, then). Series the batch gives by id
  // (batch.refs) must be ids this store handed out (Lookup).
  virtual void Commit(model::SampleBatch batch, Done done) = 0;

  // The id of the series with exactly these labels, or 0 when the store has
  // none yet. Producers keep ids of series they write often and put them in
  // the batch instead of labels (ingest::SeriesCache).
  virtual SeriesId Lookup(const model::Labels& labels) const = 0;

  // Commit and wait (tests, tools).
  absl::Status CommitAndWait(model::SampleBatch batch) {
    absl::Mutex mu;
    bool finished = false;
    absl::Status result;
    Commit(std::move(batch), [&](absl::Status s) {
      absl::MutexLock lock(&mu);
      result = std::move(s);
      finished = true;
    });
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&finished));
    return result;
  }
};

}  // namespace espy::storage
