#include "probe/result.h"

namespace espy::probe {

model::Labels ProbeLabels(const ProbeSpec& spec, std::string_view metric,
                          std::vector<model::Label> extra) {
  std::vector<model::Label> labels = spec.labels;
  labels.push_back({std::string(model::kMetricNameLabel), std::string(metric)});
  labels.push_back({"probe", spec.name});
  labels.push_back({"instance", spec.target});
  for (auto& l : extra) labels.push_back(std::move(l));
  return model::Labels(std::move(labels));
}

void AppendProbeSamples(const ProbeSpec& spec, const ProbeResult& r, model::SampleBatch* batch) {
  auto add = [&](std::string_view metric, double value, std::vector<model::Label> extra = {}) {
    uint32_t s = batch->AddSeries(ProbeLabels(spec, metric, std::move(extra)));
    batch->Add(s, r.start_ms, value);
  };
  add("probe_success", r.success ? 1 : 0);
  add("probe_duration_seconds", r.duration_seconds);
  add("probe_dns_lookup_time_seconds", r.resolve);
  if (r.ip_protocol != 0) add("probe_ip_protocol", r.ip_protocol);
  if (!r.success) add("probe_error", 1, {{"reason", r.reason}});
  if (spec.kind == ProbeSpec::Kind::kHttp) {
    add("probe_http_duration_seconds", r.resolve, {{"phase", "resolve"}});
    add("probe_http_duration_seconds", r.connect, {{"phase", "connect"}});
    add("probe_http_duration_seconds", r.tls, {{"phase", "tls"}});
    add("probe_http_duration_seconds", r.processing, {{"phase", "processing"}});
    add("probe_http_duration_seconds", r.transfer, {{"phase", "transfer"}});
    add("probe_http_status_code", r.http_status);
    add("probe_http_content_length", static_cast<double>(r.content_length));
    add("probe_http_uncompressed_body_length", static_cast<double>(r.body_bytes));
    add("probe_http_redirects", r.redirects);
    add("probe_http_ssl", r.ssl ? 1 : 0);
    add("probe_http_version", r.http_version);
    add("probe_failed_due_to_regex", r.failed_due_to_regex ? 1 : 0);
  } else {
    add("probe_tcp_duration_seconds", r.connect, {{"phase", "connect"}});
    if (spec.tls) add("probe_tcp_duration_seconds", r.tls, {{"phase", "tls"}});
    add("probe_failed_due_to_regex", r.failed_due_to_regex ? 1 : 0);
  }
  if (r.cert_expiry_seconds > 0) add("probe_ssl_earliest_cert_expiry", r.cert_expiry_seconds);
}

}  // namespace espy::probe
