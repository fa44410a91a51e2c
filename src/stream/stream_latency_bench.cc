// stream_latency_bench: a load client for a running espy's live stream
// (GET /v1/stream). It starts nothing itself; bench/stream_bench.py starts
// espy and runs it per configuration.
//
// N WebSocket clients subscribe, either all to one series (--mode shared:
// /v1/stream?name=M) or each to its own (--mode per-series:
// /v1/stream?name=M&c=<i>). A writer POSTs to /v1/metrics at a fixed rate;
// every point's value is the steady-clock nanosecond at which its POST was
// sent (in per-series mode a POST carries one point per client series, so in
// both modes each client gets one point per POST). Each client records
// receive time - value; the writer also records when each POST was answered,
// so the latency is reported both from the send and from the answer (POST
// answers after the WAL write and sync; the hub is told before the answer
// goes out, so answer->receive may be negative).
//
// Phases: connect and subscribe all clients (server RSS before/after, from
// /proc/<pid>/status with --pid), a latency run (--warmup + --posts POSTs at
// --rate per second), then optionally a saturation run (--saturate-seconds):
// --writers connections post --batch points per POST back to back while the
// clients read; points and messages delivered per second, and points the
// server dropped, are reported.
//
// Everything runs on one io_context with --threads threads. Results go to
// stdout, as text or (--json) one JSON object.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "fmt/format.h"

namespace espy::stream {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;
  int pid = 0;  // espy's, for RSS; 0: not measured
  size_t clients = 1;
  std::string mode = "shared";  // or per-series
  std::string metric = "stream_bench";
  int threads = 2;
  size_t max_connecting = 64;
  double rate = 100;  // POSTs per second in the latency run
  size_t warmup = 50;
  size_t posts = 500;
  size_t post_connections = 4;
  double saturate_seconds = 0;
  size_t writers = 2;
  size_t batch = 100;  // points per POST in the saturation run (shared mode)
  double drain_timeout = 10;
  bool json = false;
};

// Reads VmRSS of `pid` in KiB; 0 when unknown.
int64_t RssKib(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

enum Phase : int { kConnecting = 0, kLatency = 1, kSaturate = 2 };

// Counters the clients share. Thread-safe (atomics).
struct Totals {
  std::atomic<size_t> subscribed{0};
  std::atomic<size_t> failed{0};
  std::atomic<uint64_t> points{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int> phase{kConnecting};
};

// One WebSocket subscriber. Its handlers run one at a time on its strand;
// `samples` is read by main under `mu`.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(net::io_context& ioc, Totals* totals, std::string target)
      : ws_(net::make_strand(ioc)), totals_(totals), target_(std::move(target)) {}

  // (send ns, receive ns) of every point received in the latency phase.
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> samples;

  void Start(const tcp::endpoint& ep, std::function<void(bool)> connected) {
    connected_ = std::move(connected);
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
        ep, [self = shared_from_this(), host = ep.address().to_string()](beast::error_code ec) {
          if (ec) return self->Fail("connect", ec);
          beast::get_lowest_layer(self->ws_).expires_never();
          self->ws_.set_option(
              websocket::stream_base::timeout::suggested(beast::role_type::client));
          self->ws_.async_handshake(host, self->target_, [self](beast::error_code ec) {
            if (ec) return self->Fail("handshake", ec);
            self->Read();
          });
        });
  }

  void Close() {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {});
    });
  }

 private:
  void Fail(std::string_view what, beast::error_code ec) {
    if (closing_) return;
    fmt::print(stderr, "stream client {}: {}: {}\n", target_, what, ec.message());
    if (!subscribed_) {
      ++totals_->failed;
      if (connected_) std::exchange(connected_, nullptr)(false);
    } else {
      ++totals_->errors;
    }
  }

  void Read() {
    ws_.async_read(buffer_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    const int64_t now = NowNs();
    if (ec) return Fail("read", ec);
    auto data = buffer_.cdata();
    std::string_view msg(static_cast<const char*>(data.data()), data.size());
    if (!msg.empty() && msg[0] == '[') {
      OnPoints(msg, now);
    } else if (msg.rfind("{\"subscribed\"", 0) == 0) {
      subscribed_ = true;
      ++totals_->subscribed;
      if (connected_) std::exchange(connected_, nullptr)(true);
    } else if (msg.rfind("{\"dropped\":", 0) == 0) {
      uint64_t n = 0;
      std::from_chars(msg.data() + 11, msg.data() + msg.size(), n);
      totals_->dropped += n;
    } else {
      ++totals_->errors;
      fmt::print(stderr, "stream client {}: unexpected message: {}\n", target_, msg.substr(0, 300));
    }
    buffer_.consume(buffer_.size());
    Read();
  }

  // `msg` is a JSON array of points; each "value" is a send time in ns.
  void OnPoints(std::string_view msg, int64_t now) {
    constexpr std::string_view kKey = "\"value\":";
    const bool record = totals_->phase.load(std::memory_order_relaxed) == kLatency;
    uint64_t n = 0;
    std::unique_lock lock(mu, std::defer_lock);
    if (record) lock.lock();
    for (size_t pos = msg.find(kKey); pos != std::string_view::npos;
         pos = msg.find(kKey, pos + kKey.size())) {
      ++n;
      if (!record) continue;
      double v = 0;
      const char* begin = msg.data() + pos + kKey.size();
      auto [end, err] = std::from_chars(begin, msg.data() + msg.size(), v);
      if (err != std::errc()) {
        ++totals_->errors;
        continue;
      }
      samples.emplace_back(static_cast<int64_t>(v), now);
    }
    totals_->points.fetch_add(n, std::memory_order_relaxed);
    totals_->messages.fetch_add(1, std::memory_order_relaxed);
  }

  websocket::stream<beast::tcp_stream> ws_;
  Totals* totals_;
  std::string target_;
  beast::flat_buffer buffer_;
  std::function<void(bool)> connected_;
  bool subscribed_ = false;
  bool closing_ = false;
};

// One keep-alive HTTP connection that POSTs JSON bodies, one at a time.
// Runs on the writer's strand.
class Poster {
 public:
  Poster(net::strand<net::io_context::executor_type> strand, std::string host)
      : stream_(strand), host_(std::move(host)) {}

  void Connect(const tcp::endpoint& ep, std::function<void(beast::error_code)> done) {
    stream_.async_connect(ep, std::move(done));
  }

  // Sends `body`; `done(ok, answer_ns)` runs once the answer is read.
  void Post(std::string body, std::function<void(bool, int64_t)> done) {
    busy = true;
    done_ = std::move(done);
    req_ = {};
    req_.method(http::verb::post);
    req_.target("/v1/metrics");
    req_.version(11);
    req_.set(http::field::host, host_);
    req_.set(http::field::content_type, "application/json");
    req_.body() = std::move(body);
    req_.prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, req_, [this](beast::error_code ec, size_t) {
      if (ec) return Finish(false, fmt::format("write: {}", ec.message()));
      res_ = {};
      http::async_read(stream_, buf_, res_, [this](beast::error_code ec, size_t) {
        if (ec) return Finish(false, fmt::format("read: {}", ec.message()));
        if (res_.result_int() / 100 != 2) {
          return Finish(false, fmt::format("HTTP {}: {}", res_.result_int(), res_.body()));
        }
        Finish(true, "");
      });
    });
  }

  bool busy = false;

 private:
  void Finish(bool ok, const std::string& error) {
    const int64_t now = NowNs();
    if (!ok) fmt::print(stderr, "POST /v1/metrics: {}\n", error);
    busy = false;
    std::exchange(done_, nullptr)(ok, now);
  }

  beast::tcp_stream stream_;
  std::string host_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  beast::flat_buffer buf_;
  std::function<void(bool, int64_t)> done_;
};

struct PostRecord {
  int64_t send_ns = 0;
  int64_t answer_ns = -1;  // -1: not answered
  bool measured = false;   // false: warm-up
};

// The writer: owns the Posters; everything runs on its strand.
class Writer {
 public:
  Writer(net::io_context& ioc, const Options& o)
      : strand_(net::make_strand(ioc)), timer_(strand_), o_(o) {}

  // Opens the connections; blocks until they are up. False on failure.
  bool Connect(const tcp::endpoint& ep, size_t n) {
    std::promise<bool> result;
    net::post(strand_, [&] {
      auto left = std::make_shared<size_t>(n);
      auto ok = std::make_shared<bool>(true);
      for (size_t i = 0; i < n; ++i) {
        posters_.push_back(std::make_unique<Poster>(strand_, o_.host));
        posters_.back()->Connect(ep, [&, left, ok](beast::error_code ec) {
          if (ec) {
            fmt::print(stderr, "writer connect: {}\n", ec.message());
            *ok = false;
          }
          if (--*left == 0) result.set_value(*ok);
        });
      }
    });
    return result.get_future().get();
  }

  // The latency run: warmup + posts POSTs, one every 1/rate s. Blocks until
  // every POST is answered; returns them in send order.
  std::vector<PostRecord> RunLatency() {
    std::promise<void> finished;
    finished_ = &finished;
    total_ = o_.warmup + o_.posts;
    records_.assign(total_, {});
    period_ns_ = static_cast<int64_t>(1e9 / o_.rate);
    net::post(strand_, [this] {
      start_ns_ = NowNs();
      ScheduleNext();
    });
    finished.get_future().get();
    return records_;
  }

  // The saturation run: each connection posts `batch`-point bodies back to
  // back until Stop. Returns nothing; progress is in points_posted.
  void StartSaturation() {
    net::post(strand_, [this] {
      saturating_ = true;
      for (auto& p : posters_) SaturatePost(p.get());
    });
  }
  void StopSaturation() {
    std::promise<void> stopped;
    net::post(strand_, [&] {
      saturating_ = false;
      stop_waiter_ = &stopped;
      MaybeStopped();
    });
    stopped.get_future().get();
  }

  std::atomic<uint64_t> points_posted{0};
  std::atomic<uint64_t> post_errors{0};
  size_t late_sends = 0;  // latency run: POSTs that waited for a free connection

 private:
  // Body for the POST numbered `seq` sent at `send_ns`: one point (shared)
  // or one per client series (per-series), ts = base + seq ms.
  std::string Body(size_t seq, int64_t send_ns, size_t points_shared) {
    std::string out = "[";
    const int64_t ts = ts_base_ms_ + static_cast<int64_t>(seq);
    const std::string ts_text = fmt::format("{}.{:03}", ts / 1000, ts % 1000);
    if (o_.mode == "per-series") {
      for (size_t c = 0; c < o_.clients; ++c) {
        if (c > 0) out += ',';
        fmt::format_to(std::back_inserter(out), R"({{"name":"{}","c":"{}","value":{},"ts":{}}})",
                       o_.metric, c, send_ns, ts_text);
      }
    } else {
      // Shared: `points_shared` points of the one series, 1 µs of ts apart
      // is not possible (ms resolution): the run advances ts by that many ms.
      for (size_t i = 0; i < points_shared; ++i) {
        const int64_t t = ts + static_cast<int64_t>(i);
        if (i > 0) out += ',';
        fmt::format_to(std::back_inserter(out), R"({{"name":"{}","value":{},"ts":{}.{:03}}})",
                       o_.metric, send_ns, t / 1000, t % 1000);
      }
    }
    out += ']';
    return out;
  }

  int64_t UniqueNow() {
    int64_t now = NowNs();
    if (now <= last_send_ns_) now = last_send_ns_ + 1;
    last_send_ns_ = now;
    return now;
  }

  void ScheduleNext() {
    if (next_ >= total_) return;
    timer_.expires_at(std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(start_ns_ + static_cast<int64_t>(next_) * period_ns_)));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      waiting_.push_back(next_++);
      SendWaiting();
      ScheduleNext();
    });
  }

  void SendWaiting() {
    while (!waiting_.empty()) {
      Poster* free = nullptr;
      for (auto& p : posters_) {
        if (!p->busy) {
          free = p.get();
          break;
        }
      }
      if (free == nullptr) {
        ++late_sends;
        return;
      }
      const size_t seq = waiting_.front();
      waiting_.pop_front();
      const int64_t send_ns = UniqueNow();
      records_[seq].send_ns = send_ns;
      records_[seq].measured = seq >= o_.warmup;
      free->Post(Body(seq_base_ + seq, send_ns, 1), [this, seq](bool ok, int64_t answer_ns) {
        if (ok) {
          records_[seq].answer_ns = answer_ns;
        } else {
          ++post_errors;
        }
        SendWaiting();
        if (++answered_ == total_) {
          seq_base_ += total_;
          finished_->set_value();
        }
      });
    }
  }

  void SaturatePost(Poster* p) {
    if (!saturating_) return MaybeStopped();
    const size_t n = o_.mode == "per-series" ? 1 : o_.batch;
    const size_t seq = seq_base_;
    seq_base_ += n;
    const size_t points = o_.mode == "per-series" ? o_.clients : n;
    p->Post(Body(seq, UniqueNow(), n), [this, p, points](bool ok, int64_t) {
      if (ok) {
        points_posted += points;
      } else {
        ++post_errors;
      }
      SaturatePost(p);
    });
  }

  void MaybeStopped() {
    if (stop_waiter_ == nullptr) return;
    for (auto& p : posters_) {
      if (p->busy) return;
    }
    std::exchange(stop_waiter_, nullptr)->set_value();
  }

  net::strand<net::io_context::executor_type> strand_;
  net::steady_timer timer_;
  const Options& o_;
  std::vector<std::unique_ptr<Poster>> posters_;
  std::deque<size_t> waiting_;
  std::vector<PostRecord> records_;
  std::promise<void>* finished_ = nullptr;
  std::promise<void>* stop_waiter_ = nullptr;
  size_t total_ = 0, next_ = 0, answered_ = 0;
  size_t seq_base_ = 0;
  const int64_t ts_base_ms_ = WallMillis();
  int64_t start_ns_ = 0, period_ns_ = 0, last_send_ns_ = 0;
  bool saturating_ = false;
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  size_t n = 0;
};

// Nearest-rank percentiles of `v` (ns), in ms.
Percentiles Summarize(std::vector<int64_t> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return static_cast<double>(v[std::clamp<size_t>(rank, 1, v.size()) - 1]) / 1e6;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = static_cast<double>(v.back()) / 1e6;
  return p;
}

std::string PercentilesJson(const Percentiles& p) {
  return fmt::format(
      R"({{"n":{},"p50_ms":{:.3f},"p90_ms":{:.3f},"p99_ms":{:.3f},"max_ms":{:.3f}}})", p.n, p.p50,
      p.p90, p.p99, p.max);
}

// Waits until `done()` or until `counter` has not moved for `idle_s`.
template <typename Done>
void WaitFor(Done done, const std::atomic<uint64_t>& counter, double idle_s) {
  uint64_t last = counter.load();
  auto last_move = std::chrono::steady_clock::now();
  while (!done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    uint64_t now = counter.load();
    if (now != last) {
      last = now;
      last_move = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_move >
               std::chrono::duration<double>(idle_s)) {
      return;
    }
  }
}

int Run(const Options& o) {
  if (o.mode != "shared" && o.mode != "per-series") {
    fmt::print(stderr, "--mode: want shared or per-series, got \"{}\"\n", o.mode);
    return 2;
  }
  net::io_context ioc;
  auto guard = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  const tcp::endpoint ep(net::ip::make_address(o.host), o.port);
  Totals totals;
  std::vector<std::shared_ptr<Client>> clients;
  auto finish = [&](int code) {
    for (auto& c : clients) c->Close();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    guard.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
    return code;
  };

  Writer writer(ioc, o);
  if (!writer.Connect(ep, std::max(o.post_connections, o.writers))) return finish(1);

  // Connect and subscribe, at most max_connecting handshakes in flight.
  const int64_t rss_before = RssKib(o.pid);
  const int64_t connect_start = NowNs();
  for (size_t i = 0; i < o.clients; ++i) {
    std::string target = o.mode == "per-series"
                             ? fmt::format("/v1/stream?name={}&c={}", o.metric, i)
                             : fmt::format("/v1/stream?name={}", o.metric);
    clients.push_back(std::make_shared<Client>(ioc, &totals, std::move(target)));
  }
  {
    std::mutex mu;
    std::condition_variable cv;
    size_t next = 0, done = 0;
    std::function<void()> launch = [&] {  // under mu
      while (next < clients.size() && next - done < o.max_connecting) {
        clients[next++]->Start(ep, [&](bool) {
          std::lock_guard lock(mu);
          ++done;
          launch();
          cv.notify_all();
        });
      }
    };
    std::unique_lock lock(mu);
    launch();
    cv.wait(lock, [&] { return done == clients.size(); });
  }
  const double connect_s = static_cast<double>(NowNs() - connect_start) / 1e9;
  if (totals.failed > 0) {
    fmt::print(stderr, "{} of {} clients failed to connect or subscribe\n", totals.failed.load(),
               o.clients);
    return finish(1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int64_t rss_connected = RssKib(o.pid);

  // Latency run.
  totals.phase = kLatency;
  const uint64_t points_at_start = totals.points.load();
  std::vector<PostRecord> posts = writer.RunLatency();
  const uint64_t expected = static_cast<uint64_t>(posts.size()) * o.clients;
  WaitFor([&] { return totals.points.load() - points_at_start >= expected; }, totals.points,
          o.drain_timeout);
  totals.phase = kSaturate;
  const int64_t rss_after = RssKib(o.pid);
  const uint64_t received = totals.points.load() - points_at_start;

  std::vector<int64_t> from_send, from_answer, all_received;
  {
    std::vector<std::pair<int64_t, int64_t>> by_send;  // send -> answer
    for (const PostRecord& r : posts) {
      if (r.measured && r.answer_ns >= 0) by_send.emplace_back(r.send_ns, r.answer_ns);
    }
    std::sort(by_send.begin(), by_send.end());
    std::vector<int64_t> last_receive(by_send.size(), 0);
    for (auto& c : clients) {
      std::lock_guard lock(c->mu);
      for (auto [send, recv] : c->samples) {
        auto it =
            std::lower_bound(by_send.begin(), by_send.end(), std::make_pair(send, int64_t{0}));
        if (it == by_send.end() || it->first != send) continue;  // warm-up
        from_send.push_back(recv - send);
        from_answer.push_back(recv - it->second);
        int64_t& last = last_receive[static_cast<size_t>(it - by_send.begin())];
        last = std::max(last, recv);
      }
      c->samples.clear();
    }
    for (size_t i = 0; i < by_send.size(); ++i) {
      if (last_receive[i] > 0) all_received.push_back(last_receive[i] - by_send[i].first);
    }
  }
  std::vector<int64_t> post_rtt;
  for (const PostRecord& r : posts) {
    if (r.measured && r.answer_ns >= 0) post_rtt.push_back(r.answer_ns - r.send_ns);
  }
  // Answer-relative latencies can be negative: Summarize sorts signed values.
  const Percentiles send_p = Summarize(from_send), answer_p = Summarize(from_answer),
                    all_p = Summarize(all_received), rtt_p = Summarize(post_rtt);

  // Saturation run.
  double sat_points_s = 0, sat_messages_s = 0, sat_posted_s = 0;
  uint64_t sat_dropped = 0;
  if (o.saturate_seconds > 0) {
    const uint64_t dropped0 = totals.dropped.load();
    writer.StartSaturation();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // ramp up
    const uint64_t p0 = totals.points.load(), m0 = totals.messages.load(),
                   w0 = writer.points_posted.load();
    const int64_t t0 = NowNs();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.saturate_seconds));
    const double secs = static_cast<double>(NowNs() - t0) / 1e9;
    sat_points_s = static_cast<double>(totals.points.load() - p0) / secs;
    sat_messages_s = static_cast<double>(totals.messages.load() - m0) / secs;
    sat_posted_s = static_cast<double>(writer.points_posted.load() - w0) / secs;
    writer.StopSaturation();
    WaitFor([] { return false; }, totals.points, 1.0);  // let the queues drain
    sat_dropped = totals.dropped.load() - dropped0;
  }

  const double per_conn_connected =
      o.pid > 0 ? static_cast<double>(rss_connected - rss_before) / static_cast<double>(o.clients)
                : 0;
  const double per_conn_after =
      o.pid > 0 ? static_cast<double>(rss_after - rss_before) / static_cast<double>(o.clients) : 0;
  if (o.json) {
    fmt::print(R"({{"clients":{},"mode":"{}","rate":{},"posts":{},"connect_s":{:.3f},)"
               R"("expected":{},"received":{},"post_errors":{},"client_errors":{},"late_sends":{},)"
               R"("from_send":{},"from_answer":{},"all_clients":{},"post_rtt":{},)"
               R"("rss_before_kib":{},"rss_connected_kib":{},"rss_after_kib":{},)"
               R"("rss_per_conn_connected_kib":{:.2f},"rss_per_conn_after_kib":{:.2f},)"
               R"("sat_points_s":{:.0f},"sat_messages_s":{:.0f},"sat_posted_points_s":{:.0f},)"
               R"("sat_dropped":{}}})"
               "\n",
               o.clients, o.mode, o.rate, o.posts, connect_s, expected, received,
               writer.post_errors.load(), totals.errors.load(), writer.late_sends,
               PercentilesJson(send_p), PercentilesJson(answer_p), PercentilesJson(all_p),
               PercentilesJson(rtt_p), rss_before, rss_connected, rss_after, per_conn_connected,
               per_conn_after, sat_points_s, sat_messages_s, sat_posted_s, sat_dropped);
  } else {
    auto line = [](std::string_view what, const Percentiles& p) {
      fmt::print("{:<28} p50 {:8.3f}  p90 {:8.3f}  p99 {:8.3f}  max {:8.3f} ms  (n={})\n", what,
                 p.p50, p.p90, p.p99, p.max, p.n);
    };
    fmt::print("{} clients, {} mode, {} POSTs at {}/s, connected in {:.2f} s\n", o.clients, o.mode,
               o.posts, o.rate, connect_s);
    fmt::print("received {} of {} points; POST errors {}, client errors {}, late sends {}\n",
               received, expected, writer.post_errors.load(), totals.errors.load(),
               writer.late_sends);
    line("POST sent -> received", send_p);
    line("POST answered -> received", answer_p);
    line("POST sent -> all received", all_p);
    line("POST round trip", rtt_p);
    if (o.pid > 0) {
      fmt::print(
          "server RSS KiB: {} before, {} connected, {} after run; per connection {:.1f} / "
          "{:.1f} KiB\n",
          rss_before, rss_connected, rss_after, per_conn_connected, per_conn_after);
    }
    if (o.saturate_seconds > 0) {
      fmt::print(
          "saturation: {:.0f} points/s and {:.0f} messages/s delivered, {:.0f} points/s "
          "posted, {} dropped\n",
          sat_points_s, sat_messages_s, sat_posted_s, sat_dropped);
    }
  }
  const bool complete = received >= expected && writer.post_errors == 0;
  if (!complete) fmt::print(stderr, "incomplete: received {} of {} points\n", received, expected);
  return finish(complete ? 0 : 1);
}

}  // namespace
}  // namespace espy::stream

int main(int argc, char** argv) {
  espy::stream::Options o;
  CLI::App app{"Live stream latency load client for a running espy (see bench/stream_bench.py)."};
  app.add_option("--host", o.host, "espy's address")->capture_default_str();
  app.add_option("--port", o.port, "espy's port")->required();
  app.add_option("--pid", o.pid, "espy's process id, to read its RSS");
  app.add_option("--clients", o.clients, "WebSocket subscribers")->capture_default_str();
  app.add_option("--mode", o.mode, "shared (one series) or per-series (one series per client)")
      ->capture_default_str();
  app.add_option("--metric", o.metric, "metric name to post and subscribe to")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "io_context threads")->capture_default_str();
  app.add_option("--rate", o.rate, "POSTs per second in the latency run")->capture_default_str();
  app.add_option("--warmup", o.warmup, "POSTs before measuring")->capture_default_str();
  app.add_option("--posts", o.posts, "measured POSTs")->capture_default_str();
  app.add_option("--post-connections", o.post_connections, "HTTP connections for the latency run")
      ->capture_default_str();
  app.add_option("--saturate-seconds", o.saturate_seconds, "length of the saturation run; 0: none")
      ->capture_default_str();
  app.add_option("--writers", o.writers, "HTTP connections posting back to back when saturating")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "points per POST when saturating (shared mode)")
      ->capture_default_str();
  app.add_option("--drain-timeout", o.drain_timeout,
                 "seconds without a new point before giving up on missing ones")
      ->capture_default_str();
  app.add_flag("--json", o.json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (o.rate <= 0 || o.clients == 0 || o.threads <= 0 || o.posts == 0) {
    fmt::print(stderr, "--rate, --clients, --threads and --posts must be positive\n");
    return 2;
  }
  return espy::stream::Run(o);
}
