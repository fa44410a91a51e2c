#include "stream/hub.h"

#include <bit>
#include <limits>
#include <utility>

#include "base/check.h"
#include "fmt/format.h"

namespace espy::stream {

namespace {

// Series -> clients entries kept before the cache starts over; bounds memory
// when millions of series flow past.
constexpr size_t kMaxCacheEntries = 1 << 20;

bool MatchesAll(const std::vector<model::Matcher>& matchers, const model::Labels& labels) {
  for (const model::Matcher& m : matchers) {
    if (!m.Matches(labels.Get(m.name()))) return false;
  }
  return true;
}

}  // namespace

struct Connection::State {
  struct Sub {
    std::string id;
    std::vector<model::Matcher> matchers;
    bool resuming = false;
  };
  std::function<void()> wake;
  std::vector<Sub> subs;
  std::deque<Point> queue;
  std::deque<Point> held;  // published while a resume reads storage
  uint64_t dropped = 0;    // since the last Drain
  int64_t full_since_ns = -1;
  bool kicked = false;
  bool woken = false;  // wake was called and the queue has not been emptied since
};

Connection::Connection(Hub* hub, std::unique_ptr<State> state)
    : hub_(hub), state_(std::move(state)) {}

Connection::~Connection() { hub_->Remove(state_.get()); }

absl::StatusOr<SubscribeResult> Connection::Subscribe(std::string id,
                                                      std::vector<model::Matcher> matchers,
                                                      std::optional<int64_t> since) {
  bool selective = false;
  for (const model::Matcher& m : matchers) selective |= !m.MatchesEmpty();
  if (!selective) {
    return absl::InvalidArgumentError(
        fmt::format("subscription \"{}\": needs at least one matcher that does not match the empty "
                    "string, such as a metric name",
                    id));
  }
  {
    absl::MutexLock lock(&hub_->mu_);
    for (const State::Sub& s : state_->subs) {
      if (s.id == id) {
        return absl::InvalidArgumentError(
            fmt::format("subscription \"{}\": id already in use on this connection", id));
      }
    }
    if (state_->subs.size() >= hub_->options_.max_subscriptions_per_connection) {
      return absl::InvalidArgumentError(
          fmt::format("subscription \"{}\": at most {} subscriptions per connection", id,
                      hub_->options_.max_subscriptions_per_connection));
    }
    state_->subs.push_back({id, matchers, since.has_value()});
    hub_->cache_.clear();
  }
  SubscribeResult result;
  if (!since) return result;

  // Live points for this subscription are now held back; whatever the store
  // shows from here on was either published before (and is in the read) or
  // will be held (and may also be in the read: deduplicated below).
  if (hub_->options_.before_resume_read) hub_->options_.before_resume_read();
  const storage::Querier& store = hub_->store_;
  const size_t budget = hub_->options_.max_queue_points;
  const int64_t mint = *since == std::numeric_limits<int64_t>::max() ? *since : *since + 1;
  std::vector<Point> stored;
  std::vector<model::Sample> samples;
  // The store's own order (by id): a backfill needs no label order.
  auto set = store.Select(matchers, {.mint = mint,
                                     .maxt = std::numeric_limits<int64_t>::max(),
                                     .resolution = 0,
                                     .sorted = false});
  // A failed read takes the subscription back: it would hold points forever.
  auto fail = [&](absl::Status s) {
    (void)Unsubscribe(id);
    return s;
  };
  if (!set.ok()) return fail(set.status());
  while ((*set)->Next()) {
    if (stored.size() > budget) break;
    samples.clear();
    absl::StatusOr<size_t> n = (*set)->ReadSamples(budget + 1 - stored.size(), &samples);
    if (!n.ok()) return fail(n.status());
    const model::Labels* labels = &(*set)->labels();
    for (const model::Sample& s : samples) stored.push_back({labels, (*set)->id(), s.ts, s.value});
  }
  if (stored.size() > budget) {
    stored.resize(budget);
    result.truncated = true;
  }
  result.backfilled = stored.size();

  absl::MutexLock lock(&hub_->mu_);
  for (State::Sub& s : state_->subs) {
    if (s.id == id) s.resuming = false;
  }
  hub_->cache_.clear();
  std::deque<Point> held = std::move(state_->held);
  state_->held.clear();
  // A held point is already in the read when it, or a later overwrite of
  // the same series and ts that the read returned, was visible by then: for
  // each (series, ts) the read saw value v, the held points up to the last
  // one carrying v are covered; those after it are newer overwrites.
  using Key = std::pair<model::SeriesRef, int64_t>;
  absl::flat_hash_map<Key, uint64_t> stored_value;
  absl::flat_hash_map<Key, size_t> covered_until;  // index into held
  if (!held.empty()) {
    for (const Point& p : stored) stored_value[{p.ref, p.ts}] = std::bit_cast<uint64_t>(p.value);
    for (size_t i = 0; i < held.size(); ++i) {
      auto it = stored_value.find(Key{held[i].ref, held[i].ts});
      if (it != stored_value.end() && it->second == std::bit_cast<uint64_t>(held[i].value)) {
        covered_until[it->first] = i + 1;
      }
    }
  }
  const int64_t now = hub_->options_.clock->MonotonicNanos();
  for (const Point& p : stored) hub_->Enqueue(state_.get(), p, now);
  for (size_t i = 0; i < held.size(); ++i) {
    auto it = covered_until.find(Key{held[i].ref, held[i].ts});
    if (it == covered_until.end() || i >= it->second) hub_->Enqueue(state_.get(), held[i], now);
  }
  return result;
}

absl::Status Connection::Unsubscribe(std::string_view id) {
  absl::MutexLock lock(&hub_->mu_);
  auto& subs = state_->subs;
  for (auto it = subs.begin(); it != subs.end(); ++it) {
    if (it->id == id) {
      subs.erase(it);
      hub_->cache_.clear();
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(fmt::format("no subscription with id \"{}\"", id));
}

Delivery Connection::Drain(size_t max_points) {
  Delivery d;
  absl::MutexLock lock(&hub_->mu_);
  State& s = *state_;
  d.kicked = s.kicked;
  d.dropped = s.dropped;
  s.dropped = 0;
  size_t n = std::min(max_points, s.queue.size());
  d.points.assign(s.queue.begin(), s.queue.begin() + static_cast<ptrdiff_t>(n));
  s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<ptrdiff_t>(n));
  if (s.queue.empty()) s.woken = false;
  s.full_since_ns = -1;  // the client is making progress
  return d;
}

size_t Connection::subscriptions() const {
  absl::MutexLock lock(&hub_->mu_);
  return state_->subs.size();
}

Hub::Hub(const storage::Querier& store, HubOptions options)
    : store_(store), options_(std::move(options)) {}

Hub::~Hub() {
  absl::MutexLock lock(&mu_);
  ESPY_CHECK(conns_.empty()) << conns_.size() << " stream connections outlive their hub";
}

absl::StatusOr<std::unique_ptr<Connection>> Hub::Connect(std::function<void()> wake) {
  auto state = std::make_unique<Connection::State>();
  state->wake = std::move(wake);
  absl::MutexLock lock(&mu_);
  if (conns_.size() >= options_.max_connections) {
    ++stats_.rejected_connections_total;
    return absl::ResourceExhaustedError(
        fmt::format("stream: all {} connections are in use", options_.max_connections));
  }
  conns_.insert(state.get());
  ++stats_.connections_total;
  stats_.connections = conns_.size();
  return std::unique_ptr<Connection>(new Connection(this, std::move(state)));
}

void Hub::Remove(Connection::State* conn) {
  absl::MutexLock lock(&mu_);
  conns_.erase(conn);
  stats_.connections = conns_.size();
  cache_.clear();
}

const Hub::CacheEntry& Hub::Lookup(model::SeriesRef ref) {
  auto it = cache_.find(ref);
  if (it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  CacheEntry entry;
  entry.labels = store_.Labels(ref);
  // A ref the store does not know (never from its commit listener) has no
  // subscribers.
  if (entry.labels == nullptr) return cache_.emplace(ref, std::move(entry)).first->second;
  for (Connection::State* conn : conns_) {
    bool live = false, held = false;
    for (const Connection::State::Sub& sub : conn->subs) {
      if (!MatchesAll(sub.matchers, *entry.labels)) continue;
      (sub.resuming ? held : live) = true;
    }
    if (live || held) entry.targets.push_back({conn, live});
  }
  return cache_.emplace(ref, std::move(entry)).first->second;
}

void Hub::Enqueue(Connection::State* conn, const Point& p, int64_t now_ns) {
  if (conn->kicked) return;
  if (conn->queue.size() >= options_.max_queue_points) {
    conn->queue.pop_front();
    ++conn->dropped;
    ++stats_.dropped_points_total;
    if (conn->full_since_ns < 0) {
      conn->full_since_ns = now_ns;
    } else if (now_ns - conn->full_since_ns >= options_.stuck_timeout_ms * 1'000'000) {
      conn->kicked = true;
      conn->queue.clear();
      conn->held.clear();
      ++stats_.slow_disconnects_total;
      conn->wake();
      return;
    }
  }
  conn->queue.push_back(p);
  ++stats_.queued_points_total;
  if (!conn->woken) {
    conn->woken = true;
    conn->wake();
  }
}

void Hub::Publish(const model::SampleBatch& batch, const std::vector<model::SeriesRef>& refs) {
  absl::MutexLock lock(&mu_);
  stats_.published_samples_total += batch.samples.size();
  if (conns_.empty()) return;
  const int64_t now = options_.clock->MonotonicNanos();
  for (size_t i = 0; i < batch.samples.size() && i < refs.size(); ++i) {
    const CacheEntry& entry = Lookup(refs[i]);
    if (entry.targets.empty()) continue;
    Point p{entry.labels, refs[i], batch.samples[i].ts, batch.samples[i].value};
    for (const Target& t : entry.targets) {
      if (t.live) {
        Enqueue(t.conn, p, now);
      } else if (!t.conn->kicked) {
        if (t.conn->held.size() >= options_.max_queue_points) {
          t.conn->held.pop_front();
          ++t.conn->dropped;
          ++stats_.dropped_points_total;
        }
        t.conn->held.push_back(p);
      }
    }
  }
}

HubStats Hub::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::string Hub::RenderMetrics() const {
  HubStats s = stats();
  std::string out;
  auto add = [&out](std::string_view name, std::string_view type, std::string_view help,
                    uint64_t v) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                   type, v);
  };
  add("espy_stream_connections", "gauge", "Live stream (WebSocket) clients connected now.",
      s.connections);
  add("espy_stream_connections_total", "counter", "Live stream clients accepted since start.",
      s.connections_total);
  add("espy_stream_rejected_connections_total", "counter",
      "Live stream clients refused because the connection limit was reached.",
      s.rejected_connections_total);
  add("espy_stream_slow_disconnects_total", "counter",
      "Live stream clients disconnected for staying stuck with a full queue.",
      s.slow_disconnects_total);
  add("espy_stream_dropped_points_total", "counter",
      "Points dropped from full client queues (clients are told how many).",
      s.dropped_points_total);
  add("espy_stream_queued_points_total", "counter", "Points queued for live stream clients.",
      s.queued_points_total);
  add("espy_stream_published_samples_total", "counter",
      "Committed samples offered to the live stream hub.", s.published_samples_total);
  return out;
}

}  // namespace espy::stream
