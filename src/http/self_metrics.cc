#include "http/self_metrics.h"

#include <chrono>

#include "fmt/format.h"
#include "prometheus/text_serializer.h"

namespace espy::http {

namespace {

prometheus::Gauge& MakeGauge(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

SelfMetrics::SelfMetrics(const storage::Db* db)
    : db_(db),
      registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("espy_http_requests_total")
                    .Help("HTTP requests answered, by route and status code.")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("espy_http_request_duration_seconds")
                     .Help("Time from request read to response written, by route.")
                     .Register(*registry_)),
      samples_(prometheus::BuildCounter()
                   .Name("espy_samples_ingested_total")
                   .Help("Samples acknowledged as durable, by protocol.")
                   .Register(*registry_)),
      rejected_(prometheus::BuildCounter()
                    .Name("espy_ingest_rejected_batches_total")
                    .Help("Write requests rejected for bad input, by protocol.")
                    .Register(*registry_)),
      graphite_bad_lines_(prometheus::BuildCounter()
                              .Name("espy_graphite_bad_lines_total")
                              .Help("Graphite lines skipped as malformed.")
                              .Register(*registry_)
                              .Add({})),
      series_(MakeGauge(*registry_, "espy_series", "Series in the head.")),
      head_samples_(MakeGauge(*registry_, "espy_head_samples", "Samples held in memory.")),
      wal_bytes_(MakeGauge(*registry_, "espy_wal_written_bytes",
                           "Bytes written to the write-ahead log since start.")),
      wal_syncs_(MakeGauge(*registry_, "espy_wal_fsyncs",
                           "fdatasync calls on the write-ahead log since start.")),
      commit_rounds_(MakeGauge(*registry_, "espy_commit_rounds",
                               "Group commits since start (batches share one fsync).")),
      batches_(MakeGauge(*registry_, "espy_committed_batches", "Batches committed since start.")),
      start_time_(
          MakeGauge(*registry_, "espy_start_time_seconds", "Unix time the server started.")) {
  start_time_.Set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void SelfMetrics::ObserveRequest(std::string_view route, int status, double seconds) {
  std::string r = route.empty() ? "unmatched" : std::string(route);
  requests_.Add({{"route", r}, {"code", std::to_string(status)}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  durations_.Add({{"route", r}}, kBuckets).Observe(seconds);
}

void SelfMetrics::AddSamples(std::string_view protocol, uint64_t n) {
  samples_.Add({{"protocol", std::string(protocol)}}).Increment(static_cast<double>(n));
}

void SelfMetrics::AddRejected(std::string_view protocol, uint64_t batches) {
  rejected_.Add({{"protocol", std::string(protocol)}}).Increment(static_cast<double>(batches));
}

void SelfMetrics::AddGraphiteBadLines(uint64_t lines) {
  graphite_bad_lines_.Increment(static_cast<double>(lines));
}

std::string SelfMetrics::Render() {
  storage::DbStats s = db_->stats();
  series_.Set(static_cast<double>(s.series));
  head_samples_.Set(static_cast<double>(s.samples_in_head));
  wal_bytes_.Set(static_cast<double>(s.wal_bytes));
  wal_syncs_.Set(static_cast<double>(s.wal_syncs));
  commit_rounds_.Set(static_cast<double>(s.commit_rounds));
  batches_.Set(static_cast<double>(s.batches_committed));
  prometheus::TextSerializer serializer;
  std::string out = serializer.Serialize(registry_->Collect());
  // Storage engine figures the Db keeps itself.
  struct Row {
    const char* name;
    const char* type;
    const char* help;
    uint64_t value;
  };
  const Row rows[] = {
      {"espy_head_memory_bytes", "gauge", "Estimated bytes held by the head.", s.head_memory_bytes},
      {"espy_head_chunks", "gauge", "Compressed chunks in the head.", s.head_chunks},
      {"espy_head_out_of_order_samples", "gauge", "Samples waiting in out-of-order buffers.",
       s.head_ooo_samples},
      {"espy_blocks", "gauge", "Persisted blocks.", s.blocks},
      {"espy_block_bytes", "gauge", "Bytes on disk in blocks.", s.block_bytes},
      {"espy_blocks_written_total", "counter", "Blocks written since start.", s.blocks_written},
      {"espy_blocks_quarantined_total", "counter", "Corrupt blocks moved aside since start.",
       s.blocks_quarantined},
      {"espy_blocks_expired_total", "counter", "Blocks deleted by retention since start.",
       s.blocks_expired},
      {"espy_compactions_total", "counter", "Blocks made by merging others since start.",
       s.compactions},
      {"espy_wal_truncations_total", "counter", "Times old WAL segments were removed.",
       s.wal_truncations},
      {"espy_series_limit_rejections_total", "counter", "Batches refused by a series limit.",
       s.series_limit_rejections},
      {"espy_tier_blocks", "gauge", "Downsampled blocks, all tiers.", s.tier_blocks},
      {"espy_tier_bytes", "gauge", "Bytes on disk in downsampled blocks.", s.tier_bytes},
      {"espy_blocks_downsampled_total", "counter", "Raw blocks turned into tiers since start.",
       s.blocks_downsampled},
      {"espy_tier_blocks_expired_total", "counter",
       "Downsampled blocks a coarser tier or the retention took over since start.",
       s.tier_blocks_expired},
  };
  for (const Row& r : rows) {
    out +=
        fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", r.name, r.help, r.type, r.value);
  }
  for (const auto& collector : collectors_) out += collector();
  return out;
}

void SelfMetrics::AddCollector(std::function<std::string()> collector) {
  collectors_.push_back(std::move(collector));
}

}  // namespace espy::http
