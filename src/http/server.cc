#include "http/server.h"

#include <atomic>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "base/threads.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket/rfc6455.hpp"
#include "fmt/format.h"
#include "http/auth_gate.h"

namespace espy::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

class Session;

class Server::Impl {
 public:
  Impl(ServerOptions options, const Router& router)
      : options_(std::move(options)), router_(router) {}

  absl::Status Start();
  void Shutdown(std::chrono::milliseconds grace);
  void Accept();

  void Register(uint64_t id, std::weak_ptr<Session> s) {
    absl::MutexLock lock(&mu_);
    sessions_[id] = std::move(s);
  }
  void Unregister(uint64_t id) {
    absl::MutexLock lock(&mu_);
    sessions_.erase(id);
  }

  // Declared first so it outlives the io_context, whose destruction may
  // destroy the last sessions (which unregister themselves).
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::weak_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);

  const ServerOptions options_;
  const Router& router_;
  // One io_context per thread: a connection lives on one thread, so its
  // handlers need no strand and wake no other thread.
  std::vector<std::unique_ptr<net::io_context>> iocs_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::optional<tcp::acceptor> acceptor_;  // on iocs_[0]
  size_t next_ioc_ = 0;                    // round-robin for new connections
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_id_{1};
  uint16_t port_ = 0;
  bool started_ = false;
  bool shut_down_ = false;
};

// One connection. Lives on its own strand; owned by the pending async
// operation's handler (shared_from_this), so it dies when its last
// operation completes.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, net::io_context::executor_type executor, Server::Impl& server,
          uint64_t id)
      : stream_(std::move(socket)), executor_(executor), server_(server), id_(id) {}
  ~Session() { server_.Unregister(id_); }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Called from Shutdown: an idle connection closes now; a busy one closes
  // after its response.
  void Stop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->waiting_for_request_) self->stream_.socket().cancel();
    });
  }

 private:
  static constexpr size_t kFirstReadBytes = 16 << 10;

  const ServerOptions& options() const { return server_.options_; }

  void ReadHeader() {
    if (server_.stopping_) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    if (buffer_.size() > 0) return ReadRestOfHeader();  // pipelined bytes already here
    // Idle until the first byte of the next request; from then on the
    // request must arrive within the I/O timeout.
    waiting_for_request_ = true;
    stream_.expires_after(options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->waiting_for_request_ = false;
                              if (ec) return self->OnReadError(ec);
                              self->buffer_.commit(n);
                              if (self->HeaderTooLarge()) {
                                return self->OnReadError(bhttp::error::header_limit);
                              }
                              self->ReadRestOfHeader();
                            });
  }

  // Whether the bytes of the first read already hold more header than
  // allowed (so an oversized header is refused before it is parsed).
  bool HeaderTooLarge() const {
    std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    size_t end = data.find("\r\n\r\n");
    size_t header_bytes = end == std::string_view::npos ? data.size() : end + 4;
    return header_bytes > options().max_header_bytes;
  }

  void ReadRestOfHeader() {
    stream_.expires_after(options().io_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t header_bytes) {
          // Beast applies its header limit per read, not to a header that
          // trickles in over several: check the total here.
          if (!ec && header_bytes > self->options().max_header_bytes)
            ec = bhttp::error::header_limit;
          self->OnHeader(ec);
        });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    start_ = std::chrono::steady_clock::now();
    const auto& header = parser_->get();
    if (beast::iequals(header[bhttp::field::expect], "100-continue")) {
      auto cont =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                           if (ec) return self->Close();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Handle();
                      });
  }

  void OnReadError(beast::error_code ec) {
    // Client-side problems with a request get an answer; a vanished or idle
    // client just gets closed.
    if (ec == bhttp::error::body_limit) {
      // The header is in: count the 413 under the route it was sent to.
      const auto& header = parser_->get();
      return SendError(Status::payload_too_large,
                       fmt::format("request body larger than {} bytes", options().max_body_bytes),
                       server_.router_.RouteOf(
                           std::string_view(header.target().data(), header.target().size())));
    }
    if (ec == bhttp::error::header_limit) {
      return SendError(
          Status::request_header_fields_too_large,
          fmt::format("request headers larger than {} bytes", options().max_header_bytes));
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return SendError(Status::bad_request,
                       fmt::format("malformed HTTP request: {}", ec.message()));
    }
    Close();
  }

  // `route`: the route the request would have gone to, "" when unknown.
  void SendError(Status status, std::string message, std::string route = "") {
    route_ = std::move(route);
    start_ = std::chrono::steady_clock::now();
    close_after_ = true;
    Send(ErrorResponse(status, message));
  }

  void Handle() {
    request_ = parser_->release();
    if (options().auth != nullptr) {
      if (std::optional<Response> refused = CheckCredentials(*options().auth, request_)) {
        close_after_ = !request_.keep_alive();
        route_ = server_.router_.RouteOf(
            std::string_view(request_.target().data(), request_.target().size()));
        return Send(std::move(*refused));
      }
    }
    if (beast::websocket::is_upgrade(request_)) {
      if (const WebSocketHandler* ws = server_.router_.FindWebSocket(request_)) {
        // The WebSocket side owns the connection from here; this session
        // ends when the last reference to it goes.
        stream_.expires_never();
        (*ws)(std::move(stream_), std::move(request_));
        return;
      }
    }
    close_after_ = !request_.keep_alive();
    stream_.expires_never();  // the handler's own time; the write re-arms
    auto self = shared_from_this();
    Reply reply(
        [self](Response res) {
          // Inline when the handler answers on the connection's own thread;
          // queued to that thread otherwise (e.g. from the commit thread).
          net::dispatch(self->executor_,
                        [self, res = std::move(res)]() mutable { self->Send(std::move(res)); });
        },
        [self](Response header) { return self->StartStream(std::move(header)); });
    server_.router_.Dispatch(request_, std::move(reply), &route_);
  }

  void Send(Response res) {
    if (server_.stopping_) close_after_ = true;
    // Answer in the client's version, so HTTP/1.0 keep-alive clients (ab -k)
    // get their "Connection: keep-alive".
    if (request_.version() == 10) res.version(10);
    res.keep_alive(!close_after_);
    res.set(bhttp::field::server, "espy");
    if (options().auth != nullptr) AddConfiguredHeaders(*options().auth, &res);
    response_ = std::make_shared<Response>(std::move(res));
    stream_.expires_after(options().io_timeout);
    bhttp::async_write(stream_, *response_,
                       [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                         self->OnWrite(ec, bytes);
                       });
  }

  void OnWrite(beast::error_code ec, size_t bytes) {
    int status = response_->result_int();
    response_.reset();
    Done(ec, status, bytes);
  }

  // After the last byte of a response (or a failed write): metrics, access
  // log, then the next request or the end of the connection.
  void Done(beast::error_code ec, int status, size_t bytes) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (options().on_response) options().on_response(route_, status, seconds);
    if (options().access_log) {
      base::Info(options().logger, "access", "method", std::string(request_.method_string()),
                 "target", std::string(request_.target()), "status", status, "bytes", bytes, "ms",
                 fmt::format("{:.3f}", seconds * 1000));
    }
    request_ = {};
    if (ec || close_after_) return Close();
    ReadHeader();
  }

 public:
  // Reply::Stream: from any thread.
  std::unique_ptr<BodyWriter> StartStream(Response header) {
    auto body = std::make_shared<StreamedBody>();
    auto self = shared_from_this();
    net::dispatch(executor_, [self, body, header = std::move(header)]() mutable {
      self->SendStreamHeader(std::move(header), std::move(body));
    });
    return std::make_unique<Writer>(std::move(self), std::move(body));
  }

 private:
  // What the producer of a streamed body has handed over and the session
  // has not yet sent.
  struct StreamedBody {
    absl::Mutex mu;
    std::vector<std::string> pieces ABSL_GUARDED_BY(mu);
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    bool finished ABSL_GUARDED_BY(mu) = false;
    bool failed ABSL_GUARDED_BY(mu) = false;
    // A Pump is scheduled or running (from the start: the header's).
    bool pumping ABSL_GUARDED_BY(mu) = true;
  };

  // Queued and not yet sent, above which Write waits: enough to keep the
  // socket busy while the producer makes the next piece.
  static constexpr size_t kMaxQueuedBytes = 4 << 20;

  class Writer : public BodyWriter {
   public:
    Writer(std::shared_ptr<Session> session, std::shared_ptr<StreamedBody> body)
        : session_(std::move(session)), body_(std::move(body)) {}
    ~Writer() override { Finish(); }

    bool Write(std::string piece) override {
      bool kick;
      {
        absl::MutexLock lock(&body_->mu);
        if (body_->finished || body_->failed) return false;
        if (piece.empty()) return true;  // a zero-size chunk would end the body
        // On the connection's own thread nothing would drain the queue.
        if (!session_->executor_.running_in_this_thread()) {
          // A parameter, not a capture: clang's analysis cannot name a
          // capture in the annotation.
          auto room = +[](StreamedBody* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu) {
            return b->bytes < kMaxQueuedBytes || b->failed;
          };
          // No progress for a whole write timeout: the session is stuck.
          if (!body_->mu.AwaitWithTimeout(absl::Condition(room, body_.get()),
                                          absl::FromChrono(session_->options().io_timeout))) {
            body_->failed = true;
          }
          if (body_->failed) return false;
        }
        body_->bytes += piece.size();
        body_->pieces.push_back(std::move(piece));
        kick = !std::exchange(body_->pumping, true);
      }
      if (kick) Kick();
      return true;
    }

    void Finish() override {
      {
        absl::MutexLock lock(&body_->mu);
        if (body_->finished) return;
        body_->finished = true;
        if (std::exchange(body_->pumping, true)) return;
      }
      Kick();
    }

   private:
    void Kick() {
      net::post(session_->executor_, [s = session_] { s->Pump(); });
    }

    std::shared_ptr<Session> session_;
    std::shared_ptr<StreamedBody> body_;
  };

  void SendStreamHeader(Response header, std::shared_ptr<StreamedBody> body) {
    if (server_.stopping_) close_after_ = true;
    header.body().clear();
    header.erase(bhttp::field::content_length);
    if (request_.version() == 10) {
      // No chunked encoding in HTTP/1.0: the end of the body is the end
      // of the connection.
      header.version(10);
      close_after_ = true;
    } else {
      header.chunked(true);
    }
    header.keep_alive(!close_after_);
    header.set(bhttp::field::server, "espy");
    chunked_ = header.chunked();
    // A HEAD request gets the header only; the producer's pieces are dropped.
    head_only_ = request_.method() == bhttp::verb::head;
    stream_status_ = header.result_int();
    stream_bytes_ = 0;
    std::ostringstream text;
    text << header.base();
    out_text_.clear();
    out_text_.push_back(text.str());
    body_ = std::move(body);
    Pump();
  }

  // Sends what the producer has queued (after the header, the first time),
  // then runs again until the body is finished.
  void Pump() {
    bool last;
    {
      absl::MutexLock lock(&body_->mu);
      out_pieces_.swap(body_->pieces);  // out_pieces_ was emptied after the last write
      body_->bytes = 0;
      last = body_->finished;
      if (out_pieces_.empty() && !last && out_text_.empty()) {
        body_->pumping = false;
        return;
      }
    }
    if (head_only_) out_pieces_.clear();
    std::vector<net::const_buffer> buffers;
    // out_text_ holds the header and the chunk sizes; reserved so that the
    // buffers pointing into it stay valid.
    out_text_.reserve(out_text_.size() + out_pieces_.size() + 1);
    if (!out_text_.empty()) buffers.push_back(net::buffer(out_text_.front()));
    for (const std::string& piece : out_pieces_) {
      if (chunked_) {
        out_text_.push_back(fmt::format("{:x}\r\n", piece.size()));
        buffers.push_back(net::buffer(out_text_.back()));
      }
      buffers.push_back(net::buffer(piece));
      if (chunked_) buffers.push_back(net::buffer("\r\n", 2));
    }
    if (last && chunked_ && !head_only_) buffers.push_back(net::buffer("0\r\n\r\n", 5));
    stream_.expires_after(options().io_timeout);
    net::async_write(stream_, buffers,
                     [self = shared_from_this(), last](beast::error_code ec, size_t n) {
                       self->stream_bytes_ += n;
                       self->out_text_.clear();
                       self->out_pieces_.clear();
                       if (ec || last) return self->EndStream(ec);
                       self->Pump();
                     });
  }

  void EndStream(beast::error_code ec) {
    if (ec) {
      absl::MutexLock lock(&body_->mu);
      body_->failed = true;
      body_->pieces.clear();
    }
    body_.reset();
    Done(ec, stream_status_, stream_bytes_);
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const net::io_context::executor_type executor_;
  Server::Impl& server_;
  const uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;
  std::shared_ptr<Response> response_;
  // The streamed response being sent, if any.
  std::shared_ptr<StreamedBody> body_;
  std::vector<std::string> out_pieces_;  // being written
  std::vector<std::string> out_text_;    // being written: header, chunk sizes
  bool chunked_ = false;
  bool head_only_ = false;
  int stream_status_ = 0;
  size_t stream_bytes_ = 0;
  std::string route_;
  std::chrono::steady_clock::time_point start_;
  bool waiting_for_request_ = false;
  bool close_after_ = false;
};

absl::Status Server::Impl::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(options_.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        fmt::format("listen address \"{}\": want an IP address: {}", options_.host, ec.message()));
  }
  const int n = base::ThreadsOrOnePerCore(options_.threads);
  for (int i = 0; i < n; ++i) {
    iocs_.push_back(std::make_unique<net::io_context>(1));
    work_.push_back(net::make_work_guard(*iocs_.back()));
  }
  tcp::endpoint endpoint(address, options_.port);
  std::string where = fmt::format("{}:{}", options_.host, options_.port);
  acceptor_.emplace(*iocs_[0]);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(fmt::format("listen on {}: {}", where, ec.message()));
  port_ = acceptor_->local_endpoint().port();
  Accept();
  for (auto& ioc : iocs_) {
    threads_.emplace_back([ioc = ioc.get()] {
      base::SetThreadName("espy-http");
      ioc->run();
    });
  }
  started_ = true;
  return absl::OkStatus();
}

void Server::Impl::Accept() {
  net::io_context& target = *iocs_[next_ioc_++ % iocs_.size()];
  acceptor_->async_accept(target, [this, &target](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (stopping_ || ec == net::error::operation_aborted) return;
      base::Warn(options_.logger, "accept failed", "err", ec.message());
    } else {
      bool full;
      {
        absl::MutexLock lock(&mu_);
        full = sessions_.size() >= options_.max_connections;
      }
      if (full || stopping_) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        uint64_t id = next_id_++;
        auto session =
            std::make_shared<Session>(std::move(socket), target.get_executor(), *this, id);
        Register(id, session);
        session->Start();
      }
    }
    if (!stopping_) Accept();
  });
}

void Server::Impl::Shutdown(std::chrono::milliseconds grace) {
  if (!started_ || shut_down_) return;
  shut_down_ = true;
  stopping_ = true;
  net::post(acceptor_->get_executor(), [this] {
    beast::error_code ignored;
    acceptor_->close(ignored);
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->Stop();
  live.clear();
  {
    // Sessions unregister as they finish; busy ones after their response.
    absl::MutexLock lock(&mu_);
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sessions_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&drained), absl::FromChrono(grace))) {
      base::Warn(options_.logger, "shutdown grace period over; dropping connections", "open",
                 sessions_.size());
    }
  }
  work_.clear();
  for (auto& ioc : iocs_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Server::Server(ServerOptions options, const Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}
Server::~Server() { Shutdown(); }
absl::Status Server::Start() { return impl_->Start(); }
uint16_t Server::port() const { return impl_->port_; }
void Server::Shutdown(std::chrono::milliseconds grace) { impl_->Shutdown(grace); }

}  // namespace espy::http
