// ProbeResult: what one check found, and how it becomes samples with the
// names prometheus-blackbox-exporter uses, so its dashboards and alerts work
// on Espy's data unchanged.
#pragma once

#include <cstdint>
#include <string>

#include "model/sample_batch.h"
#include "probe/config.h"

namespace espy::probe {

struct ProbeResult {
  int64_t start_ms = 0;  // wall clock; the samples' timestamp
  int64_t end_ms = 0;
  bool success = false;
  // Why it failed: resolve, connect, tls, timeout, connection_closed,
  // status_code, body_regex, send, expect, redirects, http. Empty when up.
  std::string reason;
  std::string message;  // human-readable detail for logs, tables, the UI
  double duration_seconds = 0;
  // Cumulative phases as blackbox reports them (seconds).
  double resolve = 0, connect = 0, tls = 0, processing = 0, transfer = 0;
  int ip_protocol = 0;     // 4 or 6 once an address was chosen
  bool responded = false;  // an HTTP response (any status) arrived
  int http_status = 0;
  // From the header; -1 when a response came without one, 0 when none came
  // (as blackbox reports it).
  int64_t content_length = 0;
  int64_t body_bytes = 0;  // as received
  int redirects = 0;
  bool ssl = false;                // the final connection used TLS
  double http_version = 0;         // 1.0, 1.1, 2 or 3
  double cert_expiry_seconds = 0;  // earliest notAfter in the chain; 0: none
  // The body (HTTP) or reply (TCP) did not match; for TCP only when the
  // peer closed without a match (a timeout is not a regex failure).
  bool failed_due_to_regex = false;
};

// Appends the result's samples, labelled probe=<name>, instance=<target>
// and the probe's extra labels.
void AppendProbeSamples(const ProbeSpec& spec, const ProbeResult& r, model::SampleBatch* batch);

// The labels every series of `spec` carries, plus __name__.
model::Labels ProbeLabels(const ProbeSpec& spec, std::string_view metric,
                          std::vector<model::Label> extra = {});

}  // namespace espy::probe
