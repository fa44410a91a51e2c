// The Uptime endpoints: snapshot + history per target, written as JSON.
// History is read straight from the head (which covers the blocks) in
// one-day time slices, so 30 days of a 1 s probe cost one day of samples in
// memory at a time and every chunk is decoded about once.
#include "http/uptime_handler.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "base/check.h"
#include "fmt/format.h"
#include "model/timestamp.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
// Availability windows, ending now: 24 h, 7 d, 30 d (longest last).
constexpr std::array<int64_t, 3> kWindowMs = {kDayMs, 7 * kDayMs, 30 * kDayMs};
constexpr std::array<const char*, 3> kWindowNames = {"24h", "7d", "30d"};
// Latency: the last 24 h in 5-minute buckets.
constexpr int64_t kBucketMs = 5 * 60'000;
constexpr int64_t kBuckets = kDayMs / kBucketMs;
static_assert(kBuckets == 288);
// Samples are read in batches of this many: bounds the memory of one read.
constexpr size_t kBatchSamples = 4096;

constexpr std::string_view kSuccessMetric = "probe_success";
constexpr std::string_view kDurationMetric = "probe_duration_seconds";

struct History {
  std::array<std::optional<double>, kWindowMs.size()> availability;
  // (bucket start ms, mean seconds of the checks that succeeded): a failed
  // check's duration is how long it took to fail (a refused connect, a
  // timeout), not a latency.
  std::vector<std::pair<int64_t, double>> latency;
  std::vector<int64_t> down;  // start ms of the buckets holding a failed check
};

// Calls fn(sample) for every sample with ts in [mint, maxt] of the series
// `metric`{probe="<probe>"} (all of them, whatever their other labels),
// oldest first within each series. NaN values (staleness markers) are
// skipped.
template <typename F>
absl::Status ForEachSample(const storage::Querier& querier, std::string_view metric,
                           const std::string& probe, int64_t mint, int64_t maxt, F fn) {
  std::vector<model::Matcher> matchers;
  for (auto [name, value] :
       {std::pair<std::string_view, std::string_view>(model::kMetricNameLabel, metric),
        std::pair<std::string_view, std::string_view>("probe", probe)}) {
    auto m = model::Matcher::Make(model::MatchType::kEqual, std::string(name), std::string(value));
    if (!m.ok()) return m.status();
    matchers.push_back(*std::move(m));
  }
  auto set =
      querier.Select(matchers, {.mint = mint, .maxt = maxt, .resolution = 0, .sorted = false});
  if (!set.ok()) return set.status();
  std::pmr::unsynchronized_pool_resource memory;
  while ((*set)->Next()) {
    // In batches: bounded memory whatever the range holds.
    storage::SampleIteratorPtr it = querier.Samples((*set)->id(), mint, maxt, &memory);
    while (true) {
      absl::StatusOr<std::span<const model::Sample>> batch = it->Next(kBatchSamples);
      if (!batch.ok()) return batch.status();
      if (batch->empty()) break;
      for (const model::Sample& s : *batch) {
        if (!std::isnan(s.value)) fn(s);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<History> ReadHistory(const storage::Querier& querier, const std::string& probe,
                                    int64_t now) {
  History h;
  std::array<double, kWindowMs.size()> sum{};
  std::array<uint64_t, kWindowMs.size()> count{};
  // The bucket holding `now` is the last of kBuckets aligned buckets.
  const int64_t first = (now - now % kBucketMs) - (kBuckets - 1) * kBucketMs;
  // When the latency buckets' checks failed (a check stamps its success and
  // its duration with the same ts).
  absl::flat_hash_set<int64_t> failed;
  std::vector<bool> bucket_down(kBuckets, false);
  // Windows are (now - w, now]: a window of 24 h holds 24 h of samples.
  absl::Status s = ForEachSample(querier, kSuccessMetric, probe, now - kWindowMs.back() + 1, now,
                                 [&](const model::Sample& sample) {
                                   for (size_t i = 0; i < kWindowMs.size(); ++i) {
                                     if (sample.ts > now - kWindowMs[i]) {
                                       sum[i] += sample.value;
                                       ++count[i];
                                     }
                                   }
                                   if (sample.ts >= first && sample.value == 0) {
                                     failed.insert(sample.ts);
                                     bucket_down[(sample.ts - first) / kBucketMs] = true;
                                   }
                                 });
  if (!s.ok()) return s;
  for (size_t i = 0; i < kWindowMs.size(); ++i) {
    if (count[i] > 0) h.availability[i] = sum[i] / static_cast<double>(count[i]);
  }

  std::vector<double> bucket_sum(kBuckets, 0);
  std::vector<uint64_t> bucket_count(kBuckets, 0);
  s = ForEachSample(querier, kDurationMetric, probe, first, now, [&](const model::Sample& sample) {
    if (failed.contains(sample.ts)) return;
    const size_t b = static_cast<size_t>((sample.ts - first) / kBucketMs);
    bucket_sum[b] += sample.value;
    ++bucket_count[b];
  });
  if (!s.ok()) return s;
  for (size_t b = 0; b < static_cast<size_t>(kBuckets); ++b) {
    if (bucket_count[b] > 0) {
      h.latency.emplace_back(first + static_cast<int64_t>(b) * kBucketMs,
                             bucket_sum[b] / static_cast<double>(bucket_count[b]));
    }
    if (bucket_down[b]) h.down.push_back(first + static_cast<int64_t>(b) * kBucketMs);
  }
  return h;
}

void AppendNumber(double v, std::string* out) {
  if (std::isfinite(v)) {
    fmt::format_to(std::back_inserter(*out), "{}", v);
  } else {
    *out += "null";
  }
}

void AppendOptional(const std::optional<double>& v, std::string* out) {
  if (v.has_value()) {
    AppendNumber(*v, out);
  } else {
    *out += "null";
  }
}

// One target as a JSON object; `public_view` leaves out everything that
// could reveal the internals (URLs, errors, status codes).
void AppendTarget(const probe::TargetStatus& t, const History& h, int64_t now, bool public_view,
                  std::string* out) {
  const bool checked = t.last_check_ms != 0;
  *out += "{\"name\":";
  AppendJsonString(t.name, out);
  if (!public_view) {
    *out += ",\"kind\":";
    AppendJsonString(t.kind, out);
    *out += ",\"target\":";
    AppendJsonString(t.target, out);
    *out += ",\"interval_seconds\":";
    AppendNumber(static_cast<double>(t.interval_ms) / 1000, out);
  }
  *out += ",\"up\":";
  *out += !checked ? "null" : t.up ? "true" : "false";
  *out += ",\"last_check\":";
  if (checked) {
    out->push_back('"');
    model::AppendTimestamp(t.last_check_ms, out);
    out->push_back('"');
  } else {
    *out += "null";
  }
  if (!public_view) {
    *out += ",\"duration_seconds\":";
    AppendOptional(checked ? std::optional<double>(t.duration_seconds) : std::nullopt, out);
    *out += ",\"http_status\":";
    *out += t.http_status != 0 ? std::to_string(t.http_status) : "null";
    *out += ",\"cert_days_left\":";
    if (t.cert_expiry_seconds != 0) {
      const double days = (t.cert_expiry_seconds - static_cast<double>(now) / 1000) / 86400;
      AppendNumber(std::round(days * 100) / 100, out);
    } else {
      *out += "null";
    }
    *out += ",\"error\":";
    if (t.error.empty()) {
      *out += "null";
    } else {
      AppendJsonString(t.error, out);
    }
  }
  *out += ",\"availability\":{";
  for (size_t i = 0; i < kWindowMs.size(); ++i) {
    if (i > 0) out->push_back(',');
    fmt::format_to(std::back_inserter(*out), "\"{}\":", kWindowNames[i]);
    AppendOptional(h.availability[i], out);
  }
  *out += "},\"latency\":[";
  for (size_t i = 0; i < h.latency.size(); ++i) {
    if (i > 0) out->push_back(',');
    fmt::format_to(std::back_inserter(*out), "[{},", h.latency[i].first / 1000);
    AppendNumber(h.latency[i].second, out);
    out->push_back(']');
  }
  *out += "],\"down\":[";
  for (size_t i = 0; i < h.down.size(); ++i) {
    if (i > 0) out->push_back(',');
    fmt::format_to(std::back_inserter(*out), "{}", h.down[i] / 1000);
  }
  *out += "]}";
}

// Shared by the handlers (they are copied into std::function).
// Thread-safe.
class Uptime {
 public:
  explicit Uptime(const UptimeOptions& options) : options_(options) {
    if (!options_.now_ms) {
      options_.now_ms = [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    }
  }

  absl::StatusOr<std::string> Render(bool public_view) {
    std::vector<probe::TargetStatus> targets =
        options_.snapshot ? options_.snapshot() : std::vector<probe::TargetStatus>{};
    std::sort(
        targets.begin(), targets.end(),
        [](const probe::TargetStatus& a, const probe::TargetStatus& b) { return a.name < b.name; });
    const int64_t now = options_.now_ms();
    std::string out = "[";
    for (size_t i = 0; i < targets.size(); ++i) {
      auto history = HistoryOf(targets[i].name, now);
      if (!history.ok()) {
        return absl::Status(history.status().code(),
                            fmt::format("probe \"{}\": reading its history: {}", targets[i].name,
                                        std::string(history.status().message())));
      }
      if (i > 0) out.push_back(',');
      AppendTarget(targets[i], **history, now, public_view, &out);
    }
    out.push_back(']');
    Prune(targets);
    return out;
  }

 private:
  struct Cached {
    int64_t at;
    std::shared_ptr<const History> history;
  };

  absl::StatusOr<std::shared_ptr<const History>> HistoryOf(const std::string& name, int64_t now) {
    if (options_.history_cache_ms > 0) {
      absl::MutexLock lock(&mu_);
      auto it = cache_.find(name);
      if (it != cache_.end() && now >= it->second.at &&
          now - it->second.at < options_.history_cache_ms) {
        return it->second.history;
      }
    }
    // Computed outside the lock: two requests may both read, which is
    // cheaper than making every other probe's readers wait.
    auto querier = options_.db->Querier(now - kWindowMs.back() + 1, now);
    if (!querier.ok()) return querier.status();
    auto history = ReadHistory(**querier, name, now);
    if (!history.ok()) return history.status();
    auto shared = std::make_shared<const History>(*std::move(history));
    if (options_.history_cache_ms > 0) {
      absl::MutexLock lock(&mu_);
      cache_[name] = Cached{now, shared};
    }
    return shared;
  }

  // Forgets the cached history of targets no longer configured.
  void Prune(const std::vector<probe::TargetStatus>& targets) {
    if (options_.history_cache_ms <= 0) return;
    absl::flat_hash_set<std::string> names;
    for (const probe::TargetStatus& t : targets) names.insert(t.name);
    absl::MutexLock lock(&mu_);
    absl::erase_if(cache_, [&names](const auto& entry) { return !names.contains(entry.first); });
  }

  UptimeOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

Handler JsonHandler(std::shared_ptr<Uptime> uptime, bool public_view) {
  return [uptime, public_view](const Request&, Reply reply) {
    absl::StatusOr<std::string> body = uptime->Render(public_view);
    if (!body.ok()) return reply(ErrorResponse(body.status()));
    Response res = MakeResponse(Status::ok, *std::move(body));
    res.set(bhttp::field::cache_control, "no-store");
    reply(std::move(res));
  };
}

}  // namespace

void RegisterUptime(Router& router, const UptimeOptions& options) {
  ESPY_CHECK(options.db != nullptr) << "RegisterUptime needs the Db";
  auto uptime = std::make_shared<Uptime>(options);
  router.Add("/v1/probes", {bhttp::verb::get}, JsonHandler(uptime, false));
  router.Add("/status/probes", {bhttp::verb::get}, JsonHandler(uptime, true));
}

}  // namespace espy::http
