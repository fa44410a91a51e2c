// StreamHandler: GET /v1/stream, the live feed over WebSocket. Each client
// connection is a session on its connection's strand that subscribes to a
// stream::Hub, writes what the hub queues as JSON text messages, and reads
// subscribe/unsubscribe requests.
//
// Subscribing (several subscriptions per connection):
//   URL:      /v1/stream?name=cpu&host=a   or   ?match={__name__="cpu",host=~"web.*"}
//             plus optional id= (default "url") and since=<ts> (resume)
//   message:  {"subscribe": {"name": "cpu", "labels": {"host": "a"},
//                            "match": "cpu{host=~\"web.*\"}", "since": "2024-..."},
//              "id": "s1"}
//             {"unsubscribe": "s1"}
// Server messages:
//   [{"name":"cpu","value":1,"ts":"2024-01-01T00:00:00.000Z","host":"a"}, ...]
//                 points, the shape GET /v1/metrics returns; one message per
//                 flush, in commit order per series
//   {"subscribed": id, "backfilled": N, "truncated": false}
//   {"unsubscribed": id}
//   {"dropped": N}                   points lost because the client was slow
//   {"error": "...", "id": id}       a request that was refused
// `since` (a timestamp as POST /v1/metrics takes it, usually the last "ts"
// seen) first sends the stored points with ts > since, then live ones.
//
// Close codes: 1000 after the client closes, 1001 on server shutdown, 1003
// for binary messages, 1008 for unparseable requests, 1009 for requests over
// max_message_bytes, 1013 for a client too slow to keep up. Refused before
// the upgrade: 400 (bad subscription in the URL), 503 (connection limit or
// shutting down). Pings keep idle connections alive; a peer that answers
// nothing for idle_timeout is dropped.
#pragma once

#include <chrono>
#include <memory>

#include "base/log.h"
#include "http/router.h"
#include "stream/hub.h"

namespace espy::http {

struct StreamOptions {
  stream::Hub* hub = nullptr;  // must outlive the StreamHandler
  std::chrono::milliseconds handshake_timeout{10'000};
  // A peer silent this long (no data, no pong to our pings at half of it)
  // is disconnected.
  std::chrono::milliseconds idle_timeout{60'000};
  size_t max_message_bytes = 64 << 10;  // client requests
  // Points per server message; a busy client gets several.
  size_t max_points_per_message = 5'000;
  base::Logger logger = base::NullLogger();
};

// Thread-safe. Must outlive the Server whose Router it registered on (its
// sessions run on the server's threads).
class StreamHandler {
 public:
  explicit StreamHandler(StreamOptions options);
  ~StreamHandler();
  StreamHandler(const StreamHandler&) = delete;
  StreamHandler& operator=(const StreamHandler&) = delete;

  // Adds GET /v1/stream.
  void Register(Router& router);
  // Refuses new clients, closes every open stream with 1001 (going away),
  // and waits up to `grace` for them to finish. Returns how many were still
  // open at the deadline. Call before Server::Shutdown.
  size_t CloseAll(std::chrono::milliseconds grace = std::chrono::milliseconds(2'000));
  size_t open_sessions() const;

  class Session;
  struct Registry;

 private:
  StreamOptions options_;
  std::shared_ptr<Registry> registry_;
};

}  // namespace espy::http
