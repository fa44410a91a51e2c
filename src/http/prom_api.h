// The Prometheus HTTP API (v1) over Espy's storage and PromQL engine, so
// Grafana's Prometheus data source and other Prometheus clients work
// unchanged: /api/v1/query, query_range, series, labels, label/<name>/values,
// metadata, status/buildinfo, status/tsdb, format_query, query_exemplars
// (always empty), and the admin endpoints admin/tsdb/delete_series and
// admin/tsdb/clean_tombstones when enabled. Same parameters, JSON envelopes, error types and HTTP
// codes as Prometheus 2.42.
#pragma once

#include <string>

#include "base/work_pool.h"
#include "http/api.h"
#include "http/router.h"
#include "query/engine/engine.h"
#include "query/engine/result_cache.h"

namespace espy::http {

struct PromApiOptions {
  query::engine::EngineOptions engine;
  // Reported by /api/v1/status/buildinfo as "version": the Prometheus API
  // level Espy implements, which Grafana reads to pick features.
  std::string prometheus_version = "2.42.0";
  // Espy's own version, reported as "revision".
  std::string espy_version = "dev";
  // Serve /api/v1/admin/tsdb/{delete_series,clean_tombstones}; when off they
  // answer 503 "admin APIs disabled" (Prometheus's --web.enable-admin-api).
  bool enable_admin_api = false;
  // Where /api/v1/query and query_range run; a query the pool refuses (too
  // many waiting) answers 503 "unavailable". Null: on the HTTP thread.
  base::WorkPool* query_pool = nullptr;
  // Range queries reuse the kept steps of earlier ones here (unless the
  // request says nocache=1); deletes invalidate it. Null: no caching.
  query::engine::ResultCache* cache = nullptr;
};

// Registers the routes. `api.db` and `api.clock` must outlive the router.
void RegisterPromApi(Router& router, const ApiOptions& api, const PromApiOptions& options);

// Prometheus's JSON timestamp: seconds with up to three decimals ("1.5" is
// written 1.500, as Prometheus does). Exposed for tests.
void AppendPromTimestamp(int64_t ms, std::string* out);

}  // namespace espy::http
