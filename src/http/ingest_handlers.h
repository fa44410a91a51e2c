// The write endpoints of the protocols other agents already speak:
//   POST /api/v1/write   Prometheus remote write 1.0 (snappy protobuf) -> 204
//   POST /write          InfluxDB 1.x line protocol (db, rp, precision) -> 204
//   POST /api/v2/write   InfluxDB 2.x line protocol (bucket, org, precision) -> 204
//   GET|HEAD /ping       InfluxDB's liveness check -> 204
// Each parses the whole body with its ingest parser, commits the batch
// atomically through Db::Commit (the same group commit and limits as
// POST /v1/metrics) and answers once it is durable. Influx bodies may be
// gzip-compressed (Content-Encoding: gzip); errors then come in InfluxDB's
// shape, {"error": "..."} (2.x adds "code" and "message"), naming the line
// (1-based) and the field.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "http/api.h"
#include "http/router.h"

namespace espy::http {

struct IngestHandlerOptions {
  // Bound on a body once decompressed (snappy or gzip), checked while
  // decoding: a small gzip bomb cannot make the server allocate more. Larger
  // bodies get 413.
  size_t max_decoded_bytes = 64 << 20;
};

// Registers the endpoints above. `api.db` and `api.metrics` must outlive the
// router. Samples are counted in espy_samples_ingested_total{protocol=
// "remote_write"|"influx"}; rejected requests in
// espy_ingest_rejected_batches_total with the same labels.
void RegisterIngestHandlers(Router& router, const ApiOptions& api,
                            const IngestHandlerOptions& options = {});

// Inflates a gzip (or zlib) body, several concatenated gzip members included,
// as `gzip -c a b` makes them. ResourceExhausted once the output would pass
// `max_bytes`; InvalidArgument naming the byte offset for corrupt input.
absl::StatusOr<std::string> Gunzip(std::string_view body, size_t max_bytes);

}  // namespace espy::http
