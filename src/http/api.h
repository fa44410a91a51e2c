// The HTTP API: registers every endpoint's handler on a Router. Handlers are
// thin: parse the request, call ingest/storage/query, render the answer.
#pragma once

#include <atomic>

#include "base/clock.h"
#include "http/router.h"
#include "http/self_metrics.h"
#include "ingest/limits.h"
#include "ingest/series_cache.h"
#include "storage/db.h"

namespace espy::http {

struct ApiOptions {
  storage::Db* db = nullptr;       // must outlive the router
  SelfMetrics* metrics = nullptr;  // must outlive the router
  const base::Clock* clock = base::SystemClock::Get();
  ingest::Limits limits;
  // Known series spellings for remote write and Influx line protocol (may
  // be null: none); must outlive the router.
  ingest::SeriesCache* series_cache = nullptr;
  size_t default_page_limit = 10'000;
  size_t max_page_limit = 100'000;
  // Cleared when shutdown starts, so /readyz turns 503 for load balancers.
  const std::atomic<bool>* ready = nullptr;
};

// POST and GET /v1/metrics.
void RegisterV1Metrics(Router& router, const ApiOptions& options);
// /healthz, /readyz, /metrics.
void RegisterStatus(Router& router, const ApiOptions& options);

}  // namespace espy::http
