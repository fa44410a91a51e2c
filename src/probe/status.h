// TargetStatus: what the probe scheduler knows about each configured check
// right now, for the Uptime page and the public status page. History
// (availability, latency over time) lives in the stored probe_* metrics.
#pragma once

#include <cstdint>
#include <string>

namespace espy::probe {

struct TargetStatus {
  std::string name;    // the probe's configured name ("homepage")
  std::string kind;    // "http" or "tcp"
  std::string target;  // URL, or host:port for TCP
  int64_t interval_ms = 0;
  // The last finished check; last_check_ms == 0 until the first one ends.
  int64_t last_check_ms = 0;  // when it ended, ms since the epoch
  bool up = false;
  double duration_seconds = 0;  // total time of the last check
  int http_status = 0;          // 0 when none (TCP, or no response)
  // Earliest certificate expiry of the last TLS handshake, seconds since the
  // epoch; 0 when the target has no TLS.
  double cert_expiry_seconds = 0;
  std::string error;  // why the last check failed ("" when up)
};

}  // namespace espy::probe
