#include "http/self_metrics.h"

#include <chrono>

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
  return serializer.Serialize(registry_->Collect());
}

}  // namespace espy::http
