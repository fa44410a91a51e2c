// Listener (see listener.h): the acceptor, one Connection per TCP socket
// (reads, PendingBatch, at most one commit in flight), and the UDP receiver.
#include "graphite/listener.h"

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"
#include "base/threads.h"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ip/udp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "fmt/format.h"

namespace espy::graphite {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using udp = net::ip::udp;
using Strand = net::strand<net::io_context::executor_type>;

namespace {

constexpr int64_t kLogIntervalNanos = 1'000'000'000;
// The largest UDP payload; a datagram is never cut across receives.
constexpr size_t kMaxDatagramBytes = 65'535;

// Lets one event through per interval and counts the ones it holds back.
// Thread-safe.
class RateLimiter {
 public:
  // True when the caller may log now; *suppressed then holds how many events
  // were held back since the last one let through.
  bool Allow(int64_t now_nanos, uint64_t* suppressed) {
    int64_t last = last_.load();
    if (now_nanos - last < kLogIntervalNanos || !last_.compare_exchange_strong(last, now_nanos)) {
      ++suppressed_;
      return false;
    }
    *suppressed = suppressed_.exchange(0);
    return true;
  }

 private:
  std::atomic<int64_t> last_{INT64_MIN / 2};
  std::atomic<uint64_t> suppressed_{0};
};

std::string PeerName(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint ep = socket.remote_endpoint(ec);
  return ec ? std::string("unknown") : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

class Connection;

class Listener::Impl {
 public:
  Impl(ListenerOptions options, storage::Appender* db)
      : options_(std::move(options)),
        db_(db),
        work_(net::make_work_guard(ioc_)),
        acceptor_(net::make_strand(ioc_)),
        udp_(net::make_strand(ioc_)),
        udp_buffer_(kMaxDatagramBytes) {}

  absl::Status Start();
  void Stop();

  // Parses `block`, reports its bad lines (and `splitter_errors`), and
  // returns the samples of the good ones.
  ingest::Batch Parse(std::string_view peer, std::string_view block, int64_t first_line,
                      const std::vector<ingest::GraphiteLineError>* splitter_errors);
  // Commits `batch`; `then()` runs on `strand` once it is durable (or
  // refused), or at once when it is empty.
  template <typename Then>
  void Commit(ingest::Batch batch, const Strand& strand, Then then);

  void Register(uint64_t id, std::weak_ptr<Connection> c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    connections_[id] = std::move(c);
  }
  void Unregister(uint64_t id) {
    absl::MutexLock lock(&mu_);
    connections_.erase(id);
  }

  const ListenerOptions& options() const { return options_; }
  uint16_t port() const { return port_; }

 private:
  void Accept();
  void ReceiveUdp();
  void ReportBadLines(std::string_view peer, const std::vector<ingest::GraphiteLineError>& errors,
                      size_t count);

  const ListenerOptions options_;
  storage::Appender* const db_;
  RateLimiter bad_line_log_;
  RateLimiter failed_commit_log_;

  // Declared before the io_context: connections unregister themselves when
  // the io_context's destruction destroys the last of them.
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::weak_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;

  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  tcp::acceptor acceptor_;
  // UDP state lives on udp_'s strand.
  udp::socket udp_;
  std::vector<char> udp_buffer_;
  udp::endpoint udp_sender_;
  bool udp_committing_ = false;
  bool udp_stopping_ = false;

  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

// The pending batch of a connection: samples parsed from its reads, not yet
// handed to the storage, with each series once. Thread-compatible.
class PendingBatch {
 public:
  PendingBatch() : index_(0, IndexHash{&batch_.series}, IndexEq{&batch_.series}) {}
  PendingBatch(const PendingBatch&) = delete;
  PendingBatch& operator=(const PendingBatch&) = delete;

  // Appends `parsed` (the samples of `bytes` bytes of lines) after what is
  // pending, keeping the samples' order.
  void Add(ingest::Batch parsed, size_t bytes) {
    bytes_ += bytes;
    if (parsed.samples.empty()) return;
    if (batch_.samples.empty()) {
      batch_ = std::move(parsed);  // the common case when commits keep up
      index_.clear();
      by_ref_.clear();
      indexed_ = 0;
      return;
    }
    // Series seen by earlier reads are looked up (by ref when the parser
    // knew it, else by labels), so that a busy connection's batch carries
    // each series once however many reads it spans.
    for (; indexed_ < batch_.series.size(); ++indexed_) {
      if (model::SeriesRef ref = batch_.RefOf(indexed_); ref != 0) {
        by_ref_.try_emplace(ref, indexed_);
      } else {
        index_.insert(indexed_);
      }
    }
    remap_.resize(parsed.series.size());
    for (size_t i = 0; i < parsed.series.size(); ++i) {
      if (model::SeriesRef ref = parsed.RefOf(i); ref != 0) {
        auto [at, added] = by_ref_.try_emplace(ref, 0);
        if (added) at->second = batch_.AddSeriesRef(ref);
        remap_[i] = at->second;
        indexed_ = static_cast<uint32_t>(batch_.series.size());
        continue;
      }
      auto it = index_.find(parsed.series[i]);
      if (it != index_.end()) {
        remap_[i] = *it;
        continue;
      }
      remap_[i] = batch_.AddSeries(std::move(parsed.series[i]));
      index_.insert(remap_[i]);
      indexed_ = static_cast<uint32_t>(batch_.series.size());
    }
    batch_.samples.reserve(batch_.samples.size() + parsed.samples.size());
    for (const model::BatchSample& s : parsed.samples) batch_.Add(remap_[s.series], s.ts, s.value);
  }

  // Bytes of lines taken since the last Take (good, bad and blank lines).
  size_t bytes() const { return bytes_; }

  // Hands out the pending samples and starts an empty batch.
  ingest::Batch Take() {
    ingest::Batch out = std::move(batch_);
    batch_.series.clear();
    batch_.samples.clear();
    batch_.refs.clear();
    index_.clear();
    by_ref_.clear();
    indexed_ = 0;
    bytes_ = 0;
    return out;
  }

 private:
  // Indexes into batch_.series, hashed and compared by their labels; finds
  // take Labels too.
  struct IndexHash {
    using is_transparent = void;
    const std::vector<model::Labels>* series;
    size_t operator()(uint32_t i) const { return absl::Hash<model::Labels>{}((*series)[i]); }
    size_t operator()(const model::Labels& l) const { return absl::Hash<model::Labels>{}(l); }
  };
  struct IndexEq {
    using is_transparent = void;
    const std::vector<model::Labels>* series;
    const model::Labels& Get(uint32_t i) const { return (*series)[i]; }
    const model::Labels& Get(const model::Labels& l) const { return l; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Get(a) == Get(b);
    }
  };

  ingest::Batch batch_;
  // Point into batch_.series: the series given by labels, and by ref.
  absl::flat_hash_set<uint32_t, IndexHash, IndexEq> index_;
  absl::flat_hash_map<model::SeriesRef, uint32_t> by_ref_;
  uint32_t indexed_ = 0;  // batch_.series[0, indexed_) are in index_ or by_ref_
  std::vector<uint32_t> remap_;
  size_t bytes_ = 0;
};

// One TCP connection, on its own strand; owned by its pending operations (a
// read, a commit whose callback holds it), so it dies with the last one.
// Reads go on while a batch is committed; at most one batch is in flight.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, Strand strand, Listener::Impl& listener, uint64_t id)
      : socket_(std::move(socket)),
        strand_(std::move(strand)),
        listener_(listener),
        id_(id),
        peer_(PeerName(socket_)),
        splitter_(listener.options().max_line_bytes),
        buffer_(listener.options().read_buffer_bytes) {}
  ~Connection() { listener_.Unregister(id_); }

  void Start() {
    net::dispatch(strand_, [self = shared_from_this()] { self->Pump(); });
  }

  // No more reads; what was read is committed, then the socket is closed.
  void Stop() {
    net::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->reading_) {
        boost::system::error_code ignored;
        self->socket_.cancel(ignored);  // the read ends with operation_aborted
      }
      self->Pump();
    });
  }

 private:
  // Starts whatever can run now: the pending batch's commit when none is in
  // flight, a read unless the stream ended or the pending batch is full,
  // and closes the socket once neither is left.
  void Pump() {
    if (!committing_) {
      ingest::Batch batch = pending_.Take();
      if (!batch.empty()) {
        committing_ = true;
        listener_.Commit(std::move(batch), strand_, [self = shared_from_this()] {
          self->committing_ = false;
          self->Pump();
        });
      }
    }
    bool ended = eof_ || stopping_;
    if (!ended && !reading_ && pending_.bytes() < listener_.options().max_batch_bytes) Read();
    if (ended && !reading_ && !committing_) Close();
  }

  void Read() {
    reading_ = true;
    socket_.async_read_some(net::buffer(buffer_),
                            net::bind_executor(strand_, [self = shared_from_this()](
                                                            boost::system::error_code ec,
                                                            size_t n) { self->OnRead(ec, n); }));
  }

  void OnRead(boost::system::error_code ec, size_t n) {
    reading_ = false;
    // Bytes that arrived are kept even when Stop() raced with the read.
    if (n > 0) Take(splitter_.Feed(std::string_view(buffer_.data(), n), &errors_));
    if (ec) {
      // End of stream (or a reset): the partial last line is parsed too. A
      // read cancelled by Stop() leaves it unfinished.
      if (ec != net::error::operation_aborted) Take(splitter_.Finish());
      eof_ = true;
    }
    Pump();
  }

  // Parses a block of whole lines into the pending batch.
  void Take(const ingest::GraphiteLineSplitter::Block& block) {
    if (block.text.empty() && errors_.empty()) return;
    pending_.Add(listener_.Parse(peer_, block.text, block.first_line, &errors_), block.text.size());
    errors_.clear();
  }

  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  tcp::socket socket_;
  Strand strand_;
  Listener::Impl& listener_;
  const uint64_t id_;
  const std::string peer_;
  ingest::GraphiteLineSplitter splitter_;
  std::vector<char> buffer_;
  std::vector<ingest::GraphiteLineError> errors_;
  PendingBatch pending_;
  bool reading_ = false;     // a read is outstanding
  bool committing_ = false;  // a batch is in flight
  bool eof_ = false;         // the stream ended: no more reads
  bool stopping_ = false;
};

ingest::Batch Listener::Impl::Parse(std::string_view peer, std::string_view block,
                                    int64_t first_line,
                                    const std::vector<ingest::GraphiteLineError>* splitter_errors) {
  ingest::SeriesLookup lookup(options_.series_cache, ingest::SeriesCache::Protocol::kGraphite);
  ingest::GraphiteParseResult result =
      ingest::ParseGraphiteLines(block, first_line, options_.clock->NowMillis(), options_.limits,
                                 options_.max_line_bytes, &lookup);
  lookup.Learn(&result.batch, [this](const model::Labels& l) { return db_->Lookup(l); });
  if (splitter_errors != nullptr && !splitter_errors->empty()) {
    result.error_count += splitter_errors->size();
    result.errors.insert(result.errors.begin(), splitter_errors->begin(), splitter_errors->end());
  }
  ReportBadLines(peer, result.errors, result.error_count);
  return std::move(result.batch);
}

template <typename Then>
void Listener::Impl::Commit(ingest::Batch batch, const Strand& strand, Then then) {
  size_t n = batch.samples.size();
  if (n == 0) {
    net::dispatch(strand, std::move(then));
    return;
  }
  // The work guard keeps the I/O threads running until the callback has
  // been handed back to the strand, so Stop() waits for in-flight commits.
  db_->Commit(std::move(batch), [this, n, strand, then = std::move(then),
                                 work = net::make_work_guard(strand)](absl::Status s) mutable {
    if (s.ok()) {
      if (options_.on_committed) options_.on_committed(n);
    } else {
      if (options_.on_failed) options_.on_failed(1);
      uint64_t suppressed = 0;
      if (failed_commit_log_.Allow(options_.clock->MonotonicNanos(), &suppressed)) {
        base::Warn(options_.logger, "graphite batch not stored", "samples", n, "err", s.message(),
                   "suppressed", suppressed);
      }
    }
    net::post(strand, std::move(then));
  });
}

void Listener::Impl::ReportBadLines(std::string_view peer,
                                    const std::vector<ingest::GraphiteLineError>& errors,
                                    size_t count) {
  if (count == 0) return;
  if (options_.on_bad_lines) options_.on_bad_lines(count);
  uint64_t suppressed = 0;
  if (errors.empty() || !bad_line_log_.Allow(options_.clock->MonotonicNanos(), &suppressed)) return;
  const ingest::GraphiteLineError& first = errors.front();
  base::Warn(options_.logger, "bad graphite line skipped", "peer", peer, "line", first.line + 1,
             "err", first.status.message(), "bad_lines_in_read", count, "suppressed", suppressed);
}

absl::Status Listener::Impl::Start() {
  boost::system::error_code ec;
  net::ip::address address;
  if (options_.host.empty()) {
    address = net::ip::address_v4::any();
  } else {
    address = net::ip::make_address(options_.host, ec);
    if (ec) {
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(options_.host, "", ec);
      if (ec || results.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("graphite listener: cannot resolve host \"{}\": {}", options_.host,
                        ec ? ec.message() : "no address"));
      }
      address = results.begin()->endpoint().address();
    }
  }
  tcp::endpoint endpoint(address, options_.port);
  auto fail = [&](std::string_view what, uint16_t port) {
    return absl::UnavailableError(fmt::format("graphite listener: cannot {} {}:{}: {}", what,
                                              address.to_string(), port, ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return fail("open", options_.port);
  if (acceptor_.set_option(net::socket_base::reuse_address(true), ec); ec) {
    return fail("set SO_REUSEADDR on", options_.port);
  }
  if (acceptor_.bind(endpoint, ec); ec) return fail("bind TCP", options_.port);
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec); ec) {
    return fail("listen on", options_.port);
  }
  port_ = acceptor_.local_endpoint().port();
  if (options_.udp) {
    udp::endpoint udp_endpoint(address, port_);
    if (udp_.open(udp_endpoint.protocol(), ec); ec) return fail("open UDP", port_);
    // Room for bursts while a datagram's batch is being committed.
    udp_.set_option(net::socket_base::receive_buffer_size(8 << 20), ec);
    if (udp_.bind(udp_endpoint, ec); ec) return fail("bind UDP", port_);
  }
  started_ = true;
  net::post(acceptor_.get_executor(), [this] { Accept(); });
  if (options_.udp) net::post(udp_.get_executor(), [this] { ReceiveUdp(); });
  const int n = base::ThreadsOrOnePerCore(options_.threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      base::SetThreadName("espy-graphite");
      ioc_.run();
    });
  }
  base::Info(options_.logger, "graphite listening", "address",
             fmt::format("{}:{}", address.to_string(), port_), "udp", options_.udp);
  return absl::OkStatus();
}

void Listener::Impl::Accept() {
  Strand strand = net::make_strand(ioc_);
  acceptor_.async_accept(strand, [this, strand](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      std::shared_ptr<Connection> connection;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        if (connections_.size() < options_.max_connections) {
          uint64_t id = next_id_++;
          connection = std::make_shared<Connection>(std::move(socket), strand, *this, id);
          Register(id, connection);
        }
      }
      if (connection) {
        connection->Start();
      } else {
        base::Warn(options_.logger, "graphite connection refused", "reason",
                   fmt::format("over {} open", options_.max_connections));
        socket.close(ec);
      }
    } else {
      base::Warn(options_.logger, "graphite accept failed", "err", ec.message());
    }
    Accept();
  });
}

void Listener::Impl::ReceiveUdp() {
  if (udp_stopping_) return;
  udp_.async_receive_from(
      net::buffer(udp_buffer_), udp_sender_, [this](boost::system::error_code ec, size_t n) {
        if (ec == net::error::operation_aborted || udp_stopping_) return;
        if (ec) {
          base::Warn(options_.logger, "graphite UDP receive failed", "err", ec.message());
          return ReceiveUdp();
        }
        udp_committing_ = true;
        std::string peer =
            fmt::format("udp:{}:{}", udp_sender_.address().to_string(), udp_sender_.port());
        const Strand* strand = udp_.get_executor().target<Strand>();
        ingest::Batch batch = Parse(peer, std::string_view(udp_buffer_.data(), n), 0, nullptr);
        Commit(std::move(batch), *strand, [this] {
          udp_committing_ = false;
          if (udp_stopping_) {
            boost::system::error_code ignored;
            udp_.close(ignored);
            return;
          }
          ReceiveUdp();
        });
      });
}

void Listener::Impl::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  std::vector<std::shared_ptr<Connection>> live;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, weak] : connections_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  if (udp_.is_open()) {
    net::post(udp_.get_executor(), [this] {
      udp_stopping_ = true;
      boost::system::error_code ec;
      if (!udp_committing_) udp_.close(ec);
    });
  }
  for (auto& c : live) c->Stop();
  live.clear();
  // The threads return once no read, accept or commit is outstanding.
  work_.reset();
  for (auto& t : threads_) t.join();
  threads_.clear();
  base::Info(options_.logger, "graphite listener stopped");
}

Listener::Listener(ListenerOptions options, storage::Appender* db)
    : impl_(std::make_unique<Impl>(std::move(options), db)) {}
Listener::~Listener() { Stop(); }
absl::Status Listener::Start() { return impl_->Start(); }
uint16_t Listener::port() const { return impl_->port(); }
void Listener::Stop() { impl_->Stop(); }

}  // namespace espy::graphite
