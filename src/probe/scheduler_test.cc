#include "probe/scheduler.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace espy::probe {
namespace {

// A loopback HTTP server answering every request with one canned response.
class CannedServer {
 public:
  explicit CannedServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 64);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        std::string request;
        while (request.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, n);
        }
        (void)!write(c, response_.data(), response_.size());
        close(c);
      }
    });
  }
  ~CannedServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

std::string Http(int status, std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         std::string(body);
}

MonitoringConfig Config(const std::string& yaml) {
  auto c = ParseMonitoring(YAML::Load(yaml), "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// Collects what the scheduler stores: the latest value of every series.
class Sink {
 public:
  std::function<void(model::SampleBatch)> Fn() {
    return [this](model::SampleBatch b) {
      std::lock_guard lock(mu_);
      for (const auto& s : b.samples) latest_[b.series[s.series].ToString()] = s.value;
      ++batches_;
      cv_.notify_all();
    };
  }
  // Waits until `series` has a value for which `pred` holds.
  double WaitFor(const std::string& series, const std::function<bool(double)>& pred) {
    std::unique_lock lock(mu_);
    bool ok = cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      auto it = latest_.find(series);
      return it != latest_.end() && pred(it->second);
    });
    EXPECT_TRUE(ok) << "no value for " << series;
    return ok ? latest_[series] : -1;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, double> latest_;
  int batches_ = 0;
};

auto Any = [](double) { return true; };

TEST(RunOnceTest, ReportsStatusLengthAndRegexFailures) {
  CannedServer server(Http(200, "maintenance in progress"));
  auto config = Config(
      "probes:\n  - name: site\n    url: " + server.url() +
      "\n    body_must_not_match: [maintenance]\n  - name: plain\n    url: " + server.url() + "\n");
  std::vector<ProbeResult> results = Scheduler::RunOnce(config.probes);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].success);
  EXPECT_EQ(results[0].reason, "body_regex");
  EXPECT_EQ(results[0].message, "body matches \"maintenance\"");
  EXPECT_TRUE(results[0].failed_due_to_regex);
  EXPECT_EQ(results[0].http_status, 200);
  EXPECT_EQ(results[0].content_length, 23);
  EXPECT_TRUE(results[1].success);
  EXPECT_EQ(results[1].body_bytes, 23);
  EXPECT_GT(results[1].duration_seconds, 0);
  EXPECT_GE(results[1].end_ms, results[1].start_ms);
}

TEST(RunOnceTest, ARefusedPortIsAConnectError) {
  // Bind then close a socket: its port is free, so nothing listens there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  std::string target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto config = Config("probes:\n  - name: a\n    tcp: " + target +
                       "\n  - name: b\n    url: http://" + target + "/\n");
  std::vector<ProbeResult> results = Scheduler::RunOnce(config.probes);
  EXPECT_EQ(results[0].reason, "connect");
  EXPECT_EQ(results[1].reason, "connect");
  EXPECT_EQ(results[1].http_status, 0);
}

TEST(SchedulerTest, StoresResultsAndMarksARemovedProbesSeriesStale) {
  CannedServer server(Http(503, "down"));
  Sink sink;
  Scheduler scheduler({.sink = sink.Fn(), .logger = base::NullLogger()});
  scheduler.Apply(Config("probes:\n  - name: api\n    url: " + server.url() +
                         "\n    interval: 1s\n    labels: {env: prod}\n"));
  scheduler.Start();
  std::string labels = "{env=\"prod\",instance=\"" + server.url() + "\",probe=\"api\"}";
  EXPECT_EQ(sink.WaitFor("probe_success" + labels, Any), 0);
  EXPECT_EQ(sink.WaitFor("probe_http_status_code" + labels, Any), 503);
  std::string error = "probe_error{env=\"prod\",instance=\"" + server.url() +
                      "\",probe=\"api\",reason=\"status_code\"}";
  EXPECT_EQ(sink.WaitFor(error, Any), 1);
  std::vector<TargetStatus> status = scheduler.Snapshot();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].name, "api");
  EXPECT_FALSE(status[0].up);
  EXPECT_EQ(status[0].http_status, 503);
  EXPECT_EQ(status[0].error, "status 503 is not 2xx");

  scheduler.Apply(MonitoringConfig{});
  sink.WaitFor("probe_success" + labels, model::IsStaleNaN);
  sink.WaitFor(error, model::IsStaleNaN);
  EXPECT_TRUE(scheduler.Snapshot().empty());
  scheduler.Stop();
}

TEST(SchedulerTest, CollectorsExtractLabelledValuesAndCountErrors) {
  CannedServer good(Http(200, R"({"quotes":[{"symbol":"AAPL","price":189.5,"rank":1},
                                              {"symbol":"MSFT","price":"410","rank":2.5}]})"));
  CannedServer bad(Http(200, R"({"quotes":[{"symbol":"AAPL"}]})"));
  Sink sink;
  Scheduler scheduler({.sink = sink.Fn(), .logger = base::NullLogger()});
  scheduler.Apply(Config(R"(
collectors:
  - name: good
    url: )" + good.url() +
                         R"(
    interval: 1s
    metrics: [{name: price, path: "$.quotes[*]", value: .price, labels: {symbol: .symbol, rank: .rank}}]
  - name: bad
    url: )" + bad.url() + R"(
    interval: 1s
    metrics: [{name: price, path: "$.quotes[*]", value: .price, labels: {symbol: .symbol}}]
)"));
  scheduler.Start();
  EXPECT_EQ(sink.WaitFor("price{collector=\"good\",rank=\"1\",symbol=\"AAPL\"}", Any), 189.5);
  EXPECT_EQ(sink.WaitFor("price{collector=\"good\",rank=\"2.5\",symbol=\"MSFT\"}", Any), 410);
  EXPECT_EQ(sink.WaitFor("collector_success{collector=\"good\"}", Any), 1);
  EXPECT_EQ(sink.WaitFor("collector_success{collector=\"bad\"}", Any), 0);
  sink.WaitFor("collector_errors_total{collector=\"bad\",reason=\"missing_field\"}",
               [](double v) { return v >= 2; });
  EXPECT_NE(scheduler.RenderMetrics().find(
                "collector_errors_total{collector=\"bad\",reason=\"missing_field\"}"),
            std::string::npos);
  scheduler.Stop();
}

}  // namespace
}  // namespace espy::probe
