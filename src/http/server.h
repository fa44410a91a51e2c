// Server: HTTP/1.1 on Boost.Beast/Asio. A pool of threads runs one
// io_context; each connection is a session on its own strand, with keep-alive,
// header/body limits, read/idle/write timeouts, 100-continue, and a graceful
// shutdown that finishes in-flight requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "base/log.h"
#include "http/router.h"

namespace espy::auth {
class Authenticator;
}

namespace espy::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;  // 0 picks a free port (see Server::port())
  int threads = 0;       // 0: one per core
  size_t max_header_bytes = 16 << 10;
  // Larger bodies get 413. Batches this large take proportionally long to
  // parse; most clients send far less.
  size_t max_body_bytes = 64 << 20;
  // A connection waiting for the next request longer than this is closed.
  std::chrono::milliseconds idle_timeout{120'000};
  // Reading one request, or writing one response, may take this long.
  std::chrono::milliseconds io_timeout{30'000};
  size_t max_connections = 10'000;
  bool access_log = false;
  base::Logger logger = base::NullLogger();
  // Called after each response is written: route ("" when unmatched),
  // status code, seconds from request read to response written.
  std::function<void(std::string_view route, int status, double seconds)> on_response;
  // When set (and its config has users), every request but the open paths
  // needs credentials (http/auth_gate.h); its extra headers go on every
  // response. Must outlive the Server.
  auth::Authenticator* auth = nullptr;
};

// Thread-safe. "router" must outlive the Server.
class Server {
 public:
  Server(ServerOptions options, const Router& router);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving. An error names the address and the reason.
  absl::Status Start();
  uint16_t port() const;
  // Stops accepting, closes idle connections, waits up to `grace` for
  // in-flight requests to be answered, then stops the threads. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace espy::http
