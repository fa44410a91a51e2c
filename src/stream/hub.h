// Hub: fans committed samples out to live subscribers (the WebSocket
// clients of /v1/stream). Each client is a Connection with subscriptions
// (sets of matchers) and one bounded queue of points: when the queue is full
// the oldest points are dropped and counted, and a client whose queue stays
// full without being drained for `stuck_timeout` is marked kicked so its
// transport closes it. Writers never wait on a client.
//
// Resume: a subscription made with `since` first gets the points with
// ts > since that the store already holds, then the live ones. The live
// subscription is registered before the store is read, points published in
// the meantime are held back and then queued after the stored ones, minus
// those the read already returned (same series, ts and value): no gap, no
// duplicate.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "model/labels.h"
#include "model/matcher.h"
#include "model/sample_batch.h"
#include "storage/api/querier.h"

namespace espy::stream {

struct HubOptions {
  // More clients than this are refused (ResourceExhausted); each costs a
  // queue of up to max_queue_points points.
  size_t max_connections = 1'000;
  size_t max_subscriptions_per_connection = 64;
  // Points held per client before the oldest are dropped. Larger absorbs
  // longer client stalls at 32 bytes a point; also the most points a resume
  // returns from storage.
  size_t max_queue_points = 10'000;
  // A client whose queue is full and has not been drained for this long is
  // disconnected.
  int64_t stuck_timeout_ms = 10'000;
  const base::Clock* clock = base::SystemClock::Get();
  // Tests only: runs after a resuming subscription is registered and before
  // the store is read, to commit points inside that window.
  std::function<void()> before_resume_read;
};

// Counters since the Hub was made (connections: open now).
struct HubStats {
  uint64_t connections = 0;
  uint64_t connections_total = 0;
  uint64_t rejected_connections_total = 0;
  uint64_t slow_disconnects_total = 0;
  uint64_t dropped_points_total = 0;
  uint64_t queued_points_total = 0;
  uint64_t published_samples_total = 0;
};

// One point for a client. `labels` is the store's (storage::Querier::Labels)
// and lives as long as the Querier the Hub reads through.
struct Point {
  const model::Labels* labels = nullptr;
  model::SeriesRef ref = 0;
  int64_t ts = 0;
  double value = 0;
};

// What Connection::Drain hands out.
struct Delivery {
  uint64_t dropped = 0;  // points dropped since the previous Drain
  std::vector<Point> points;
  bool kicked = false;  // too slow: close the client
};

struct SubscribeResult {
  size_t backfilled = 0;   // points queued from storage (resume)
  bool truncated = false;  // storage had more than max_queue_points of them
};

class Hub;

// One client. Subscribe, Unsubscribe and Drain must not overlap for the same
// Connection (its transport runs them on one strand); Hub::Publish may run
// concurrently with all of them. Destroying it unsubscribes everything.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Adds a subscription under a client-chosen id. InvalidArgument when the id
  // is taken, the limit is reached, or no matcher excludes the empty value
  // (a subscription to every series is refused, as Prometheus refuses such
  // selectors). With `since`, stored points with ts > since come first.
  absl::StatusOr<SubscribeResult> Subscribe(std::string id, std::vector<model::Matcher> matchers,
                                            std::optional<int64_t> since = std::nullopt);
  // NotFound when no subscription has this id.
  absl::Status Unsubscribe(std::string_view id);
  // Takes up to `max_points` queued points, oldest first, and the count of
  // points dropped since the last call. After a Drain that leaves the queue
  // empty, the next queued point calls `wake` again.
  Delivery Drain(size_t max_points);
  size_t subscriptions() const;

  struct State;

 private:
  friend class Hub;
  Connection(Hub* hub, std::unique_ptr<State> state);

  Hub* hub_;
  std::unique_ptr<State> state_;
};

// Thread-safe. "store" (a Querier over all time: resumes read it, and live
// points take their labels from it) must outlive the Hub; the Hub must
// outlive its Connections.
class Hub {
 public:
  explicit Hub(const storage::Querier& store, HubOptions options = {});
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // A new client. `wake` is called (under the hub's lock, so it must only
  // schedule work, never call back into the hub) when points or a kick
  // arrive for a client whose queue was empty. ResourceExhausted at
  // max_connections.
  absl::StatusOr<std::unique_ptr<Connection>> Connect(std::function<void()> wake);

  // The commit listener: queues every sample of a durable batch for the
  // clients whose subscriptions match its series. `refs` is parallel to
  // batch.samples.
  void Publish(const model::SampleBatch& batch, const std::vector<model::SeriesRef>& refs);

  HubStats stats() const;
  // The counters in the Prometheus text format (espy_stream_*).
  std::string RenderMetrics() const;
  const HubOptions& options() const { return options_; }

 private:
  friend class Connection;
  struct Target {
    Connection::State* conn;
    bool live;  // false: only a resuming subscription matches: hold back
  };
  struct CacheEntry {
    const model::Labels* labels;
    std::vector<Target> targets;
  };

  const CacheEntry& Lookup(model::SeriesRef ref) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(Connection::State* conn, const Point& p, int64_t now_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Connection::State* conn);

  const storage::Querier& store_;
  const HubOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<Connection::State*> conns_ ABSL_GUARDED_BY(mu_);
  // Which clients each series goes to; cleared whenever a subscription
  // changes, and when it grows past kMaxCacheEntries.
  absl::flat_hash_map<model::SeriesRef, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
  HubStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace espy::stream
