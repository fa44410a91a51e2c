// Listener: Graphite plaintext on TCP and UDP (carbon's port 2003), on
// Boost.Asio. Each TCP connection is read continuously: every read is cut
// into whole lines (partial lines wait for the next read,
// GraphiteLineSplitter) and parsed at once into the connection's pending
// batch. At most one batch per connection is being committed (Appender::Commit, in
// the same group commit as every HTTP write); while it is, reads keep
// accumulating into the next batch, which is committed as soon as the
// previous one is durable. Batches therefore grow with the load, and lines
// are committed in stream order (within a batch too: the later of two writes
// to a series and timestamp wins). Once the pending batch holds
// max_batch_bytes of lines the connection stops reading until the commit in
// flight finishes (back-pressure reaches the sender through TCP). Each UDP
// datagram is one batch. Bad lines are counted, logged (at most one line per
// second) and skipped; the connection stays open. Graphite acknowledges
// nothing, so a batch the storage refuses is counted and logged, not
// reported to the sender.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "base/clock.h"
#include "base/log.h"
#include "ingest/graphite_parser.h"
#include "ingest/limits.h"
#include "ingest/series_cache.h"
#include "storage/api/appender.h"

namespace espy::graphite {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 2003;  // 0 picks a free port (the same one for TCP and UDP)
  bool udp = true;       // also listen for datagrams on the same port
  int threads = 1;       // I/O threads, parsing too; 0 or less: one per core
  // Bytes read from a connection at once.
  size_t read_buffer_bytes = 256 << 10;
  // A connection pauses reading while the lines parsed into its next batch
  // (not yet handed to the storage) reach this many bytes, until its batch
  // in flight is committed. Per connection, at most about
  // 2 * (max_batch_bytes + read_buffer_bytes) of lines are held as samples.
  size_t max_batch_bytes = 4 << 20;
  size_t max_line_bytes = ingest::kDefaultGraphiteMaxLineBytes;
  size_t max_connections = 10'000;  // more are closed on accept
  ingest::Limits limits;
  // Known series spellings (may be null: none); must outlive the Listener.
  ingest::SeriesCache* series_cache = nullptr;
  const base::Clock* clock = base::SystemClock::Get();  // must outlive the Listener
  base::Logger logger = base::NullLogger();
  // Counters, called from I/O or commit threads (may be empty).
  std::function<void(uint64_t samples)> on_committed;  // samples made durable
  std::function<void(uint64_t lines)> on_bad_lines;    // lines skipped as malformed
  std::function<void(uint64_t batches)> on_failed;     // batches the storage refused
};

// Thread-safe. "db" must outlive the Listener.
class Listener {
 public:
  Listener(ListenerOptions options, storage::Appender* db);
  ~Listener();  // Stop()
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds TCP (and UDP) and starts the I/O threads. An error names the
  // address and the reason.
  absl::Status Start();
  // The bound port (after Start).
  uint16_t port() const;
  // Stops accepting and reading. Every line already read is committed, and
  // the commit callbacks have run, before it returns; unfinished partial
  // lines are dropped (unless their stream had ended). Idempotent.
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace espy::graphite
