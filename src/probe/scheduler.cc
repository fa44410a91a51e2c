#include "probe/scheduler.h"

#include <curl/curl.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <queue>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "base/threads.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "fmt/format.h"

namespace espy::probe {
namespace {

using Steady = std::chrono::steady_clock;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Bodies are read up to this size; probes only need enough to match a regex,
// collectors a whole JSON document.
constexpr size_t kProbeBodyCap = 4 << 20;
constexpr size_t kCollectorBodyCap = 32 << 20;
constexpr size_t kTcpReceiveCap = 64 << 10;

std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// "Nov 23 12:00:00 2027 GMT", as OpenSSL prints a certificate's dates.
double ParseCertTime(const char* text) {
  std::tm tm{};
  const char* end = strptime(text, "%b %d %H:%M:%S %Y", &tm);
  if (end == nullptr) return 0;
  return static_cast<double>(timegm(&tm));
}

double EarliestCertExpiry(CURL* easy) {
  curl_certinfo* info = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_CERTINFO, &info) != CURLE_OK || info == nullptr) return 0;
  double earliest = 0;
  for (int i = 0; i < info->num_of_certs; ++i) {
    for (curl_slist* s = info->certinfo[i]; s != nullptr; s = s->next) {
      constexpr std::string_view kExpire = "Expire date:";
      if (std::string_view(s->data).substr(0, kExpire.size()) != kExpire) continue;
      double t = ParseCertTime(s->data + kExpire.size());
      if (t > 0 && (earliest == 0 || t < earliest)) earliest = t;
    }
  }
  return earliest;
}

// Why a transfer failed, as the probe_error reason.
std::string Reason(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "resolve";
    case CURLE_COULDNT_CONNECT:
      return "connect";
    case CURLE_OPERATION_TIMEDOUT:
      return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return "tls";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return "connection_closed";
    case CURLE_TOO_MANY_REDIRECTS:
      return "redirects";
    default:
      return "http";
  }
}

struct Job {
  uint64_t id = 0;
  std::shared_ptr<const ProbeSpec> probe;  // exactly one of probe, collector
  std::shared_ptr<const CollectorSpec> collector;
  std::chrono::milliseconds interval{0};
  Steady::time_point next_due;
  bool in_flight = false;
  bool removed = false;
  bool repeat = true;
  std::vector<model::Labels> last_series;  // sorted; for staleness markers
  std::string last_state;                  // for logging changes only
  ProbeResult* once_result = nullptr;      // RunOnce: where the result goes
  std::map<std::string, uint64_t> errors;  // collectors: reason -> count

  const std::string& name() const { return probe ? probe->name : collector->name; }
  std::string key() const { return (probe ? "probe/" : "collector/") + name(); }
};

struct Transfer {
  std::shared_ptr<Job> job;
  // The settings this check started with: a reload may replace the job's.
  std::shared_ptr<const ProbeSpec> probe;
  std::shared_ptr<const CollectorSpec> collector;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  size_t body_cap = 0;
  bool truncated = false;
  char errbuf[CURL_ERROR_SIZE] = {};
  int64_t start_ms = 0;
  Steady::time_point start;
  Steady::time_point deadline;
  // TCP probes: after curl connects, Espy sends and expects by itself.
  enum class Phase { kCurl, kSend, kExpect } phase = Phase::kCurl;
  size_t sent = 0;
  curl_socket_t socket = CURL_SOCKET_BAD;
  ProbeResult result;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t bytes = size * n;
  t->result.body_bytes += static_cast<int64_t>(bytes);
  size_t room = t->body_cap - std::min(t->body_cap, t->body.size());
  if (bytes > room) t->truncated = true;
  t->body.append(data, std::min(bytes, room));
  return bytes;
}

}  // namespace

// The scheduler's engine: owns the curl multi handle and every job. All
// methods but SetConfig, Wakeup, Snapshot and RenderMetrics run on the one
// thread that calls Run (or RunOnce).
class Loop {
 public:
  explicit Loop(const SchedulerOptions& options) : options_(options) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    multi_ = curl_multi_init();
  }

  ~Loop() {
    for (auto& [easy, t] : transfers_) {
      curl_multi_remove_handle(multi_, easy);
      Release(*t);
    }
    curl_multi_cleanup(multi_);
  }

  void SetConfig(MonitoringConfig config) {
    {
      absl::MutexLock lock(&mu_);
      pending_ = std::move(config);
    }
    Wakeup();
  }

  void Wakeup() { curl_multi_wakeup(multi_); }

  void Run(const std::atomic<bool>& stop) {
    while (!stop.load()) {
      ApplyPending();
      Step();
    }
  }

  // Runs `probes` once each and waits for all of them.
  std::vector<ProbeResult> RunOnce(const std::vector<std::shared_ptr<const ProbeSpec>>& probes) {
    std::vector<ProbeResult> results(probes.size());
    stop_when_idle_ = true;
    Steady::time_point now = Steady::now();
    for (size_t i = 0; i < probes.size(); ++i) {
      auto job = std::make_shared<Job>();
      job->id = ++next_id_;
      job->probe = probes[i];
      job->interval = probes[i]->interval;
      job->next_due = now;
      job->repeat = false;
      job->once_result = &results[i];
      jobs_[job->id] = job;
      due_.push({now, job->id});
    }
    while (!due_.empty() || !transfers_.empty()) Step();
    return results;
  }

  std::vector<TargetStatus> Snapshot() const {
    absl::MutexLock lock(&mu_);
    std::vector<TargetStatus> out;
    for (const auto& [name, status] : status_) out.push_back(status);
    return out;
  }

  std::string RenderMetrics() const {
    absl::MutexLock lock(&mu_);
    std::string out;
    out += "# HELP espy_probe_checks_total Probe and collector checks finished, by result.\n";
    out += "# TYPE espy_probe_checks_total counter\n";
    for (const auto& [key, n] : checks_) {
      out += fmt::format("espy_probe_checks_total{{kind=\"{}\",result=\"{}\"}} {}\n", key.first,
                         key.second, n);
    }
    out += "# HELP espy_probe_late_starts_total Checks started over 1s late (too many at once).\n";
    out += "# TYPE espy_probe_late_starts_total counter\n";
    out += fmt::format("espy_probe_late_starts_total {}\n", late_starts_);
    out += "# HELP espy_probe_in_flight Checks running now.\n";
    out += "# TYPE espy_probe_in_flight gauge\n";
    out += fmt::format("espy_probe_in_flight {}\n", in_flight_);
    out += "# HELP collector_errors_total Failed collector runs, by reason.\n";
    out += "# TYPE collector_errors_total counter\n";
    for (const auto& [key, n] : collector_errors_) {
      out += fmt::format("collector_errors_total{{collector=\"{}\",reason=\"{}\"}} {}\n",
                         EscapeLabel(key.first), key.second, n);
    }
    return out;
  }

 private:
  struct Due {
    Steady::time_point at;
    uint64_t job;
    bool operator>(const Due& o) const { return at > o.at; }
  };

  void ApplyPending() {
    std::optional<MonitoringConfig> config;
    {
      absl::MutexLock lock(&mu_);
      config.swap(pending_);
    }
    if (!config) return;
    absl::flat_hash_map<std::string, std::shared_ptr<Job>> old;
    for (auto& [id, job] : jobs_) old[job->key()] = job;
    jobs_.clear();
    Steady::time_point now = Steady::now();
    auto add = [&](std::shared_ptr<Job> fresh) {
      std::string key = fresh->key();
      auto it = old.find(key);
      if (it != old.end()) {
        // Kept: same place in the schedule, new settings from the next check.
        std::shared_ptr<Job> job = it->second;
        old.erase(it);
        job->probe = fresh->probe;
        job->collector = fresh->collector;
        if (job->interval != fresh->interval) {
          job->interval = fresh->interval;
          job->next_due = std::min(job->next_due, now + job->interval);
          due_.push({job->next_due, job->id});
        }
        jobs_[job->id] = job;
        return;
      }
      fresh->id = ++next_id_;
      // Spread first checks over one interval by a hash of the name, so a
      // thousand targets do not all fire at once (as Prometheus spreads
      // scrapes).
      uint64_t offset = absl::HashOf(key) % static_cast<uint64_t>(fresh->interval.count());
      fresh->next_due = now + std::chrono::milliseconds(offset);
      due_.push({fresh->next_due, fresh->id});
      jobs_[fresh->id] = fresh;
    };
    for (const auto& p : config->probes) {
      auto job = std::make_shared<Job>();
      job->probe = p;
      job->interval = p->interval;
      add(job);
    }
    for (const auto& c : config->collectors) {
      auto job = std::make_shared<Job>();
      job->collector = c;
      job->interval = c->interval;
      add(job);
    }
    UpdateStatusTargets();
    // Removed: their series end now; a check in flight is dropped.
    for (auto& [key, job] : old) {
      job->removed = true;
      MarkStale(*job, WallMs());
    }
  }

  // Keeps one status per configured probe (results of kept ones stay) and
  // error counters only for configured collectors.
  void UpdateStatusTargets() {
    absl::MutexLock lock(&mu_);
    std::map<std::string, TargetStatus> status;
    for (const auto& [id, job] : jobs_) {
      if (!job->probe) continue;
      TargetStatus s;
      if (auto it = status_.find(job->probe->name); it != status_.end()) s = it->second;
      s.name = job->probe->name;
      s.kind = job->probe->kind == ProbeSpec::Kind::kHttp ? "http" : "tcp";
      s.target = job->probe->target;
      s.interval_ms = job->probe->interval.count();
      status[s.name] = std::move(s);
    }
    status_ = std::move(status);
    for (auto it = collector_errors_.begin(); it != collector_errors_.end();) {
      bool kept = false;
      for (const auto& [id, job] : jobs_) kept |= job->collector && job->name() == it->first.first;
      it = kept ? std::next(it) : collector_errors_.erase(it);
    }
  }

  // Starts due checks, lets curl work, finishes what ended, and waits for
  // the next event (up to the next due check).
  void Step() {
    Steady::time_point now = Steady::now();
    while (!due_.empty() && due_.top().at <= now && transfers_.size() < options_.max_in_flight) {
      Due d = due_.top();
      due_.pop();
      auto it = jobs_.find(d.job);
      if (it == jobs_.end()) continue;
      std::shared_ptr<Job> job = it->second;
      if (job->removed || job->next_due != d.at) continue;  // superseded entry
      if (now - d.at > std::chrono::seconds(1)) {
        absl::MutexLock lock(&mu_);
        ++late_starts_;
      }
      if (job->repeat) {
        auto behind = (now - job->next_due) / job->interval;
        job->next_due += job->interval * (behind + 1);
        due_.push({job->next_due, job->id});
      } else {
        jobs_.erase(it);
      }
      if (job->in_flight) continue;  // the last check is still running: skip one
      StartCheck(job);
    }
    int running = 0;
    curl_multi_perform(multi_, &running);
    while (true) {
      int left = 0;
      CURLMsg* msg = curl_multi_info_read(multi_, &left);
      if (msg == nullptr) break;
      if (msg->msg != CURLMSG_DONE) continue;
      CurlDone(msg->easy_handle, msg->data.result);
    }
    AdvanceExchanges();
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = transfers_.size();
    }

    if (stop_when_idle_ && due_.empty() && transfers_.empty()) return;
    long curl_timeout = -1;
    curl_multi_timeout(multi_, &curl_timeout);
    now = Steady::now();
    int64_t wait_ms = 1000;
    if (curl_timeout >= 0) wait_ms = std::min<int64_t>(wait_ms, curl_timeout);
    if (!due_.empty() && transfers_.size() < options_.max_in_flight) {
      wait_ms = std::min<int64_t>(
          wait_ms,
          std::max<int64_t>(
              0,
              std::chrono::duration_cast<std::chrono::milliseconds>(due_.top().at - now).count() +
                  1));
    }
    std::vector<curl_waitfd> fds;
    for (Transfer* t : exchanges_) {
      curl_waitfd fd{};
      fd.fd = t->socket;
      fd.events = t->phase == Transfer::Phase::kSend ? CURL_WAIT_POLLOUT : CURL_WAIT_POLLIN;
      fds.push_back(fd);
      wait_ms = std::min<int64_t>(
          wait_ms,
          std::max<int64_t>(
              0, std::chrono::duration_cast<std::chrono::milliseconds>(t->deadline - now).count() +
                     1));
    }
    if (wait_ms > 0) {
      curl_multi_poll(multi_, fds.data(), static_cast<unsigned>(fds.size()),
                      static_cast<int>(wait_ms), nullptr);
    }
  }

  void StartCheck(const std::shared_ptr<Job>& job) {
    auto t = std::make_unique<Transfer>();
    t->job = job;
    t->probe = job->probe;
    t->collector = job->collector;
    t->start = Steady::now();
    t->start_ms = WallMs();
    t->result.start_ms = t->start_ms;
    CURL* e = curl_easy_init();
    t->easy = e;
    std::chrono::milliseconds timeout = job->probe ? job->probe->timeout : job->collector->timeout;
    t->deadline = t->start + timeout;
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    // Every check measures a fresh connection, as a first visitor sees it.
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    bool verify = job->probe ? job->probe->tls_verify : job->collector->tls_verify;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (job->probe && job->probe->kind == ProbeSpec::Kind::kTcp) {
      const ProbeSpec& p = *job->probe;
      std::string url = fmt::format("{}://{}/", p.tls ? "https" : "http", p.target);
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      // The connection stays in the multi handle's cache (curl_easy_send
      // finds it there) until curl_multi_remove_handle closes it.
      curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
      curl_easy_setopt(e, CURLOPT_SSL_ENABLE_ALPN, 0L);
    } else {
      const std::string& url = job->probe ? job->probe->target : job->collector->url;
      const std::string& method = job->probe ? job->probe->method : job->collector->method;
      const std::string& body = job->probe ? job->probe->body : job->collector->body;
      const Headers& headers = job->probe ? job->probe->headers : job->collector->headers;
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
      bool follow = job->probe ? job->probe->follow_redirects : true;
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
      curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
      if (!body.empty()) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.c_str());
      }
      if (method == "HEAD") {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
      } else if (method != (body.empty() ? "GET" : "POST")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
      }
      for (const auto& [name, value] : headers) {
        t->headers = curl_slist_append(t->headers, fmt::format("{}: {}", name, value).c_str());
      }
      if (t->headers != nullptr) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
      t->body_cap = job->probe ? (job->probe->body_must_match.empty() &&
                                          job->probe->body_must_not_match.empty()
                                      ? 0
                                      : kProbeBodyCap)
                               : kCollectorBodyCap;
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    }
    job->in_flight = true;
    curl_multi_add_handle(multi_, e);
    transfers_[e] = std::move(t);
  }

  // Fills the phase timings from curl's cumulative times.
  static void Timings(CURL* e, ProbeResult* r) {
    curl_off_t lookup = 0, connect = 0, app = 0, pre = 0, first = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &app);
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    auto sec = [](curl_off_t us) { return us > 0 ? static_cast<double>(us) / 1e6 : 0.0; };
    r->resolve = sec(lookup);
    if (connect > 0) r->connect = sec(connect - lookup);
    if (app > 0) r->tls = sec(app - connect);
    curl_off_t sent = std::max({pre, app, connect});
    if (first > 0) {
      r->processing = sec(first - sent);
      r->transfer = sec(total - first);
    }
  }

  void CurlDone(CURL* e, CURLcode code) {
    auto it = transfers_.find(e);
    if (it == transfers_.end()) return;
    Transfer& t = *it->second;
    ProbeResult& r = t.result;
    Timings(e, &r);
    r.cert_expiry_seconds = EarliestCertExpiry(e);
    char* ip = nullptr;
    if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != nullptr && *ip) {
      r.ip_protocol = std::string_view(ip).find(':') == std::string_view::npos ? 4 : 6;
    }
    if (r.ip_protocol == 0 && code != CURLE_COULDNT_RESOLVE_HOST && t.probe) {
      // Resolved, but no connection got far enough for curl to name the
      // address: an IPv6 literal is written in brackets, anything else
      // resolved to IPv4 first.
      r.ip_protocol = t.probe->target.find('[') != std::string::npos ? 6 : 4;
    }
    if (t.probe && t.probe->kind == ProbeSpec::Kind::kTcp) {
      const ProbeSpec& p = *t.probe;
      if (code != CURLE_OK) {
        Fail(r, Reason(code), Message(t, code));
      } else if (!p.send.empty() || p.expect) {
        curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &t.socket);
        t.phase = p.send.empty() ? Transfer::Phase::kExpect : Transfer::Phase::kSend;
        exchanges_.push_back(&t);
        return;  // AdvanceExchanges finishes it
      } else {
        r.success = true;
      }
      Finish(e);
      return;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    r.http_status = static_cast<int>(status);
    r.responded = status > 0;
    long redirects = 0;
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
    r.redirects = static_cast<int>(redirects);
    curl_off_t length = -1;
    curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    r.content_length = r.responded ? length : 0;
    long version = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    r.http_version = version == CURL_HTTP_VERSION_1_0   ? 1.0
                     : version == CURL_HTTP_VERSION_1_1 ? 1.1
                     : version == CURL_HTTP_VERSION_2_0 ? 2.0
                     : version == CURL_HTTP_VERSION_3   ? 3.0
                                                        : 0.0;
    char* effective = nullptr;
    curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &effective);
    r.ssl = r.responded && effective != nullptr &&
            std::string_view(effective).substr(0, 8) == "https://";
    if (code != CURLE_OK) {
      Fail(r, Reason(code), Message(t, code));
    } else if (t.probe) {
      const ProbeSpec& p = *t.probe;
      if (!p.StatusValid(r.http_status)) {
        Fail(r, "status_code",
             fmt::format("status {} is not {}", r.http_status,
                         p.valid_status_codes.empty() ? "2xx" : "one of valid_status_codes"));
      } else {
        r.success = true;
        for (const auto& re : p.body_must_match) {
          if (!RE2::PartialMatch(t.body, *re)) {
            r.failed_due_to_regex = true;
            Fail(r, "body_regex", fmt::format("body does not match \"{}\"", re->pattern()));
            break;
          }
        }
        for (const auto& re : p.body_must_not_match) {
          if (r.success && RE2::PartialMatch(t.body, *re)) {
            r.failed_due_to_regex = true;
            Fail(r, "body_regex", fmt::format("body matches \"{}\"", re->pattern()));
          }
        }
      }
    }
    Finish(e, code);
  }

  static std::string Message(const Transfer& t, CURLcode code) {
    return t.errbuf[0] != '\0' ? std::string(t.errbuf) : std::string(curl_easy_strerror(code));
  }

  static void Fail(ProbeResult& r, std::string reason, std::string message) {
    r.success = false;
    r.reason = std::move(reason);
    r.message = std::move(message);
  }

  // TCP send/expect on the sockets curl connected.
  void AdvanceExchanges() {
    Steady::time_point now = Steady::now();
    for (size_t i = 0; i < exchanges_.size();) {
      Transfer& t = *exchanges_[i];
      const ProbeSpec& p = *t.probe;
      bool done = false;
      if (t.phase == Transfer::Phase::kSend) {
        size_t n = 0;
        CURLcode c = curl_easy_send(t.easy, p.send.data() + t.sent, p.send.size() - t.sent, &n);
        if (c == CURLE_OK) {
          t.sent += n;
          if (t.sent == p.send.size()) {
            if (p.expect) {
              t.phase = Transfer::Phase::kExpect;
            } else {
              t.result.success = true;
              done = true;
            }
          }
        } else if (c != CURLE_AGAIN) {
          Fail(t.result, "send", Message(t, c));
          done = true;
        }
      }
      if (!done && t.phase == Transfer::Phase::kExpect) {
        char buf[4096];
        while (true) {
          size_t n = 0;
          CURLcode c = curl_easy_recv(t.easy, buf, sizeof buf, &n);
          if (c == CURLE_AGAIN) break;
          if (c != CURLE_OK || n == 0) {
            t.result.failed_due_to_regex = true;
            Fail(t.result, "expect",
                 fmt::format("connection closed before the reply matched \"{}\"",
                             p.expect->pattern()));
            done = true;
            break;
          }
          if (t.body.size() < kTcpReceiveCap) t.body.append(buf, n);
          if (RE2::PartialMatch(t.body, *p.expect)) {
            t.result.success = true;
            done = true;
            break;
          }
        }
      }
      if (!done && now >= t.deadline) {
        Fail(t.result, "timeout",
             t.phase == Transfer::Phase::kSend
                 ? "timed out sending"
                 : fmt::format("timed out waiting for a reply matching \"{}\"",
                               p.expect->pattern()));
        done = true;
      }
      if (done) {
        exchanges_.erase(exchanges_.begin() + static_cast<std::ptrdiff_t>(i));
        Finish(t.easy);
      } else {
        ++i;
      }
    }
  }

  void Finish(CURL* e, CURLcode code = CURLE_OK) {
    auto it = transfers_.find(e);
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(multi_, e);
    t->result.end_ms = WallMs();
    t->result.duration_seconds = std::chrono::duration<double>(Steady::now() - t->start).count();
    Job& job = *t->job;
    job.in_flight = false;
    if (!job.removed) {
      if (t->probe) {
        FinishProbe(job, *t->probe, t->result);
      } else {
        FinishCollector(job, *t, code);
      }
    }
    Release(*t);
  }

  static void Release(Transfer& t) {
    curl_easy_cleanup(t.easy);
    curl_slist_free_all(t.headers);
  }

  void FinishProbe(Job& job, const ProbeSpec& p, const ProbeResult& r) {
    if (job.once_result != nullptr) {
      *job.once_result = r;
      return;
    }
    // The status first: whoever sees the stored samples sees it too.
    {
      absl::MutexLock lock(&mu_);
      ++checks_[{"probe", r.success ? "success" : "failure"}];
      if (auto it = status_.find(p.name); it != status_.end()) {
        TargetStatus& s = it->second;
        s.last_check_ms = r.end_ms;
        s.up = r.success;
        s.duration_seconds = r.duration_seconds;
        s.http_status = r.http_status;
        s.cert_expiry_seconds = r.cert_expiry_seconds;
        s.error = r.success ? "" : r.message;
      }
    }
    model::SampleBatch batch;
    AppendProbeSamples(p, r, &batch);
    Store(job, std::move(batch), r.start_ms);
    std::string state = r.success ? "up" : "down:" + r.reason;
    if (state != job.last_state && options_.logger) {
      if (r.success) {
        base::Info(options_.logger, "probe up", "probe", p.name, "duration_ms",
                   fmt::format("{:.0f}", r.duration_seconds * 1000));
      } else {
        base::Warn(options_.logger, "probe down", "probe", p.name, "reason", r.reason, "err",
                   r.message);
      }
    }
    job.last_state = std::move(state);
  }

  void FinishCollector(Job& job, const Transfer& t, CURLcode code) {
    const CollectorSpec& c = *t.collector;
    model::SampleBatch batch;
    std::vector<model::Label> base = c.labels;
    base.push_back({"collector", c.name});
    auto labels = [&](std::string_view metric, std::vector<model::Label> extra) {
      std::vector<model::Label> l = base;
      l.push_back({std::string(model::kMetricNameLabel), std::string(metric)});
      for (auto& e : extra) l.push_back(std::move(e));
      return model::Labels(std::move(l));
    };
    std::string reason, message;
    auto fail = [&](std::string r, std::string m) {
      if (reason.empty()) {
        reason = std::move(r);
        message = std::move(m);
      }
    };
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK) {
      fail(Reason(code), Message(t, code));
    } else if (status < 200 || status >= 300) {
      fail("http_status", fmt::format("status {}", status));
    } else if (t.truncated) {
      fail("too_large", fmt::format("response over {} bytes", kCollectorBodyCap));
    } else {
      boost::system::error_code ec;
      boost::json::value doc = boost::json::parse(t.body, ec);
      if (ec) {
        fail("json", fmt::format("response is not JSON: {}", ec.message()));
      } else {
        for (const Extraction& x : c.metrics) {
          bool matched = false;
          x.path.Select(
              doc, [&](const boost::json::value& v, const std::vector<std::string>& captures) {
                matched = true;
                const boost::json::value* target = x.value ? x.value->Find(v) : &v;
                if (target == nullptr) {
                  fail("missing_field", fmt::format("{}: no field {} under {}", x.metric,
                                                    x.value->text(), x.path.text()));
                  return;
                }
                auto number = JsonNumber(*target);
                if (!number.ok()) {
                  fail("not_a_number", fmt::format("{}: {}: {}", x.metric, x.path.text(),
                                                   number.status().message()));
                  return;
                }
                std::vector<model::Label> extra;
                for (const auto& src : x.labels) {
                  std::string value;
                  switch (src.kind) {
                    case Extraction::LabelSource::Kind::kLiteral:
                      value = src.literal;
                      break;
                    case Extraction::LabelSource::Kind::kCapture:
                      value = captures[src.capture - 1];
                      break;
                    case Extraction::LabelSource::Kind::kField: {
                      const boost::json::value* f = src.field->Find(v);
                      if (f != nullptr && f->is_string()) {
                        value = std::string(f->get_string());
                      } else if (f != nullptr && f->is_bool()) {
                        value = f->get_bool() ? "true" : "false";
                      } else if (f != nullptr && f->is_number()) {
                        // 42 stays "42" and 1.5 "1.5" (not JSON's "1.5E0").
                        value = f->is_double() ? fmt::format("{}", f->get_double())
                                               : boost::json::serialize(*f);
                      }
                      break;
                    }
                  }
                  if (value.empty()) {
                    fail("missing_field", fmt::format("{}: label {}: no value at {}", x.metric,
                                                      src.name, src.field->text()));
                    return;
                  }
                  extra.push_back({src.name, std::move(value)});
                }
                batch.Add(batch.AddSeries(labels(x.metric, std::move(extra))), t.start_ms, *number);
              });
          if (!matched) {
            fail("missing_field", fmt::format("{}: nothing at {}", x.metric, x.path.text()));
          }
        }
      }
    }
    double duration = std::chrono::duration<double>(Steady::now() - t.start).count();
    batch.Add(batch.AddSeries(labels("collector_success", {})), t.start_ms, reason.empty());
    batch.Add(batch.AddSeries(labels("collector_duration_seconds", {})), t.start_ms, duration);
    if (!reason.empty()) ++job.errors[reason];
    {
      absl::MutexLock lock(&mu_);
      ++checks_[{"collector", reason.empty() ? "success" : "failure"}];
      if (!reason.empty()) ++collector_errors_[{c.name, reason}];
    }
    for (const auto& [r, n] : job.errors) {
      batch.Add(batch.AddSeries(labels("collector_errors_total", {{"reason", r}})), t.start_ms,
                static_cast<double>(n));
    }
    Store(job, std::move(batch), t.start_ms);
    std::string state = reason.empty() ? "ok" : reason + ": " + message;
    if (state != job.last_state && options_.logger) {
      if (reason.empty()) {
        base::Info(options_.logger, "collector ok", "collector", c.name);
      } else {
        base::Warn(options_.logger, "collector failing", "collector", c.name, "reason", reason,
                   "err", message);
      }
    }
    job.last_state = std::move(state);
  }

  // Sends the batch, with staleness markers for the job's series that this
  // check no longer reports.
  void Store(Job& job, model::SampleBatch batch, int64_t ts) {
    std::vector<model::Labels> now;
    now.reserve(batch.series.size());
    for (const auto& s : batch.series) now.push_back(s);
    std::sort(now.begin(), now.end());
    now.erase(std::unique(now.begin(), now.end()), now.end());
    for (const auto& old : job.last_series) {
      if (!std::binary_search(now.begin(), now.end(), old)) {
        batch.Add(batch.AddSeries(old), ts, model::StaleNaN());
      }
    }
    job.last_series = std::move(now);
    if (options_.sink) options_.sink(std::move(batch));
  }

  // Ends every series of a removed job.
  void MarkStale(Job& job, int64_t ts) {
    if (job.last_series.empty() || !options_.sink) return;
    model::SampleBatch batch;
    for (const auto& old : job.last_series) batch.Add(batch.AddSeries(old), ts, model::StaleNaN());
    job.last_series.clear();
    options_.sink(std::move(batch));
  }

  const SchedulerOptions& options_;
  CURLM* multi_ = nullptr;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Job>> jobs_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> transfers_;
  std::vector<Transfer*> exchanges_;
  uint64_t next_id_ = 0;
  bool stop_when_idle_ = false;  // RunOnce: return instead of waiting for more work

  mutable absl::Mutex mu_;
  std::optional<MonitoringConfig> pending_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TargetStatus> status_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, uint64_t> checks_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, uint64_t> collector_errors_ ABSL_GUARDED_BY(mu_);
  uint64_t late_starts_ ABSL_GUARDED_BY(mu_) = 0;
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

Scheduler::Scheduler(SchedulerOptions options)
    : options_(std::move(options)), loop_(std::make_unique<Loop>(options_)) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  thread_ = std::thread([this] {
    base::SetThreadName("espy-probes");
    loop_->Run(stop_);
  });
}

void Scheduler::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  loop_->Wakeup();
  thread_.join();
}

void Scheduler::Apply(MonitoringConfig config) { loop_->SetConfig(std::move(config)); }

std::vector<TargetStatus> Scheduler::Snapshot() const { return loop_->Snapshot(); }

std::string Scheduler::RenderMetrics() const { return loop_->RenderMetrics(); }

std::vector<ProbeResult> Scheduler::RunOnce(
    const std::vector<std::shared_ptr<const ProbeSpec>>& probes, const std::string& user_agent) {
  SchedulerOptions options;
  options.user_agent = user_agent;
  options.max_in_flight = 2000;
  Loop loop(options);
  return loop.RunOnce(probes);
}

}  // namespace espy::probe
