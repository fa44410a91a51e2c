// The Uptime endpoints: the probe engine's snapshot of each target joined
// with its stored history (probe_success, probe_duration_seconds).
//   GET /v1/probes     every target, with its URL, last error, HTTP status and
//                      certificate expiry (the dashboard's Uptime page)
//   GET /status/probes the public view for the shared status page: name, up,
//                      last check, availability and latency only. It lives
//                      under /status with the page itself, so a reverse proxy
//                      can publish /status and /status/* and nothing else.
// Each target is an object, sorted by name:
//   {"name": "homepage", "kind": "http", "target": "https://example.com/",
//    "interval_seconds": 30, "up": true, "last_check": "2024-05-01T10:00:00.000Z",
//    "duration_seconds": 0.12, "http_status": 200, "cert_days_left": 41.5,
//    "error": null, "availability": {"24h": 0.999, "7d": 1, "30d": null},
//    "latency": [[1714557600, 0.118], ...], "down": [1714561200, ...]}
// up, last_check, duration_seconds are null before the first check;
// http_status, cert_days_left and error are null when there is none.
// availability is the mean of the stored probe_success samples of the
// probe's series in each window ending now (null: no samples); latency is
// the mean probe_duration_seconds of the checks that succeeded (probe_success
// 1 at the same ts) per 5-minute bucket (aligned to the epoch, stamped with
// the bucket's start in epoch seconds) over the last 24 h, buckets without
// such checks left out; down lists the starts of the buckets of those 24 h in
// which a check failed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "http/router.h"
#include "probe/status.h"
#include "storage/api/querier.h"

namespace espy::http {

struct UptimeOptions {
  const storage::Queryable* db = nullptr;  // must outlive the router
  // The probe engine's current view of every configured target; called once
  // per request, from the HTTP threads (so it must be thread-safe).
  std::function<std::vector<probe::TargetStatus>()> snapshot;
  // Milliseconds since the epoch; empty: the wall clock.
  std::function<int64_t()> now_ms;
  // A probe's history (availability, latency) is computed at most once per
  // this many ms and shared by the requests in between, so that a busy
  // public status page costs no more than one reader. 0: never cached.
  int64_t history_cache_ms = 5'000;
};

// Adds GET /v1/probes and GET /status/probes.
void RegisterUptime(Router& router, const UptimeOptions& options);

}  // namespace espy::http
