// SelfMetrics: Espy's own counters, served at /metrics in the Prometheus
// text format (prometheus-cpp does the bookkeeping and the format).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "storage/db.h"

namespace espy::http {

// Thread-safe.
class SelfMetrics {
 public:
  // "db" must outlive this object; it is read at every scrape.
  explicit SelfMetrics(const storage::Db* db);

  void ObserveRequest(std::string_view route, int status, double seconds);
  void AddSamples(std::string_view protocol, uint64_t n);
  void AddRejected(std::string_view protocol, uint64_t batches);
  // Graphite lines skipped as malformed (the rest of their read is kept).
  void AddGraphiteBadLines(uint64_t lines);

  // Adds text in the exposition format that Render appends (for components
  // that keep their own counters, like the stream hub). Call before serving.
  void AddCollector(std::function<std::string()> collector);

  // The text exposition of every metric, with storage gauges refreshed.
  std::string Render();

 private:
  prometheus::Counter& Counter(prometheus::Family<prometheus::Counter>& family,
                               const prometheus::Labels& labels);

  const storage::Db* db_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& samples_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Counter& graphite_bad_lines_;
  prometheus::Gauge& series_;
  prometheus::Gauge& head_samples_;
  prometheus::Gauge& wal_bytes_;
  prometheus::Gauge& wal_syncs_;
  prometheus::Gauge& commit_rounds_;
  prometheus::Gauge& batches_;
  prometheus::Gauge& start_time_;
  std::vector<std::function<std::string()>> collectors_;
};

}  // namespace espy::http
